"""The Triton kernels and their launchers (imported only when a Triton path runs).

Whether they run compiled (CUDA) or in Triton's interpreter (CPU tensors, for tests) is fixed
when this module is imported: ``TRITON_INTERPRET=1`` must be in the environment by then.

``tl.sum`` and ``tl.zeros`` are not used: they are ``@triton.jit`` functions of
``triton.language.standard``, compiled or interpreted as that module was first imported (often
by torch's inductor, without the interpreter), so the interpreter could not run them;
``tl.reduce`` with our own combine function and ``tl.full`` (builtins) work either way.

Two kernels:

- :func:`norm_modulate_kernel`: one program per ``(sample, channel)`` row of ``x [B, C, H, W]``:
  the row's mean and biased variance in fp32 (two passes over the row: no cancellation for
  large means), then ``(x - mean)·rstd·(1 + γ) + β`` written in the output's dtype (SPADE eq. 1,
  AdaIN). With given statistics (batch norm: one mean/rstd per channel) the passes are skipped.
  One read of γ and β and one write: the unfused PyTorch path materialises ``x̂``, ``1 + γ``
  and the fp32 product besides.
- :func:`label_gather_kernel`: the label-gather conv (:mod:`synth.nn.layers`): each output
  pixel sums, over the ``k²`` taps, the row of the ``[k², K + 1, C_out]`` table picked by the
  label under the tap (class ``K`` = outside, under zero padding). It reads the labels directly
  (no ``[B·H'·W', k²]`` int64 index tensor) and writes ``[B, C_out, H', W']`` in place (no
  ``(b h w) o -> b o h w`` copy).
"""

from __future__ import annotations

import triton
import triton.language as tl
from torch import Tensor

__all__ = [
    "INTERPRETED",
    "check_device",
    "label_gather_kernel",
    "launch_label_gather",
    "launch_norm_modulate",
    "norm_modulate_kernel",
]


@triton.jit
def _add(a, b):
    return a + b


@triton.jit
def norm_modulate_kernel(
    x_ptr,
    g_ptr,
    b_ptr,
    out_ptr,
    mean_ptr,
    rstd_ptr,
    C,
    HW,
    eps,
    HAS_STATS: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0)
    base = row.to(tl.int64) * HW
    offs = tl.arange(0, BLOCK)
    if HAS_STATS:
        c = row % C
        mean = tl.load(mean_ptr + c).to(tl.float32)
        rstd = tl.load(rstd_ptr + c).to(tl.float32)
    else:
        acc = tl.full([BLOCK], 0.0, tl.float32)
        for start in range(0, HW, BLOCK):
            idx = start + offs
            m = idx < HW
            acc += tl.load(x_ptr + base + idx, mask=m, other=0.0).to(tl.float32)
        mean = tl.reduce(acc, 0, _add) / HW
        acc2 = tl.full([BLOCK], 0.0, tl.float32)
        for start in range(0, HW, BLOCK):
            idx = start + offs
            m = idx < HW
            v = tl.load(x_ptr + base + idx, mask=m, other=0.0).to(tl.float32)
            d = tl.where(m, v - mean, 0.0)
            acc2 += d * d
        var = tl.reduce(acc2, 0, _add) / HW
        rstd = 1.0 / tl.sqrt(var + eps)
    for start in range(0, HW, BLOCK):
        idx = start + offs
        m = idx < HW
        v = tl.load(x_ptr + base + idx, mask=m, other=0.0).to(tl.float32)
        g = tl.load(g_ptr + base + idx, mask=m, other=0.0).to(tl.float32)
        bb = tl.load(b_ptr + base + idx, mask=m, other=0.0).to(tl.float32)
        y = (v - mean) * rstd * (1.0 + g) + bb
        tl.store(out_ptr + base + idx, y.to(out_ptr.dtype.element_ty), mask=m)


