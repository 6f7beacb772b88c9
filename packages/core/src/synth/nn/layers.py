"""The label-gather convolution (DESIGN §7): a convolution of a label map, computed by gathering.

A k×k convolution of a one-hot map (SPADE's first MLP conv, pix2pixHD's first layer) is, at
each output pixel, a sum over the k² taps of one kernel column picked by the label under the
tap. A class-painted map (CLVAE's CSE: every pixel of class c carries the vector ``v[b, c]``) is
the same with the column replaced by ``W_tap · v[b, c]``. Both are an ``embedding_bag(sum)``
over (tap, class) indices with an extra all-zero "outside" class for zero padding: exact, and
about K× fewer multiply-adds than the dense convolution of the K-channel map.

Most such convolutions also read a few channels that are not one-hot after the map (instance
edges, instance features, the image of a conditional discriminator, noise): ``extra`` channels
are convolved densely with their slice of the same weight, so one weight of the dense conv's
shape serves both, and official checkpoints load unchanged.
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from . import kernels

__all__ = ["LabelConv2d", "label_conv2d"]


def _gather(
    labels: Tensor,
    weight: Tensor,
    padding: int,
    padding_mode: str,
    class_vectors: Tensor | None,
    stride: int,
    bias: Tensor | None = None,
) -> Tensor:
    """The one-hot (or class-painted) part: ``[B, C_out, H', W']`` by ``embedding_bag(sum)``,
    plus ``bias [C_out]`` when given."""
    return kernels.label_gather_reference(
        labels,
        kernels.gather_table(weight, class_vectors),
        kernel_size=weight.shape[-1],
        padding=padding,
        reflect=padding_mode == "reflect",
        stride=stride,
        bias=bias,
    )


def label_conv2d(
    labels: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    extra: Tensor | None = None,
    padding: int = 0,
    padding_mode: Literal["zeros", "reflect"] = "zeros",
    class_vectors: Tensor | None = None,
    stride: int = 1,
) -> Tensor:
    """Convolution of ``cat(one_hot(labels), extra)`` (or of a class-painted map), by gathering.

    Equal to ``F.conv2d(cat(one_hot(labels), extra), weight, bias, stride, padding)``, or, with
    ``class_vectors``, the same with ``painted[b, :, y, x] = class_vectors[b, labels[b, y, x]]``
    in place of the one-hot map. The leading ``weight.shape[1] - E`` input channels are gathered
    by label; the last ``E`` (those of ``extra``) are convolved densely with their weight slice.

    Args:
        labels: ``LongTensor[B, H, W]`` ids in ``[0, K)``.
        weight: ``[C_out, K + E, k, k]`` (one-hot) or ``[C_out, D + E, k, k]`` (class vectors).
        bias: ``[C_out]`` or None; added once.
        extra: ``[B, E, H, W]`` channels that follow the map (instance edges, features, an
            image), or None (E = 0).
        padding: zero padding means "no class" (the one-hot map is zero there); reflect
            padding reflects the labels, as ``nn.ReflectionPad2d`` does to the one-hot map.
        class_vectors: ``[B, K, D]`` per-sample vector of each class (CLVAE eq. 12).
        stride: as in ``F.conv2d`` (e.g. 2 for a discriminator's first layer).
    Returns:
        ``[B, C_out, H', W']`` in the weight's dtype.
    """
    if weight.shape[-1] != weight.shape[-2]:
        raise ValueError(f"label_conv2d needs a square kernel, got {tuple(weight.shape[-2:])}")
    e = 0 if extra is None else extra.shape[1]
    mapped = weight[:, : weight.shape[1] - e]
    if kernels.use_triton(labels, mapped):  # CUDA: one Triton kernel (synth.nn.kernels)
        out = kernels.label_gather(labels, mapped, padding, padding_mode, class_vectors, stride)
        if bias is not None:
            out = out + rearrange(bias, "o -> o 1 1")
    else:
        out = _gather(labels, mapped, padding, padding_mode, class_vectors, stride, bias)
    if extra is None:
        return out
    x, pad = extra.to(weight.dtype), padding
    if padding and padding_mode == "reflect":
        x, pad = F.pad(x, (padding,) * 4, mode="reflect"), 0
    dense = F.conv2d(x, weight[:, weight.shape[1] - e :], None, stride, pad)
    return out + dense.to(out.dtype)


class LabelConv2d(nn.Conv2d):
    """``nn.Conv2d`` over ``cat(map, extra)`` (``map``: one-hot or class-painted label map) that
    reads the label map by gathering.

    ``weight [C_out, C_map + E, k, k]`` and ``bias`` are those of the dense conv (a checkpoint of
    the dense layer loads unchanged; ``C_map`` is ``num_classes``, or ``in_channels`` = D for
    class vectors). Two ways to call it, equal up to rounding:

    - ``conv(labels: LongTensor[B, H, W], extra=None, class_vectors=None)``: the map by
      gathering (:func:`label_conv2d`), ``extra [B, E, H, W]`` densely;
    - ``conv(x: [B, C_map + E, H, W])`` (a float tensor): the plain dense convolution, for
      inputs that are no longer one-hot (e.g. average-pooled), cast to the weight's dtype.

    Returns ``[B, C_out, H', W']``. Padding is zeros (no class) or reflect.
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
        extra_channels: int = 0,
    ) -> None:
        if padding_mode not in ("zeros", "reflect"):
            raise ValueError(f"padding_mode must be 'zeros' or 'reflect', got {padding_mode!r}")
        mapped = num_classes if in_channels is None else in_channels
        super().__init__(
            mapped + extra_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            padding_mode=padding_mode,
            bias=bias,
        )
        self.num_classes, self.extra_channels = num_classes, extra_channels

    def forward(
        self, x: Tensor, extra: Tensor | None = None, class_vectors: Tensor | None = None
    ) -> Tensor:
        """``x``: the label map ``LongTensor[B, H, W]`` or the dense input ``[B, C_in, H, W]``."""
        if x.is_floating_point():
            return super().forward(x.to(self.weight.dtype))
        if (extra is None) != (self.extra_channels == 0):
            raise ValueError(
                f"{type(self).__name__} reads {self.extra_channels} extra channel(s) after the "
                f"label map; got extra={None if extra is None else tuple(extra.shape)}"
            )
        return label_conv2d(
            x,
            self.weight,
            self.bias,
            extra=extra,
            padding=self.padding[0],
            padding_mode=self.padding_mode,
            class_vectors=class_vectors,
            stride=self.stride[0],
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, classes={self.num_classes}, extra={self.extra_channels}"
