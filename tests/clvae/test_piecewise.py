"""SPADE/CSE's piecewise γ/β (:func:`synth_clvae.norms.piecewise_gamma_beta`): the dense convs
only near class boundaries, per-class constants elsewhere — equal to the dense convs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import synth
from synth_clvae import norms
from synth_clvae.norms import piecewise_gamma_beta


def _blocky(b: int, h: int, w: int, k: int, cell: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, k, (b, h // cell, w // cell), generator=g)
    return synth.nn.ops.resize_labels(coarse, (h, w))


def _dense(block: norms.SPADE, labels: torch.Tensor, vectors: torch.Tensor | None):
    actv = block.mlp_shared[1](block.mlp_shared[0](labels, None, vectors))
    return block.mlp_gamma(actv), block.mlp_beta(actv), actv


@pytest.mark.parametrize("painted", [False, True])
@pytest.mark.parametrize("kernel", [3, 5])
def test_piecewise_equals_dense_convs(painted, kernel, monkeypatch):
    monkeypatch.setattr(norms, "PIECEWISE_MAX_BOUNDARY", 1.0)  # always the piecewise path
    torch.manual_seed(0)
    k, d, b = 7, 5, 2
    cfg = {"channels": 6, "num_classes": k, "hidden": 8, "kernel_size": kernel}
    block = (
        synth.build({"type": "clvae.cse", **cfg}, code_dim=d)
        if painted
        else synth.build({"type": "clvae.spade", **cfg})
    )
    labels = _blocky(b, 64, 96, k, 32, seed=1)
    vectors = torch.randn(b, k, d, requires_grad=True) if painted else None
    want_g, want_b, actv = _dense(block, labels, vectors)
    got = piecewise_gamma_beta(
        labels, actv, block.mlp_shared[0], block.mlp_gamma, block.mlp_beta, vectors
    )
    assert got is not None
    torch.testing.assert_close(got[0], want_g, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[1], want_b, rtol=1e-5, atol=1e-5)
    # gradients reach the same parameters (and class vectors) with the same values
    upstream = torch.randn_like(want_g), torch.randn_like(want_b)
    params = [p for p in block.parameters() if p.requires_grad] + ([vectors] if painted else [])
    dense = torch.autograd.grad(
        (want_g * upstream[0]).sum() + (want_b * upstream[1]).sum(),
        params,
        allow_unused=True,
        retain_graph=True,
    )
    ours = torch.autograd.grad(
        (got[0] * upstream[0]).sum() + (got[1] * upstream[1]).sum(), params, allow_unused=True
    )
    for x, y in zip(ours, dense):
        if y is None:
            continue
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-4)


def test_piecewise_falls_back_when_boundaries_dominate():
    torch.manual_seed(0)
    block = synth.build({"type": "clvae.spade", "channels": 4, "num_classes": 9, "hidden": 8})
    labels = torch.randint(0, 9, (1, 16, 16))  # every pixel near a boundary
    _, _, actv = _dense(block, labels, None)
    assert (
        piecewise_gamma_beta(labels, actv, block.mlp_shared[0], block.mlp_gamma, block.mlp_beta)
        is None
    )


def test_spade_forward_uses_it_and_matches_dense(monkeypatch):
    """The block's forward on CPU takes the piecewise path; the output equals the dense one."""
    monkeypatch.setattr(norms, "PIECEWISE_MAX_BOUNDARY", 1.0)
    torch.manual_seed(0)
    block = synth.build(
        {"type": "clvae.spade", "channels": 4, "num_classes": 5, "hidden": 8,
         "param_free_norm": "instance"}
    ).eval()  # fmt: skip
    labels = _blocky(1, 32, 32, 5, 16, seed=2)
    x = torch.randn(1, 4, 32, 32)
    cond = synth.Condition(label_map=labels, num_classes=5)
    ctx = synth.Context(cond, None)
    calls = []
    real = norms.piecewise_gamma_beta
    monkeypatch.setattr(norms, "piecewise_gamma_beta", lambda *a: calls.append(1) or real(*a))
    got = block(x, ctx)
    assert calls
    g, bt, _ = _dense(block, labels, None)
    want = F.instance_norm(x) * (1 + g) + bt
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert isinstance(block.mlp_gamma, nn.Conv2d)


def test_boundary_mask_is_an_independent_window_check():
    """boundary_mask against a direct scan of each pixel's (2·reach + 1)² window (outside the
    image counts as another class)."""
    labels = _blocky(2, 12, 10, 3, 4, seed=3)
    reach = 2
    got = norms.boundary_mask(labels, reach)
    padded = F.pad(labels, (reach,) * 4, value=-1)
    want = torch.zeros_like(got)
    for dy in range(2 * reach + 1):
        for dx in range(2 * reach + 1):
            window = padded[:, dy : dy + 12, dx : dx + 10]
            want |= window != labels
    assert torch.equal(got, want)


def test_generator_computes_each_boundary_mask_once_per_size(monkeypatch):
    """The blocks of one resolution share the mask through the Context: one boundary_mask per
    distinct label-map size (and label_scale) in a forward, not one per SPADE."""
    gen = synth.build(
        {"type": "clvae.spade_generator", "num_classes": 5, "ngf": 4, "crop_size": 64}
    ).eval()
    cond = synth.Condition(label_map=_blocky(1, 64, 64, 5, 16, seed=4), num_classes=5)
    calls = []
    real = norms.boundary_mask
    monkeypatch.setattr(
        norms, "boundary_mask", lambda lab, r: calls.append(lab.shape) or real(lab, r)
    )
    spades = [m for m in gen.modules() if isinstance(m, norms.SPADE)]
    with torch.no_grad():
        gen(cond)
    assert len(calls) == len(set(calls)) < len(spades)
