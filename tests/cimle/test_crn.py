"""cimle.crn_generator's resizing against the official CRN rules (issue 16 item 7), computed
independently: area-averaged one-hot labels, bilinear noise, the previous level upsampled
bilinearly with aligned corners; and the GTA-5 recipe's official widths."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import reduce

import synth
from synth_cimle import CRNGenerator
from synth_cimle.recipes import RECIPES


def _aligned_matrix(n_out: int, n_in: int) -> torch.Tensor:
    """Bilinear interpolation with aligned corners as a ``[n_out, n_in]`` matrix."""
    a = torch.zeros(n_out, n_in)
    for o in range(n_out):
        src = o * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        i0 = min(int(src), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        a[o, i0] += 1 - (src - i0)
        a[o, i1] += src - i0
    return a


def _half_pixel_down(t: torch.Tensor, f: int) -> torch.Tensor:
    """Half-pixel bilinear downsampling by ``f`` (a power of 2): the mean of the two middle
    pixels of each ``f``-block in each direction."""
    if f == 1:
        return t
    c = f // 2
    rows = (t[..., c - 1 :: f, :] + t[..., c::f, :]) / 2
    return (rows[..., c - 1 :: f] + rows[..., c::f]) / 2


def test_crn_levels_follow_the_official_resizing():
    torch.manual_seed(0)
    k, nc, levels, (h, w) = 5, 3, 3, (16, 32)
    gen = CRNGenerator(num_classes=k, num_levels=levels, ngf=4, max_channels=8, noise_channels=nc)
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, k, (2, h, w), generator=g)
    noise = torch.randn(2, nc, h, w, generator=g)
    cond = synth.Condition(label_map=labels, num_classes=k)
    with torch.no_grad():
        got = gen(cond, synth.Latents(spatial=noise)).image
        onehot = F.one_hot(labels, k).permute(0, 3, 1, 2).float()
        x, labs = None, []
        for i, level in enumerate(gen.stages):
            f = 2 ** (levels - 1 - i)
            lab = reduce(onehot, "b k (y f1) (x f2) -> b k y x", "mean", f1=f, f2=f)
            labs.append(lab)
            parts = [lab, _half_pixel_down(noise, f)]
            if x is not None:
                ay, ax = _aligned_matrix(h // f, x.shape[-2]), _aligned_matrix(w // f, x.shape[-1])
                parts.insert(0, torch.einsum("yi,xj,bcij->bcyx", ay, ax, x))
            x = level(torch.cat(parts, 1))
        want = torch.tanh(gen.to_rgb(x))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # soft labels: a level below full size sees fractions at class borders
    assert not torch.equal(labs[0], labs[0].round())


def test_gta5_recipe_has_the_official_widths():
    """Official ``dim = 512 if sp >= 128 else 1024`` over heights 4 … 256."""
    spec, _ = RECIPES["cimle.gta5_layout"]
    heights = [4 * 2**i for i in range(spec["generator"]["num_levels"])]
    assert spec["generator"]["channels"] == [512 if sp >= 128 else 1024 for sp in heights]
