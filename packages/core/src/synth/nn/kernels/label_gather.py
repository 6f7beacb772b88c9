"""The label-gather conv's core (:mod:`synth.nn.layers`) as one Triton kernel on CUDA.

A k×k convolution of a one-hot (or class-painted) label map is, at each output pixel, the sum
over the ``k²`` taps of one row of a ``[k², K + 1, C_out]`` table (``weight``'s tap columns;
with class vectors, ``W_tap · v[b, c]`` per sample; row ``K`` is zeros: outside the map under
zero padding). The PyTorch path (:func:`synth.nn.layers.label_conv2d`) builds a
``[B·H'·W', k²]`` int64 index tensor and runs ``F.embedding_bag(sum)``, then copies
``(b h w) o -> b o h w``; the kernel reads the labels and writes ``[B, C_out, H', W']`` in one
pass. The table is built here by the same PyTorch code (so gradients reach ``weight`` and
``class_vectors`` through it); the backward of the gather itself recomputes the PyTorch
``embedding_bag`` under autograd.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from .. import ops

__all__ = ["gather_table", "label_gather", "label_gather_reference"]


def gather_table(weight: Tensor, class_vectors: Tensor | None) -> Tensor:
    """``[k², K + 1, C_out]`` (one-hot) or ``[B, k², K + 1, C_out]`` (class vectors): the row
    each (tap, class) adds; the last class is the all-zero "outside"."""
    w_taps = rearrange(weight, "o c i j -> (i j) c o")  # [k², C, C_out]
    if class_vectors is None:
        return F.pad(w_taps, (0, 0, 0, 1))
    table = torch.einsum("bkd,tdo->btko", class_vectors.to(weight.dtype), w_taps)
    return F.pad(table, (0, 0, 0, 1))


def label_gather_reference(
    labels: Tensor,
    table: Tensor,
    *,
    kernel_size: int,
    padding: int,
    reflect: bool,
    stride: int,
    bias: Tensor | None = None,
) -> Tensor:
    """The PyTorch gather (``embedding_bag(sum)``) from a :func:`gather_table`:
    ``[B, C_out, H', W']`` in the table's dtype, plus ``bias [C_out]`` when given."""
    b, k = labels.shape[0], kernel_size
    num = table.shape[-2] - 1
    c_out = table.shape[-1]
    idx, ho, wo = ops.label_taps(labels, k, padding, "reflect" if reflect else "zeros", num, stride)
    idx = idx + torch.arange(k * k, device=idx.device) * (num + 1)
    if table.dim() == 4:
        per_sample = k * k * (num + 1)
        offsets = torch.arange(b, device=idx.device) * per_sample
        idx = idx + offsets.repeat_interleave(ho * wo)[:, None]
    out = ops.bag_sum(idx, table.reshape(-1, c_out))
    if bias is not None:  # in place on the bag sums (not on a view: no CopySlices in backward)
        out = out.add_(bias)
    return rearrange(out, "(b h w) o -> b o h w", b=b, h=ho, w=wo)


class _LabelGather(torch.autograd.Function):
    """Triton forward; backward of the table by the PyTorch gather under autograd."""

    @staticmethod
    def forward(
        ctx: Any,
        labels: Tensor,
        table: Tensor,
        kernel_size: int,
        padding: int,
        reflect: bool,
        stride: int,
    ) -> Tensor:
        from . import triton_kernels

        b, h, w = labels.shape
        k = kernel_size
        ho = (h + 2 * padding - k) // stride + 1
        wo = (w + 2 * padding - k) // stride + 1
        out = torch.empty(b, table.shape[-1], ho, wo, device=table.device, dtype=table.dtype)
        triton_kernels.launch_label_gather(
            labels.contiguous(),
            table.contiguous(),
            out,
            kernel_size=k,
            padding=padding,
            reflect=reflect,
            stride=stride,
            num=table.shape[-2] - 1,
            per_sample=table.dim() == 4,
        )
        ctx.save_for_backward(labels, table)
        ctx.args = (k, padding, reflect, stride)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        labels, table = ctx.saved_tensors
        grad_table = None
        if ctx.needs_input_grad[1]:
            k, padding, reflect, stride = ctx.args
            with torch.enable_grad():
                t = table.detach().requires_grad_()
                out = label_gather_reference(
                    labels, t, kernel_size=k, padding=padding, reflect=reflect, stride=stride
                )
                (grad_table,) = torch.autograd.grad(out, t, grad_out)
        return None, grad_table, None, None, None, None


def label_gather(
    labels: Tensor,
    weight: Tensor,
    padding: int,
    padding_mode: str,
    class_vectors: Tensor | None,
    stride: int,
) -> Tensor:
    """The gathered part of :func:`synth.nn.layers.label_conv2d` by the Triton kernel:
    ``labels [B, H, W]`` (ids in ``[0, K)``), ``weight [C_out, K or D, k, k]`` (the map's
    slice), ``class_vectors [B, K, D]`` or None; returns ``[B, C_out, H', W']`` in the
    weight's dtype. The caller decides the path (:func:`.dispatch.use_triton`)."""
    k = weight.shape[-1]
    table = gather_table(weight, class_vectors)
    return _LabelGather.apply(labels, table, k, padding, padding_mode == "reflect", stride)
