"""The loop reference of bench/nested_scale.py (tests/nested_scale/ndiv_reference.py) agrees with
the plugin's batched NDiv: values and gradients, on a tiny pyramid with a partial collapse."""

from __future__ import annotations

import torch
from einops import rearrange

import synth
from synth_nested_scale import NDiv, ndiv

from .ndiv_reference import ndiv_one_input, progressive_ndiv_loop


def _collapsed_pyramid(b: int, n: int, sizes: list[int], g: torch.Generator) -> list[torch.Tensor]:
    """``[B·N, 3, s, s]`` per level, ordered ``(b n)``; samples 0 and 1 of each input nearly
    coincide, so the hinge is active and the gradients are not all zero."""
    levels = []
    for s in sizes:
        x = torch.randn(b, n, 3, s, s, generator=g)
        x[:, 1] = x[:, 0] + 0.05 * x[:, 1]
        levels.append(rearrange(torch.tanh(x), "b n ... -> (b n) ...").requires_grad_())
    return levels


def test_progressive_loop_matches_the_ndiv_loss_values_and_gradients():
    g = torch.Generator().manual_seed(0)
    b, n, sizes = 2, 4, [4, 8]
    levels = _collapsed_pyramid(b, n, sizes, g)
    codes = [torch.randn(b * n, 12, generator=g).requires_grad_() for _ in sizes]
    out = synth.SynthesisOutput(
        image=levels[-1],
        pyramid=levels,
        extras={f"scale_code/{k}": c for k, c in enumerate(codes)},
    )
    batch = synth.LossInputs(
        "generator",
        synth.Condition(mask=torch.ones(b * n, 1, 8, 8)),
        samples=rearrange(levels[-1], "(b n) c h w -> b n c h w", n=n),
        sample_output=out,
    )
    got, want = NDiv()(batch), progressive_ndiv_loop(codes, levels, n)
    assert float(want.detach()) > 0
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
    grads = torch.autograd.grad(got, levels + codes)
    expected = torch.autograd.grad(want, levels + codes)
    for a, e in zip(grads, expected):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-8)
    assert all(bool((a != 0).any()) for a in grads)


def test_one_input_matches_the_pure_ndiv_with_alpha():
    g = torch.Generator().manual_seed(1)
    z, y = torch.randn(1, 5, 6, generator=g), torch.randn(1, 5, 30, generator=g)
    y[0, 1] = y[0, 0] + 0.01
    for alpha in (0.8, 1.5):
        want = ndiv(z, y, alpha)[0]
        torch.testing.assert_close(ndiv_one_input(z[0], y[0], alpha), want, rtol=1e-6, atol=1e-7)
