"""The Triton kernels compiled on CUDA against the PyTorch path on CUDA, at working sizes, and
the parts that call them (clvae.spade, the label-gather conv) on both paths."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from synth.nn import kernels
from synth.nn.layers import label_conv2d

from .marks import requires_cuda

pytestmark = requires_cuda

pytest.importorskip("triton")


def _grads(fn, *tensors, seed=5):
    leaves = [t.detach().clone().requires_grad_() for t in tensors]
    out = fn(*leaves)
    g = torch.Generator(device=out.device).manual_seed(seed)
    w = torch.randn(out.shape, generator=g, device=out.device)
    (out.float() * w).sum().backward()
    return out.detach(), [t.grad for t in leaves]


def test_auto_backend_takes_triton_on_cuda_for_forward_only_work():
    x = torch.zeros(1, device="cuda", requires_grad=True)
    with kernels.backend_scope("auto"):
        assert kernels.use_triton(torch.zeros(1, device="cuda"))
        assert not kernels.use_triton(torch.zeros(1))
        assert not kernels.use_triton(x)  # training: the PyTorch path (cheaper backward)
        with torch.no_grad():
            assert kernels.use_triton(x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("norm", ["instance", "batch"])
@pytest.mark.parametrize("shape", [(2, 64, 128, 128), (4, 1024, 8, 16)])
def test_norm_modulate_cuda(dtype, norm, shape):
    g = torch.Generator(device="cuda").manual_seed(0)
    x = (torch.randn(shape, generator=g, device="cuda") * 3 + 1).to(dtype)
    gamma = (0.3 * torch.randn(shape, generator=g, device="cuda")).to(dtype)
    beta = (0.3 * torch.randn(shape, generator=g, device="cuda")).to(dtype)
    bns = [nn.BatchNorm2d(shape[1], affine=False).cuda() if norm == "batch" else None for _ in "ab"]
    with kernels.backend_scope("triton"):  # auto takes PyTorch when grads are wanted
        out, grads = _grads(
            lambda a, b, c: kernels.norm_modulate(a, b, c, bn=bns[0]), x, gamma, beta
        )
    with kernels.backend_scope("torch"):
        ref, ref_grads = _grads(
            lambda a, b, c: kernels.norm_modulate(a, b, c, bn=bns[1]), x, gamma, beta
        )
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=2e-2, atol=5e-2)
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), ref.float(), **tol)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a.float(), b.float(), **tol)
    if norm == "batch":
        torch.testing.assert_close(bns[0].running_mean, bns[1].running_mean)
        torch.testing.assert_close(bns[0].running_var, bns[1].running_var)


CONVS = {
    "spade_3x3": dict(k=3, padding=1, mode="zeros", stride=1, vectors=False, classes=151, out=128),
    "pix2pixhd_7x7_reflect": dict(
        k=7, padding=3, mode="reflect", stride=1, vectors=False, classes=36, out=64
    ),
    "d_4x4_stride2": dict(
        k=4, padding=2, mode="zeros", stride=2, vectors=False, classes=36, out=64
    ),
    "cse_vectors": dict(k=3, padding=1, mode="zeros", stride=1, vectors=True, classes=20, out=128),
}


@pytest.mark.parametrize("case", list(CONVS))
def test_label_gather_cuda(case):
    c = CONVS[case]
    g = torch.Generator(device="cuda").manual_seed(1)
    labels = torch.randint(0, c["classes"], (2, 96, 160), generator=g, device="cuda")
    width = 8 if c["vectors"] else c["classes"]
    weight = torch.randn(c["out"], width, c["k"], c["k"], generator=g, device="cuda") * 0.1
    bias = torch.randn(c["out"], generator=g, device="cuda")
    vectors = torch.randn(2, c["classes"], 8, generator=g, device="cuda") if c["vectors"] else None

    def run():
        w = weight.clone().requires_grad_()
        v = None if vectors is None else vectors.clone().requires_grad_()
        out = label_conv2d(
            labels, w, bias, padding=c["padding"], padding_mode=c["mode"], class_vectors=v,
            stride=c["stride"],
        )  # fmt: skip
        out.square().mean().backward()
        return out.detach(), w.grad, None if v is None else v.grad

    with kernels.backend_scope("triton"):
        out, gw, gv = run()
    with kernels.backend_scope("auto"), torch.no_grad():  # forward-only: auto takes Triton
        fwd = label_conv2d(
            labels, weight, bias, padding=c["padding"], padding_mode=c["mode"],
            class_vectors=vectors, stride=c["stride"],
        )  # fmt: skip
    with kernels.backend_scope("torch"):
        ref, rw, rv = run()
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fwd, ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gw, rw, rtol=1e-3, atol=1e-5)
    if gv is not None:
        torch.testing.assert_close(gv, rv, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_spade_generator_fused_equals_pytorch_on_cuda(precision):
    pytest.importorskip("synth_clvae")
    import synth

    torch.manual_seed(0)
    gen = synth.build("clvae.spade_generator", num_classes=8, ngf=8).cuda().eval()
    g = torch.Generator(device="cuda").manual_seed(2)
    cond = synth.Condition(
        label_map=torch.randint(0, 8, (2, 64, 64), generator=g, device="cuda"), num_classes=8
    )
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16")
    with torch.no_grad(), autocast:
        with kernels.backend_scope("auto"):
            out = gen(cond).image
        with kernels.backend_scope("torch"):
            ref = gen(cond).image
        compiled = torch.compile(gen, backend="inductor")
        got = compiled(cond).image  # inductor traces the PyTorch path
    tol = dict(rtol=1e-3, atol=1e-3) if precision == "fp32" else dict(rtol=5e-2, atol=5e-2)
    torch.testing.assert_close(out.float(), ref.float(), **tol)
    torch.testing.assert_close(got.float(), ref.float(), **tol)
