"""Layers that read label maps, computed by gathering instead of convolving (DESIGN §7).

A k×k convolution of a one-hot map (SPADE's first MLP conv, pix2pixHD's first layer) is, at
each output pixel, a sum over the k² taps of one kernel column picked by the label under the
tap. A class-painted map (CLVAE's CSE: every pixel of class c carries the vector ``v[b, c]``) is
the same with the column replaced by ``W_tap · v[b, c]``. Both are an ``embedding_bag(sum)``
over (tap, class) indices with an extra all-zero "outside" class for zero padding: exact, and
about K× fewer multiply-adds than the dense convolution of the K-channel map.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

__all__ = ["LabelConv2d", "label_conv2d"]


def _reflect(n: int, p: int, device: torch.device) -> Tensor:
    """Source index of each position of a length-``n`` axis reflect-padded by ``p``."""
    idx = torch.arange(-p, n + p, device=device).abs()
    return torch.where(idx >= n, 2 * (n - 1) - idx, idx)


def _tap_indices(
    labels: Tensor, k: int, padding: int, padding_mode: str, outside: int, stride: int = 1
) -> tuple[Tensor, int, int]:
    """``[B·H'·W', k²]`` class index under each tap of each output pixel."""
    h, w = labels.shape[1:]
    if padding and padding_mode == "reflect":
        rows = _reflect(h, padding, labels.device)
        cols = _reflect(w, padding, labels.device)
        padded = labels.index_select(1, rows).index_select(2, cols)
    elif padding:
        padded = F.pad(labels, (padding, padding, padding, padding), value=outside)
    else:
        padded = labels
    taps = padded.unfold(1, k, stride).unfold(2, k, stride)  # [B, H', W', k, k]
    ho, wo = taps.shape[1], taps.shape[2]
    return rearrange(taps, "b h w i j -> (b h w) (i j)"), ho, wo


def label_conv2d(
    labels: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    padding: int = 0,
    padding_mode: Literal["zeros", "reflect"] = "zeros",
    class_vectors: Tensor | None = None,
    stride: int = 1,
) -> Tensor:
    """Convolution of a one-hot (or class-painted) label map, by gathering.

    Equal to ``F.conv2d(one_hot(labels), weight, bias, stride, padding)``, or, with
    ``class_vectors``, to ``F.conv2d(painted, weight, bias, padding=padding)`` where
    ``painted[b, :, y, x] = class_vectors[b, labels[b, y, x]]``.

    Args:
        labels: ``LongTensor[B, H, W]`` ids in ``[0, K)``.
        weight: ``[C_out, K, k, k]`` (one-hot) or ``[C_out, D, k, k]`` (with class vectors).
        bias: ``[C_out]`` or None.
        padding: zero padding means "no class" (the one-hot map is zero there); reflect
            padding reflects the labels, as ``nn.ReflectionPad2d`` does to the one-hot map.
        class_vectors: ``[B, K, D]`` per-sample vector of each class (CLVAE eq. 12).
        stride: as in ``F.conv2d`` (e.g. 2 for a discriminator's first layer).
    Returns:
        ``[B, C_out, H', W']`` in the weight's dtype.
    """
    if weight.shape[-1] != weight.shape[-2]:
        raise ValueError(f"label_conv2d needs a square kernel, got {tuple(weight.shape[-2:])}")
    c_out, k = weight.shape[0], weight.shape[-1]
    b = labels.shape[0]
    w_taps = rearrange(weight, "o c i j -> (i j) c o")  # [k², C, C_out]
    if class_vectors is None:
        num = weight.shape[1]
        table = F.pad(w_taps, (0, 0, 0, 1))  # [k², K+1, C_out]: class K = outside (zeros)
        per_sample = 0
    else:
        num = class_vectors.shape[1]
        vecs = class_vectors.to(weight.dtype)
        table = torch.einsum("bkd,tdo->btko", vecs, w_taps)  # [B, k², K, C_out]
        table = F.pad(table, (0, 0, 0, 1))  # [B, k², K+1, C_out]
        per_sample = k * k * (num + 1)
    idx, ho, wo = _tap_indices(labels, k, padding, padding_mode, outside=num, stride=stride)
    idx = idx + torch.arange(k * k, device=idx.device) * (num + 1)
    if per_sample:
        idx = (
            idx
            + (torch.arange(b, device=idx.device) * per_sample).repeat_interleave(ho * wo)[:, None]
        )
    out = F.embedding_bag(idx, table.reshape(-1, c_out), mode="sum")  # [B·H'·W', C_out]
    if bias is not None:
        out = out + bias
    return rearrange(out, "(b h w) o -> b o h w", b=b, h=ho, w=wo)


class LabelConv2d(nn.Module):
    """``nn.Conv2d(num_classes, out_channels, k)`` applied to a label map's one-hot, by gathering.

    ``weight``/``bias`` have exactly the shapes of that dense conv, so a checkpoint of the dense
    layer loads unchanged. ``forward(labels [B, H, W], class_vectors=None) -> [B, C_out, H', W']``;
    with ``class_vectors [B, K, D]`` the layer reads the class-painted map instead and
    ``in_channels`` is D (set ``in_channels``).
    """

    def __init__(
        self,
        num_classes: int,
        out_channels: int,
        kernel_size: int,
        *,
        padding: int = 0,
        padding_mode: Literal["zeros", "reflect"] = "zeros",
        bias: bool = True,
        in_channels: int | None = None,
        stride: int = 1,
    ) -> None:
        super().__init__()
        self.num_classes, self.padding, self.padding_mode = num_classes, padding, padding_mode
        self.stride = stride
        c_in = num_classes if in_channels is None else in_channels
        self.weight = nn.Parameter(torch.empty(out_channels, c_in, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The initialisation of ``nn.Conv2d`` with the same shapes."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight[0].numel()
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, labels: Tensor, class_vectors: Tensor | None = None) -> Tensor:
        return label_conv2d(
            labels,
            self.weight,
            self.bias,
            padding=self.padding,
            padding_mode=self.padding_mode,
            class_vectors=class_vectors,
            stride=self.stride,
        )

    def extra_repr(self) -> str:
        o, c, k, _ = self.weight.shape
        return (
            f"{c}, {o}, kernel_size={k}, stride={self.stride}, padding={self.padding}, "
            f"padding_mode={self.padding_mode!r}, classes={self.num_classes}"
        )
