"""What metrics check of the images they are given, before any network sees them."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["check_images"]


def check_images(who: str, x: Tensor, what: str) -> None:
    """Raise a ``ValueError`` naming ``who`` and ``what`` unless ``x`` is finite ``[B, 3, H, W]``."""
    if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{who}: {what} must be RGB images [B, 3, H, W] in [-1, 1], got {shape}")
    if x.shape[0] and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{who}: {what} contain NaN or Inf values")
