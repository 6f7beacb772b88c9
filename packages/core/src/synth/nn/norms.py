"""Normalisation with statistics in fp32, shared by every norm layer of core and the plugins.

Under bf16/fp16 autocast the mean and variance of large activations lose precision; these
helpers upcast, normalise, and leave the cast back to ``x.dtype`` to the caller (after it has
modulated the result).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["instance_normalize"]


def instance_normalize(x: Tensor, eps: float = 1e-5) -> Tensor:
    """Normalise each sample and channel over its spatial positions, in fp32.

    ``(x - mean) / sqrt(var + eps)`` with the biased variance, as ``F.instance_norm``.

    Args:
        x: ``[B, C, H, W]`` in any float dtype.
        eps: added to the variance.
    Returns:
        ``[B, C, H, W]`` in **fp32** (callers cast back to ``x.dtype`` after modulating).
    """
    xf = x.float()
    var, mean = torch.var_mean(xf, dim=(-2, -1), correction=0, keepdim=True)
    return (xf - mean) * torch.rsqrt(var + eps)
