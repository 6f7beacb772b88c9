"""cimle.distance: eq. (1) with the presets and the rarity-masked form (§5.2.4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from synth.nn.backbones import FeatureExtractor
from synth_cimle import Distance
from synth_cimle.losses import PRESETS


def test_presets_match_the_paper():
    assert PRESETS["sr"] == (1e-2, ["conv5_4"], [1.0])
    pw, layers, weights = PRESETS["layout"]
    assert pw == 0.0
    assert layers == ["input", "conv1_2", "conv2_2", "conv3_2", "conv4_2", "conv5_2"]
    torch.testing.assert_close(
        torch.tensor(weights), torch.tensor([1, 1 / 1.4, 1 / 1.8, 1 / 1.3, 1 / 2.2, 10 / 0.62])
    )


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
        preset="none", pixel_weight=0.3, layers=layers, layer_weights=weights, weights="none"
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
