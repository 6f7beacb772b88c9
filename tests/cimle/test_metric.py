"""cimle.faithfulness_weighted_variance (§5.1.5) by hand."""

from __future__ import annotations

import math

import torch

import synth


def test_fwv_by_hand(cimle_registry):
    # one input, two 1-pixel samples; core.l1 as d: values easy to compute by hand
    samples = torch.tensor([[0.2, -0.2]]).view(1, 2, 1, 1, 1).expand(1, 2, 3, 1, 1)
    target = torch.full((1, 3, 1, 1), 0.6)
    metric = synth.build(
        "cimle.faithfulness_weighted_variance", distance={"type": "core.l1"}, sigmas=[0.5, 1.0]
    )
    metric.update(samples.contiguous(), target)
    out = metric.compute()
    # mean sample 0; d(ỹ_i, ȳ) = 0.2 for both; d(ỹ_i, y) = 0.4 and 0.8
    for s in (0.5, 1.0):
        want = (0.2 * math.exp(-0.4 / (2 * s * s)) + 0.2 * math.exp(-0.8 / (2 * s * s))) / 2
        assert abs(out[f"fwv@{s:g}"] - want) < 1e-6
    assert out["settings"]["sigmas"] == [0.5, 1.0]
