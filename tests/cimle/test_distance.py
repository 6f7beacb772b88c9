"""cimle.distance: eq. (1) with the presets and the rarity-masked form (§5.2.4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from synth.nn.backbones import FeatureExtractor
from synth_cimle import Distance
from synth_cimle.losses import PRESETS


def test_presets_match_the_official_code():
    sr = PRESETS["sr"]
    assert (sr.pixel_weight, sr.layers, sr.layer_weights) == (1e-2, ("conv5_4",), (1.0,))
    assert (sr.normalize, sr.pool) == ("imagenet", "max")
    lay = PRESETS["layout"]
    assert lay.pixel_weight == 0.0
    assert lay.layers == ("input", "relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2")
    assert (lay.normalize, lay.pool) == ("caffe", "avg")
    torch.testing.assert_close(
        torch.tensor(lay.layer_weights),
        torch.tensor([1, 1 / 1.4, 1 / 1.8, 1 / 1.3, 1 / 2.2, 10 / 0.62]),
    )


# ---- an independent VGG19 path, written from the official code's description

_VGG19 = [64, 64, "P", 128, 128, "P", 256, 256, 256, 256, "P", 512, 512, 512, 512, "P"]
_VGG19 += [512, 512, 512, 512]


def _hand_vgg(x, convs, pool, take, relu_after):
    """VGG19 by hand with ``convs`` [(weight, bias)]: outputs after conv ``(block, index)``
    in ``take`` (ReLU applied first when ``relu_after``), ``pool`` = "avg" or "max"."""
    out, block, idx, k = {}, 1, 0, 0
    for v in _VGG19:
        if v == "P":
            x = F.avg_pool2d(x, 2, 2) if pool == "avg" else F.max_pool2d(x, 2, 2)
            block, idx = block + 1, 0
            continue
        idx += 1
        w, b = convs[k]
        k += 1
        pre = F.conv2d(x, w, b, padding=1)
        x = F.relu(pre)
        if (block, idx) in take:
            out[(block, idx)] = x if relu_after else pre
        if len(out) == len(take):
            break
    return [out[t] for t in take]


def _convs(extractor):
    mods = [m for m in extractor.features if isinstance(m, torch.nn.Conv2d)]
    return [(m.weight.detach(), m.bias.detach()) for m in mods]


def _official_layout_terms(fake, real, convs):
    """zth667 ``train.py``: ``build_vgg19`` on 0–255 RGB minus the mean, ReLU outputs, average
    pooling; per term ``mean |Φ(fake) − Φ(real)|`` times 1, 1/1.4, 1/1.8, 1/1.3, 1/2.2, 10/0.62."""
    mean = torch.tensor([123.68, 116.779, 103.939]).view(1, 3, 1, 1)
    f255, r255 = (fake + 1) * 127.5 - mean, (real + 1) * 127.5 - mean
    take = [(1, 2), (2, 2), (3, 2), (4, 2), (5, 2)]
    ff = [f255, *_hand_vgg(f255, convs, "avg", take, True)]
    fr = [r255, *_hand_vgg(r255, convs, "avg", take, True)]
    w = [1, 1 / 1.4, 1 / 1.8, 1 / 1.3, 1 / 2.2, 10 / 0.62]
    return torch.stack(
        [wi * (a - b).abs().mean(dim=(1, 2, 3)) for wi, a, b in zip(w, ff, fr)], dim=1
    )


def test_layout_terms_have_the_official_relative_magnitudes():
    """Item 1 of issue 16: every term of the layout preset equals the official one for the
    same VGG weights (random here), so their ratios are the official ratios."""
    g = torch.Generator().manual_seed(3)
    real = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    fake = (real + 0.3 * torch.randn(2, 3, 32, 32, generator=g)).clamp(-1, 1)
    torch.manual_seed(0)
    d = Distance(preset="layout", weights="none")
    for p in d.extractor.parameters():  # biases too, so the mean subtraction matters
        p.data.normal_(0, 0.05)
    got = d.terms_to(fake, d.prepare(real))[:, 0]  # [B, 6]
    want = _official_layout_terms(fake, real, _convs(d.extractor))
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got / got.sum(1, keepdim=True), want / want.sum(1, keepdim=True))
    # the input term is in 0–255 units: a shift of δ in [-1, 1] costs 127.5·δ
    shifted = d.terms_to(real + 0.1, d.prepare(real))[:, 0, 0]
    torch.testing.assert_close(shifted, torch.full((2,), 12.75))


def test_sr_terms_match_the_official_srim_loss():
    """Item 2: official SRIM ``1e-2 · L1(fake, real) + L1(VGG(fake), VGG(real))`` on [0, 1]
    images, VGG19 up to conv5_4 (before its ReLU, max pools) on ImageNet-normalised input."""
    g = torch.Generator().manual_seed(4)
    real = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    fake = (real + 0.2 * torch.randn(2, 3, 32, 32, generator=g)).clamp(-1, 1)
    torch.manual_seed(0)
    d = Distance(preset="sr", weights="none")
    f01, r01 = (fake + 1) / 2, (real + 1) / 2
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    convs = _convs(d.extractor)
    (vf,) = _hand_vgg((f01 - mean) / std, convs, "max", [(5, 4)], False)
    (vr,) = _hand_vgg((r01 - mean) / std, convs, "max", [(5, 4)], False)
    pix = 1e-2 * (f01 - r01).abs().mean(dim=(1, 2, 3))
    fea = (vf - vr).abs().mean(dim=(1, 2, 3))
    got = d.terms_to(fake, d.prepare(real))[:, 0]
    torch.testing.assert_close(got, torch.stack([pix, fea], 1), rtol=1e-4, atol=1e-6)
    # the pixel term of [-1, 1] images would be twice the official one
    d11 = Distance(preset="sr", weights="none", pixel_range="[-1,1]", layers=[], layer_weights=[])
    torch.testing.assert_close(d11.distance(fake, real), 2 * pix)


def _reference(x, y, mask, layers, weights, pixel_weight):
    """Independent eq. (1): explicit per-sample loops over layers, masks resized by avg-pool."""
    torch.manual_seed(0)
    fe = FeatureExtractor("vgg19", layers=layers, weights="none", normalize="imagenet")
    out = []
    for b in range(x.shape[0]):
        total = pixel_weight * ((x[b] - y[b]).abs() * (mask[b] if mask is not None else 1)).mean()
        fx, fy = fe(x[b : b + 1]), fe(y[b : b + 1])
        for w, a, c in zip(weights, fx, fy):
            m = 1.0
            if mask is not None:
                m = F.adaptive_avg_pool2d(mask[b : b + 1], a.shape[-2:])
            total = total + w * ((a - c).abs() * m).mean()
        out.append(total)
    return torch.stack(out)


def test_distance_matches_independent_computation():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    y = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    mask = torch.rand(2, 1, 16, 16, generator=g)
    layers, weights = ["input", "conv1_2", "conv2_2"], [1.0, 0.5, 2.0]
    torch.manual_seed(0)
    d = Distance(
        preset="none",
        pixel_weight=0.3,
        pixel_range="[-1,1]",
        layers=layers,
        layer_weights=weights,
        weights="none",
    )
    for m in (None, mask):
        ref = _reference(x, y, m, layers, weights, 0.3)
        torch.testing.assert_close(d.distance(x, y, m), ref, rtol=1e-4, atol=1e-6)
    assert torch.all(d.distance(x, x) == 0)


def test_prepared_target_broadcasts_to_candidates():
    g = torch.Generator().manual_seed(2)
    y = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    x = torch.rand(2 * 3, 3, 16, 16, generator=g) * 2 - 1
    torch.manual_seed(0)
    d = Distance(preset="sr", layers=["conv1_2"], layer_weights=[1.0], weights="none")
    got = d.distance_to(x, d.prepare(y))
    ref = d.distance(x, y.repeat_interleave(3, 0)).view(2, 3)
    torch.testing.assert_close(got, ref)


def test_channels_last_backbone_on_cpu_gives_the_same_distances():
    torch.manual_seed(0)
    x, y = torch.rand(3, 3, 32, 32) * 2 - 1, torch.rand(3, 3, 32, 32) * 2 - 1
    kw = dict(preset="sr", layers=["conv3_2"], layer_weights=[1.0], weights="none")
    fast, plain = Distance(**kw), Distance(**kw, channels_last=False)
    plain.load_state_dict(fast.state_dict())
    with torch.no_grad():
        d_fast, d_plain = fast.distance(x, y), plain.distance(x, y)
    conv = fast.extractor.features[0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not plain.extractor.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(d_fast, d_plain, rtol=1e-5, atol=1e-6)
