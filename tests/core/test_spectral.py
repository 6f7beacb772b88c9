"""synth.nn.spectral_conv2d: the same function as the spectrally normalised conv it runs."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from synth.nn import spectral_conv2d


def _pair(cin: int, cout: int, stride: int = 1, bias: bool = True) -> tuple[nn.Conv2d, nn.Conv2d]:
    torch.manual_seed(0)
    conv = spectral_norm(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=bias))
    return conv, copy.deepcopy(conv)


def _sigma_by_hand(conv: nn.Conv2d) -> torch.Tensor:
    """σ = uᵀ W v from the parametrization's buffers (torch's formula, independently)."""
    sn = conv.parametrizations.weight[0]
    w = conv.parametrizations.weight.original.flatten(1)
    return sn._u @ w @ sn._v


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize(
    "cin,cout,size,stride,bias",
    [(64, 64, 4, 1, True), (8, 16, 32, 1, True), (32, 32, 8, 2, False)],
    ids=["output-scaled", "weight-scaled", "strided-no-bias"],
)
def test_equals_the_parametrized_conv(cin, cout, size, stride, bias, train):
    ref, ours = _pair(cin, cout, stride, bias)
    ref.train(train), ours.train(train)
    x = torch.randn(2, cin, size, size, requires_grad=True)
    want, got = ref(x), spectral_conv2d(ours, x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    params = lambda m: [p for p in (m.parametrizations.weight.original, m.bias) if p is not None]  # noqa: E731
    g_want = torch.autograd.grad(want.square().sum(), [x, *params(ref)])
    g_got = torch.autograd.grad(got.square().sum(), [x, *params(ours)])
    for a, b in zip(g_got, g_want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    # the power iteration ran (in training) exactly as torch's: same u, v afterwards
    for name in ("_u", "_v"):
        a = getattr(ours.parametrizations.weight[0], name)
        torch.testing.assert_close(a, getattr(ref.parametrizations.weight[0], name))


def test_output_scaling_is_conv_over_sigma():
    """The formula: conv(x, W / σ) + b = conv(x, W) / σ + b, with σ = uᵀ W v."""
    conv, _ = _pair(64, 64)
    conv.eval()
    x = torch.randn(1, 64, 4, 4)
    w = conv.parametrizations.weight.original
    want = torch.nn.functional.conv2d(x, w / _sigma_by_hand(conv), conv.bias, padding=1)
    torch.testing.assert_close(spectral_conv2d(conv, x), want, rtol=1e-5, atol=1e-5)


def test_eval_sigma_follows_in_place_weight_changes():
    """σ is kept between eval calls, but an in-place change of W (an optimizer step, a state
    dict load) is seen at the next call."""
    ref, ours = _pair(64, 64)
    ref.eval(), ours.eval()
    x = torch.randn(1, 64, 4, 4)
    with torch.no_grad():
        spectral_conv2d(ours, x)
        for m in (ref, ours):
            m.parametrizations.weight.original.mul_(3.0).add_(0.1)
        torch.testing.assert_close(spectral_conv2d(ours, x), ref(x), rtol=1e-5, atol=1e-5)
        ours.load_state_dict(copy.deepcopy(_pair(64, 64)[0]).state_dict())
        fresh = _pair(64, 64)[0].eval()
        torch.testing.assert_close(spectral_conv2d(ours, x), fresh(x), rtol=1e-5, atol=1e-5)


def test_other_convs_are_called_as_they_are():
    plain = nn.Conv2d(4, 4, 3, padding=1)
    x = torch.randn(1, 4, 8, 8)
    torch.testing.assert_close(spectral_conv2d(plain, x), plain(x))
    reflect = spectral_norm(nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect")).eval()
    torch.testing.assert_close(spectral_conv2d(reflect, x), reflect(x))
    sn, _ = _pair(64, 64)
    sn.eval()
    with parametrize.cached():
        torch.testing.assert_close(
            spectral_conv2d(sn, torch.ones(1, 64, 4, 4)), sn(torch.ones(1, 64, 4, 4))
        )
