"""SPADE's normalise-and-modulate as one fused op (SPADE eq. 1; AdaIN with spatial γ, β).

``out = (x - μ) / sqrt(σ² + eps) · (1 + γ) + β`` with ``μ, σ²`` per (sample, channel) over
``H, W`` (instance norm) or per channel over ``B, H, W`` (batch norm, ``nn.BatchNorm2d``
semantics: running statistics updated in training, used in eval), statistics and arithmetic
in fp32, the result in ``x``'s dtype — exactly what the PyTorch path
``modulate(instance_normalize(x) | batch_normalize(x, bn), γ, β).to(x.dtype)`` of
:mod:`synth.nn.norms` computes, which stays the CPU path and the reference.

On CUDA (see :mod:`.dispatch`) the forward is one Triton kernel; the backward recomputes the
PyTorch path under autograd (exact gradients of the same formula; a fused backward is left for
when the benchmark shows the backward matters).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from ..norms import batch_normalize, instance_normalize, modulate
from .dispatch import use_triton

__all__ = ["batch_statistics", "norm_modulate", "norm_modulate_reference"]


def norm_modulate_reference(
    x: Tensor, gamma: Tensor, beta: Tensor, *, eps: float = 1e-5, bn: _BatchNorm | None = None
) -> Tensor:
    """The PyTorch path: ``modulate(normalize(x), γ, β).to(x.dtype)`` with
    :func:`~synth.nn.norms.instance_normalize` (``bn=None``) or
    :func:`~synth.nn.norms.batch_normalize` (which updates ``bn``'s running statistics)."""
    normalized = instance_normalize(x, eps) if bn is None else batch_normalize(x, bn)
    return modulate(normalized, gamma, beta).to(x.dtype)


def batch_statistics(x: Tensor, bn: _BatchNorm) -> tuple[Tensor, Tensor]:
    """Per-channel fp32 ``(mean, rstd)`` ``[C]`` with which ``bn`` (no affine) normalises ``x``.

    Same semantics as :func:`~synth.nn.norms.batch_normalize` (``F.batch_norm``): in training,
    the biased batch statistics over ``B, H, W``, and the running statistics updated with the
    unbiased variance (momentum, or a cumulative average when it is None;
    ``num_batches_tracked`` counted); in eval, the running statistics.
    """
    factor = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        if bn.momentum is None:
            factor = 1.0 / float(bn.num_batches_tracked)
    xf = x.detach().float()
    if bn.training or bn.running_mean is None:
        n = x.numel() // x.shape[1]
        if n <= 1:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size "
                f"{list(x.shape)}: batch norm needs B·H·W > 1 (use a larger batch or eval mode)"
            )
        var, mean = torch.var_mean(xf, dim=(0, 2, 3), correction=0)
        if bn.training and bn.running_mean is not None and bn.running_var is not None:
            with torch.no_grad():
                rm, rv = bn.running_mean.float(), bn.running_var.float()
                rm = rm * (1 - factor) + mean * factor
                rv = rv * (1 - factor) + var * (n / (n - 1)) * factor
                bn.running_mean.copy_(rm)
                bn.running_var.copy_(rv)
    else:
        mean = bn.running_mean.float()
        var = bn.running_var.float()
    return mean, torch.rsqrt(var + bn.eps)


class _NormModulate(torch.autograd.Function):
    """Triton forward; backward by the PyTorch formula under autograd."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        gamma: Tensor,
        beta: Tensor,
        eps: float,
        mean: Tensor | None,
        rstd: Tensor | None,
        batch_grad: bool,
    ) -> Tensor:
        from . import triton_kernels

        xc, gc, bc = x.contiguous(), gamma.contiguous(), beta.contiguous()
        out = torch.empty_like(xc)
        triton_kernels.launch_norm_modulate(xc, gc, bc, out, eps, mean, rstd)
        ctx.save_for_backward(x, gamma, beta, mean, rstd)
        ctx.eps, ctx.batch_grad = eps, batch_grad
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        x, gamma, beta, mean, rstd = ctx.saved_tensors
        with torch.enable_grad():
            xr = x.detach().requires_grad_(ctx.needs_input_grad[0])
            gr = gamma.detach().requires_grad_(ctx.needs_input_grad[1])
            br = beta.detach().requires_grad_(ctx.needs_input_grad[2])
            xf = xr.float()
            if mean is None:  # instance statistics
                var, mu = torch.var_mean(xf, dim=(-2, -1), correction=0, keepdim=True)
                normalized = (xf - mu) * torch.rsqrt(var + ctx.eps)
            elif ctx.batch_grad:  # batch statistics of this batch (training)
                var, mu = torch.var_mean(xf, dim=(0, 2, 3), correction=0, keepdim=True)
                normalized = (xf - mu) * torch.rsqrt(var + ctx.eps)
            else:  # running statistics: constants
                normalized = (xf - mean[:, None, None]) * rstd[:, None, None]
            out = modulate(normalized, gr, br).to(x.dtype)
            inputs = [t for t in (xr, gr, br) if t.requires_grad]
            grads = iter(torch.autograd.grad(out, inputs, grad_out)) if inputs else iter(())
        return (
            next(grads) if ctx.needs_input_grad[0] else None,
            next(grads) if ctx.needs_input_grad[1] else None,
            next(grads) if ctx.needs_input_grad[2] else None,
            None,
            None,
            None,
            None,
        )


def norm_modulate(
    x: Tensor, gamma: Tensor, beta: Tensor, *, eps: float = 1e-5, bn: _BatchNorm | None = None
) -> Tensor:
    """``normalize(x) · (1 + γ) + β`` in ``x``'s dtype, fused on CUDA.

    Args:
        x: ``[B, C, H, W]`` in any float dtype.
        gamma, beta: ``[B, C, H, W]`` (SPADE's spatial modulation); other broadcastable shapes,
            and channels-last (not NCHW-contiguous) tensors, take the PyTorch path.
        eps: of the instance norm (``bn=None``); a batch norm uses ``bn.eps``.
        bn: the parameter-free ``nn.BatchNorm2d`` holding the running statistics, or None for
            instance statistics. A ``bn`` with affine parameters takes the PyTorch path.
    Returns:
        ``[B, C, H, W]`` in ``x.dtype``; equal to :func:`norm_modulate_reference` up to float
        rounding (the same running-statistics update included).
    """
    fused = (
        x.dim() == 4
        and gamma.shape == x.shape
        and beta.shape == x.shape
        and (bn is None or bn.weight is None)
        # the kernel walks NCHW rows; copying channels-last inputs would cost more than it saves
        and all(t.is_contiguous() for t in (x, gamma, beta))
        and use_triton(x, gamma, beta)
    )
    if not fused:
        return norm_modulate_reference(x, gamma, beta, eps=eps, bn=bn)
    if bn is None:
        mean = rstd = None
        batch_grad = False
    else:
        mean, rstd = batch_statistics(x, bn)
        batch_grad = bn.training or bn.running_mean is None
    return _NormModulate.apply(x, gamma, beta, eps, mean, rstd, batch_grad)
