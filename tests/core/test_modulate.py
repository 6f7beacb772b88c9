"""synth.nn.modulate: SPADE/AdaIN's ``x̂ · (1 + γ) + β`` (eq. 1 of the SPADE paper)."""

from __future__ import annotations

import pytest
import torch

from synth.nn import modulate


@pytest.mark.parametrize("per_channel", [False, True], ids=["spatial", "per-channel"])
def test_modulate_is_eq_1_in_place_or_not(per_channel):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 4, generator=g)
    shape = (2, 3, 1, 1) if per_channel else (2, 3, 5, 4)
    gamma, beta = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    want = x.double() * (1 + gamma.double()) + beta.double()  # the formula, in float64
    torch.testing.assert_close(modulate(x, gamma, beta).double(), want)
    y = x.clone()
    out = modulate(y, gamma, beta, inplace=True)
    torch.testing.assert_close(out.double(), want)
    assert out.data_ptr() == y.data_ptr()  # no map allocated


def test_in_place_needs_the_full_shape_and_keeps_gradients_otherwise():
    x = torch.randn(1, 2, 1, 1)
    gamma = torch.randn(1, 2, 3, 3, requires_grad=True)
    out = modulate(x, gamma, torch.zeros(1, 2, 3, 3), inplace=True)  # broadcasts: not in place
    assert out.shape == (1, 2, 3, 3) and x.shape == (1, 2, 1, 1)
    out.sum().backward()
    torch.testing.assert_close(gamma.grad, x.expand(1, 2, 3, 3))
