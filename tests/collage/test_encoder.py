"""collage.resnet_encoder: the official layer order (an independent functional re-computation),
conformance, sizes and errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import synth
import synth.testing
from synth_collage.encoder import ResNetEncoder, encoder_widths


def _functional(enc: ResNetEncoder, x: torch.Tensor) -> torch.Tensor:
    """The official ResNetEncoder (resnetenc_small.py) written with torch.nn.functional on
    the encoder's own weights: eval-mode BN = (x - mean) / sqrt(var + eps) * γ + β."""

    def bn(h, m):
        shape = (1, -1) + (1,) * (h.dim() - 2)
        mean, var = m.running_mean.view(shape), m.running_var.view(shape)
        return (h - mean) / torch.sqrt(var + m.eps) * m.weight.view(shape) + m.bias.view(shape)

    h = F.conv2d(x, enc.stem.weight, enc.stem.bias, padding=1)
    for blk in enc.blocks:
        r = F.relu(bn(h, blk.b1.bn))
        r = F.conv2d(F.avg_pool2d(r, 2), blk.c1.weight, blk.c1.bias, padding=1)  # pool, then c1
        r = F.conv2d(F.relu(bn(r, blk.b2.bn)), blk.c2.weight, blk.c2.bias, padding=1)
        s = F.conv2d(F.avg_pool2d(h, 2), blk.c_sc.weight, blk.c_sc.bias)
        h = r + s
    h = h.reshape(h.shape[0], -1)
    if enc.final_norm is not None:  # off as in the official forward (b7 defined, unused)
        h = bn(h, enc.final_norm)
    h = h @ enc.fc.weight.T + enc.fc.bias
    return torch.where(h >= 0, h, enc.prelu.weight * h)


def _randomise_stats(enc: ResNetEncoder) -> None:
    g = torch.Generator().manual_seed(1)
    for m in enc.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


@pytest.mark.parametrize("final_norm", [False, True])
def test_matches_the_official_layer_order(final_norm):
    torch.manual_seed(0)
    enc = ResNetEncoder(z_dim=8, ch=4, image_size=32, final_norm=final_norm).eval()
    assert (enc.final_norm is not None) == final_norm
    _randomise_stats(enc)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    cond = synth.Condition(image=x)
    z = enc.posterior(x, cond).z
    assert z.shape == (3, 8)
    torch.testing.assert_close(z, _functional(enc, x), rtol=1e-5, atol=1e-5)
    # the official BN eps (Chainer's 2e-5) and PReLU slope 0.1
    assert enc.blocks[0].b1.bn.eps == 2e-5
    assert enc.final_norm is None or enc.final_norm.eps == 2e-5
    assert torch.all(enc.prelu.weight == 0.1)


def test_official_widths_and_resizing():
    assert encoder_widths(5) == [2, 4, 4, 8, 8]  # resnetenc_small.py, 128 px
    assert encoder_widths(6) == [2, 4, 8, 8, 16, 16]  # resnetenc_256.py
    enc = ResNetEncoder(z_dim=8, ch=2, image_size=128)
    assert [b.c2.out_channels for b in enc.blocks] == [4, 8, 8, 16, 16]
    assert enc.fc.in_features == 16 * 4 * 4
    small = ResNetEncoder(z_dim=8, ch=4, image_size=16).eval()
    x = torch.rand(2, 3, 40, 40) * 2 - 1  # any photo size: resized to image_size first
    assert small.posterior(x, synth.Condition(image=x)).z.shape == (2, 8)


def test_bad_sizes_are_named():
    with pytest.raises(ValueError, match="image_size=24"):
        ResNetEncoder(image_size=24)
    with pytest.raises(ValueError, match="widths has 1 entries"):
        ResNetEncoder(image_size=32, widths=[2])
    enc = ResNetEncoder(z_dim=8, ch=4, image_size=16)
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        enc.encode(torch.zeros(2, 1, 16, 16), synth.Condition(image=torch.zeros(2, 3, 16, 16)))


def test_conformance(collage_registry):
    synth.testing.check_part("collage.resnet_encoder", z_dim=8, ch=4, image_size=16)
