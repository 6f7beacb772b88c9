"""SPADE on N samples per input (``Condition.repeats``): γ, β computed once per input and
broadcast over its copies — the same outputs and gradients as computing them for every copy."""

from __future__ import annotations

import pytest
import torch

import synth


def _block(kind: str, norm: str):
    cfg = {"channels": 6, "num_classes": 5, "hidden": 8, "param_free_norm": norm}
    if kind == "clvae.cse":
        return synth.build({"type": kind, **cfg}, code_dim=3)
    return synth.build({"type": kind, **cfg})


@pytest.mark.parametrize("norm", ["batch", "instance"])
@pytest.mark.parametrize("grad", [True, False])
def test_spade_on_copies_equals_spade_on_distinct_rows(norm, grad):
    torch.manual_seed(0)
    block = _block("clvae.spade", norm)
    g = torch.Generator().manual_seed(1)
    cond = synth.Condition(label_map=torch.randint(0, 5, (2, 16, 16), generator=g), num_classes=5)
    grouped = cond.repeat_interleave(3)
    plain = grouped.map(lambda t: t)  # the same rows, not marked as copies
    assert grouped.repeats == 3 and plain.repeats == 1
    x = torch.randn(6, 6, 16, 16)
    outs, grads = [], []
    for c in (grouped, plain):
        with torch.set_grad_enabled(grad):
            out = block(x.clone(), synth.Context(c))
        outs.append(out)
        if grad:
            grads.append(torch.autograd.grad((out * x).sum(), list(block.parameters())))
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_spade_computes_gamma_beta_on_one_row_per_input():
    block = _block("clvae.spade", "instance")
    rows: list[int] = []
    block.mlp_gamma.register_forward_hook(lambda m, a, o: rows.append(a[0].shape[0]))
    cond = synth.Condition(label_map=torch.randint(0, 5, (2, 8, 8)), num_classes=5)
    block(torch.randn(8, 6, 8, 8), synth.Context(cond.repeat_interleave(4)))
    assert rows == [2]


def test_cse_keeps_per_sample_gamma_beta():
    """CSE paints each sample's class codes into the map: its γ, β differ between copies."""
    torch.manual_seed(0)
    block = _block("clvae.cse", "instance")
    cond = synth.Condition(label_map=torch.randint(0, 5, (2, 8, 8)), num_classes=5)
    codes = [torch.randn(6, 5, 3)]
    ctx = synth.Context(cond.repeat_interleave(3), synth.Latents(class_codes=codes))
    x = torch.randn(1, 6, 8, 8).expand(6, -1, -1, -1)
    out = block(x, ctx)
    assert not torch.allclose(out[0], out[1])  # same input, same x: only the codes differ