@triton.jit
def label_gather_kernel(
    labels_ptr,
    table_ptr,
    out_ptr,
    H,
    W,
    HO,
    WO,
    NP,
    C_OUT,
    NUM,
    STRIDE: tl.constexpr,
    PAD: tl.constexpr,
    KS: tl.constexpr,
    REFLECT: tl.constexpr,
    PER_SAMPLE: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    pid_p = tl.program_id(0)
    pid_c = tl.program_id(1)
    offs_p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    mask_p = offs_p < NP
    hw_o = HO * WO
    b = (offs_p // hw_o).to(tl.int64)
    r = offs_p % hw_o
    yo = r // WO
    xo = r % WO
    offs_c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    mask_c = offs_c < C_OUT
    acc = tl.full([BLOCK_P, BLOCK_C], 0.0, tl.float32)
    for t in tl.static_range(KS * KS):
        yi = yo * STRIDE - PAD + t // KS
        xi = xo * STRIDE - PAD + t % KS
        if REFLECT:
            yi = tl.abs(yi)
            yi = tl.where(yi >= H, 2 * (H - 1) - yi, yi)
            xi = tl.abs(xi)
            xi = tl.where(xi >= W, 2 * (W - 1) - xi, xi)
            inside = mask_p
        else:
            inside = mask_p & (yi >= 0) & (yi < H) & (xi >= 0) & (xi < W)
        lab = tl.load(labels_ptr + b * H * W + yi * W + xi, mask=inside, other=0)
        row = t * (NUM + 1) + lab
        if PER_SAMPLE:
            row = row + b * (KS * KS * (NUM + 1))
        vals = tl.load(
            table_ptr + row[:, None] * C_OUT + offs_c[None, :],
            mask=inside[:, None] & mask_c[None, :],
            other=0.0,
        )
        acc += vals.to(tl.float32)
    dst = out_ptr + (b * C_OUT * hw_o + r)[:, None] + offs_c[None, :].to(tl.int64) * hw_o
    tl.store(dst, acc.to(out_ptr.dtype.element_ty), mask=mask_p[:, None] & mask_c[None, :])


#: whether these kernels run in Triton's interpreter (CPU tensors) rather than compiled
INTERPRETED: bool = type(norm_modulate_kernel).__name__ == "InterpretedFunction"


def check_device(t: Tensor) -> None:
    """Compiled kernels need CUDA tensors; CPU tensors run only in the interpreter."""
    if not t.is_cuda and not INTERPRETED:
        raise RuntimeError(
            f"a Triton kernel got a {t.device} tensor, which only Triton's interpreter runs: set "
            "TRITON_INTERPRET=1 before synth.nn.kernels.triton_kernels is imported, or use the "
            "PyTorch path (SYNTH_KERNELS=auto or torch)"
        )


def launch_norm_modulate(
    x: Tensor,
    gamma: Tensor,
    beta: Tensor,
    out: Tensor,
    eps: float,
    mean: Tensor | None = None,
    rstd: Tensor | None = None,
) -> None:
    """``out = (x - mean)·rstd·(1 + γ) + β`` per ``(b, c)`` row; all ``[B, C, H, W]``
    contiguous; ``mean``/``rstd`` ``[C]`` fp32 (batch norm) or None (instance statistics)."""
    check_device(x)
    b, c, h, w = x.shape
    hw = h * w
    block = min(triton.next_power_of_2(max(hw, 1)), 2048 if INTERPRETED else 4096)
    stats = mean is not None
    norm_modulate_kernel[(b * c,)](
        x,
        gamma,
        beta,
        out,
        mean if stats else x,
        rstd if stats else x,
        c,
        hw,
        eps,
        HAS_STATS=stats,
        BLOCK=block,
        **({} if INTERPRETED else {"num_warps": 8 if block >= 2048 else 4}),
    )


def launch_label_gather(
    labels: Tensor,
    table: Tensor,
    out: Tensor,
    *,
    kernel_size: int,
    padding: int,
    reflect: bool,
    stride: int,
    num: int,
    per_sample: bool,
) -> None:
    """``out [B, C_out, H', W']`` from ``labels [B, H, W]`` (int64, contiguous) and the table
    ``[(B,) k², num + 1, C_out]`` (contiguous)."""
    check_device(labels)
    b, h, w = labels.shape
    c_out, ho, wo = out.shape[1], out.shape[2], out.shape[3]
    n_p = b * ho * wo
    block_p = 64
    block_c = min(triton.next_power_of_2(c_out), 64)
    grid = (triton.cdiv(n_p, block_p), triton.cdiv(c_out, block_c))
    label_gather_kernel[grid](
        labels,
        table,
        out,
        h,
        w,
        ho,
        wo,
        n_p,
        c_out,
        num,
        STRIDE=stride,
        PAD=padding,
        KS=kernel_size,
        REFLECT=reflect,
        PER_SAMPLE=per_sample,
        BLOCK_P=block_p,
        BLOCK_C=block_c,
    )
