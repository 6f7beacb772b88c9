"""Scale editing and scale interpolation: only the chosen level's codes change, and every
pyramid level coarser than it stays bit-identical (eqs. 2-3)."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

import synth
import synth.testing
from synth.errors import CapabilityError
from synth_nested_scale import ScaleEdit, ScaleInterpolate


class TinyPyramid(synth.Generator):
    """A nested-scale test generator: level 0 from the one-hot label map at 1/8 size, each
    finer level a 2× upsampling and a 3×3 conv, modulated by that level's code ``styles[k]``
    (``x·(1 + γ_k) + β_k``), with its own 1×1 RGB head. Level ``k`` reads ``styles[0..k]``
    only, as eqs. 2-3."""

    class Config(synth.PartConfig):
        num_classes: int = 4
        style_dim: int = 6
        channels: int = 8
        levels: int = 4

    has_pyramid: ClassVar[bool] = True
    requires: ClassVar[frozenset[str]] = frozenset({"label_map", "styles"})

    def __init__(self, config=None, **kwargs) -> None:
        super().__init__(config, **kwargs)
        c, n = self.config, self.config.levels
        first = nn.Conv2d(c.num_classes, c.channels, 3, padding=1)
        rest = [nn.Conv2d(c.channels, c.channels, 3, padding=1) for _ in range(n - 1)]
        self.stages = nn.ModuleList([first, *rest])
        self.affine = nn.ModuleList(nn.Linear(c.style_dim, 2 * c.channels) for _ in range(n))
        self.to_rgb = nn.ModuleList(nn.Conv2d(c.channels, 3, 1) for _ in range(n))
        self.stage_channels = [c.channels] * n
        self.stage_scales = [2 ** (n - 1 - k) for k in range(n)]
        self.pyramid_scales = list(self.stage_scales)

    def forward(self, cond, latents=None, *, return_features=False):
        ctx = synth.Context(cond, latents)
        h, w = cond.size
        x, feats, pyramid = None, [], []
        for k, f in enumerate(self.pyramid_scales):
            if k == 0:
                x = self.stages[0](ctx.one_hot((h // f, w // f)))
            else:
                x = self.stages[k](F.interpolate(x, scale_factor=2.0, mode="nearest"))
            gamma, beta = rearrange(self.affine[k](ctx.latents.styles[k]), "b c -> b c 1 1").chunk(
                2, dim=1
            )
            x = F.leaky_relu(x * (1 + gamma) + beta, 0.2)
            feats.append(x)
            pyramid.append(torch.tanh(self.to_rgb[k](x)))
        return synth.SynthesisOutput(
            pyramid[-1], features=feats if return_features else None, pyramid=pyramid
        )


def tiny_model(seed: int = 0) -> synth.SynthesisModel:
    torch.manual_seed(seed)
    spec = {
        "generator": {"type": "testing.tiny_pyramid"},
        "injector": {"type": "core.gaussian", "shared_styles": True},
    }
    return synth.compose(spec).eval()


@pytest.fixture
def registry(nested_registry):
    nested_registry.add_part("testing.tiny_pyramid", TinyPyramid, "generator")
    return nested_registry


def _cond(b: int = 2, seed: int = 0) -> synth.Condition:
    g = torch.Generator().manual_seed(seed)
    return synth.testing.make_condition({"label_map"}, batch_size=b, size=32, generator=g)


def test_the_test_generator_is_nested(registry):
    """Replacing styles[k] alone leaves levels 0..k-1 bit-identical (what the samplers rely on)."""
    model = tiny_model()
    cond = _cond()
    lat = model.injector.prior(cond, torch.Generator().manual_seed(1))
    assert len(lat.styles) == 4 and all(s is lat.styles[0] for s in lat.styles)  # shared Z0
    edited = synth.Latents(styles=[*lat.styles[:2], torch.randn(2, 6), lat.styles[3]])
    with torch.no_grad():
        a, b = model.generator(cond, lat).pyramid, model.generator(cond, edited).pyramid
    assert all(torch.equal(a[k], b[k]) for k in (0, 1))
    assert not torch.equal(a[2], b[2]) and not torch.equal(a[3], b[3])


# --------------------------------------------------------------------------- scale_edit


@pytest.mark.parametrize("scales", [[2], [1, 3], [-1]])
def test_scale_edit_redraws_only_the_chosen_scales(registry, scales):
    model, cond, n = tiny_model(), _cond(), 3
    ref = model.injector.prior(cond, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(6)
    with torch.no_grad():
        out = model.sample(cond, n, "nested_scale.scale_edit", g, scales=scales, reference=ref)
        ref_out = model.generator(cond.repeat_interleave(n), ref.repeat_interleave(n))
    chosen = {k % 4 for k in scales}
    assert out.image.shape == (2 * n, 3, 32, 32) and len(out.latents.styles) == 4
    for k, code in enumerate(out.latents.styles):
        kept = ref.styles[k].repeat_interleave(n, dim=0)
        if k in chosen:
            per_input = rearrange(code, "(b n) s -> b n s", n=n)
            assert not torch.equal(per_input[:, 0], per_input[:, 1])  # redrawn per sample
            assert not torch.equal(code, kept)
        else:
            assert torch.equal(code, kept)  # exactly the reference's
    coarsest = min(chosen)
    for k in range(4):
        same = torch.equal(out.pyramid[k], ref_out.pyramid[k])
        assert same == (k < coarsest), k
    samples = rearrange(out.image, "(b n) c h w -> b n c h w", n=n)
    assert not torch.equal(samples[:, 0], samples[:, 1])


def test_scale_edit_draws_a_reference_when_none_is_given(registry):
    model, cond = tiny_model(), _cond()
    with torch.no_grad():
        out = model.sample(
            cond, 2, "nested_scale.scale_edit", torch.Generator().manual_seed(0), scales=[3]
        )
        again = model.sample(
            cond, 2, "nested_scale.scale_edit", torch.Generator().manual_seed(0), scales=[3]
        )
    torch.testing.assert_close(out.image, again.image, rtol=0, atol=0)
    codes = rearrange(out.latents.styles[0], "(b n) s -> b n s", n=2)
    assert torch.equal(codes[:, 0], codes[:, 1])  # one reference per input
    levels = rearrange(out.pyramid[2], "(b n) c h w -> b n c h w", n=2)
    assert torch.equal(levels[:, 0], levels[:, 1])


def test_scale_edit_errors(registry):
    model, cond = tiny_model(), _cond()
    with pytest.raises(TypeError, match="scales"):
        model.sample(cond, 2, "nested_scale.scale_edit")
    with pytest.raises(ValueError, match="not levels"):
        model.sample(cond, 2, "nested_scale.scale_edit", scales=[4])
    with pytest.raises(ValueError, match="batch size"):
        ref = model.injector.prior(_cond(b=3))
        model.sample(cond, 2, "nested_scale.scale_edit", scales=[1], reference=ref)
    with pytest.raises(CapabilityError, match="styles"):
        ScaleEdit().sample(model, cond, 2, scales=[0], reference=synth.Latents(z=torch.zeros(2, 3)))


# --------------------------------------------------------------------------- scale_interpolate


@pytest.mark.parametrize("mode", ["slerp", "lerp"])
def test_scale_interpolate_walks_one_code(registry, mode):
    model, cond, n, k = tiny_model(), _cond(), 5, 2
    g = torch.Generator().manual_seed(3)
    start = model.injector.prior(cond, g)
    end = torch.randn(2, 6, generator=g)
    with torch.no_grad():
        out = ScaleInterpolate()(model, cond, n, scale=k, start=start, end=end, mode=mode)
        start_out = model.generator(cond.repeat_interleave(n), start.repeat_interleave(n))
    walk = rearrange(out.latents.styles[k], "(b n) s -> b n s", n=n)
    torch.testing.assert_close(walk[:, 0], start.styles[k])
    torch.testing.assert_close(walk[:, -1], end)
    a, b = start.styles[k], end
    for j, t in enumerate(torch.linspace(0, 1, n).tolist()):
        want = synth.ops.slerp(a, b, t) if mode == "slerp" else (1 - t) * a + t * b
        torch.testing.assert_close(walk[:, j], want)
    for i, code in enumerate(out.latents.styles):
        if i != k:
            assert torch.equal(code, start.styles[i].repeat_interleave(n, dim=0))
    for i in range(4):
        assert torch.equal(out.pyramid[i], start_out.pyramid[i]) == (i < k)


def test_scale_interpolate_defaults_and_errors(registry):
    model, cond = tiny_model(), _cond()
    with torch.no_grad():
        out = model.sample(
            cond, 3, "nested_scale.scale_interpolate", torch.Generator().manual_seed(1), scale=-1
        )
    assert out.image.shape == (6, 3, 32, 32) and out.latents.kl is None
    first = rearrange(out.image, "(b n) c h w -> b n c h w", n=3)
    assert not torch.equal(first[:, 0], first[:, -1])
    with pytest.raises(TypeError, match="scale"):
        model.sample(cond, 3, "nested_scale.scale_interpolate")
    with pytest.raises(ValueError, match="end is"):
        model.sample(cond, 3, "nested_scale.scale_interpolate", scale=0, end=torch.zeros(2, 5))


# --------------------------------------------------------------------------- conformance


@pytest.mark.parametrize(
    ("name", "keywords"),
    [
        ("nested_scale.scale_edit", {"scales": [1]}),
        ("nested_scale.scale_interpolate", {"scale": 2}),
    ],
)
def test_samplers_pass_check_part_on_the_test_generator(registry, name, keywords):
    def inputs(*, batch_size, size, generator):
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        cond = synth.testing.make_condition(
            {"label_map"}, batch_size=batch_size, size=32, generator=generator
        )
        return {"model": tiny_model(seed), "cond": cond, "n": 3, "kwargs": keywords}

    synth.testing.check_part(name, example_inputs=inputs)
