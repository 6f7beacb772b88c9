"""Spectrally normalised convolution that divides the smaller tensor by σ.

torch's ``spectral_norm`` parametrization computes ``W / σ`` at every call: a pass over the
whole weight (and its gradient in training). A convolution is linear in its weight, so
``conv(x, W / σ) + b = conv(x, W) / σ + b``: for SPADE's 1024→1024 3×3 convs on 8×8 and
16×16 maps (9.4 M weights, 65–262 k outputs) dividing the output is the cheaper pass. σ is
the parametrization's own estimate (its power iteration runs as usual in training), so the
result is the same function of the same parameters, and the state dict is unchanged. In
eval mode without weight gradients σ itself is kept between calls (see :func:`_sigma`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

__all__ = ["spectral_conv2d"]


def _spectral(conv: nn.Conv2d) -> nn.Module | None:
    """The conv's lone spectral-norm parametrization of ``weight`` (None: not one we handle)."""
    if not parametrize.is_parametrized(conv, "weight") or parametrize._cache_enabled:
        return None
    plist = conv.parametrizations.weight  # type: ignore[union-attr]
    if len(plist) != 1 or type(plist[0]).__name__ != "_SpectralNorm" or not hasattr(plist[0], "_u"):
        return None
    return plist[0]


def _sigma(sn: nn.Module, weight: Tensor) -> Tensor:
    """σ as the parametrization computes it (``_SpectralNorm.forward``), power step included.

    In eval mode with no gradient to the weight, σ is a constant of (W, u, v): it is kept on
    the parametrization, keyed by their version counters (an optimizer step, a state-dict
    load or any in-place change bumps them), so sampling does not re-read the weight."""
    frozen = not sn.training and not (torch.is_grad_enabled() and weight.requires_grad)
    key = (weight._version, weight.data_ptr(), sn._u._version, sn._v._version)
    cached = getattr(sn, "_synth_sigma", None)
    if frozen and cached is not None and cached[0] == key:
        return cached[1]
    sigma = _compute_sigma(sn, weight)
    if frozen and not torch.compiler.is_compiling():
        sn._synth_sigma = (key, sigma.detach())
    return sigma


def _compute_sigma(sn: nn.Module, weight: Tensor) -> Tensor:
    weight_mat = sn._reshape_weight_to_matrix(weight)  # type: ignore[operator]
    if sn.training:
        sn._power_method(weight_mat, sn.n_power_iterations)  # type: ignore[operator]
    # clones, as torch does: the power method updates u, v in place
    u = sn._u.clone(memory_format=torch.contiguous_format)  # type: ignore[union-attr]
    v = sn._v.clone(memory_format=torch.contiguous_format)  # type: ignore[union-attr]
    return torch.vdot(u, torch.mv(weight_mat, v))


def spectral_conv2d(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """``conv(x)`` for ``x: [B, C_in, H, W]``; for a conv under torch's ``spectral_norm``
    parametrization whose weight outnumbers its output, computed as ``conv(x, W) / σ + b``.

    Equal to ``conv(x)`` up to float rounding, gradients included; any other conv (or a
    parametrization cache in use, or non-zero padding modes) is simply called.
    """
    sn = _spectral(conv)
    if sn is None or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        return conv(x)
    weight = conv.parametrizations.weight.original  # type: ignore[union-attr]
    sigma = _sigma(sn, weight)
    stride = conv.stride[0] * conv.stride[1]
    if x.shape[0] * conv.out_channels * x.shape[-2] * x.shape[-1] // stride >= weight.numel():
        w = weight / sigma  # the parametrization's own W / σ, with σ possibly kept
        return F.conv2d(x, w, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)
    out = F.conv2d(x, weight, None, conv.stride, conv.padding, conv.dilation, conv.groups)
    out = out / sigma
    return out if conv.bias is None else out + conv.bias.view(1, -1, 1, 1)
