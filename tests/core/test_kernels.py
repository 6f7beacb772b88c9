"""synth.nn.kernels: the Triton kernels against the PyTorch path they replace.

On a machine without a GPU the kernels run in Triton's interpreter: ``TRITON_INTERPRET=1``
must be set before the kernels module is imported (triton 3.x decides at ``@triton.jit``
time), so the fixture below imports a fresh copy of ``synth.nn.kernels.triton_kernels`` with
it set, forces the Triton path on CPU tensors, and puts the previous module (a compiled one on
a GPU machine) back afterwards. Shapes are tiny: the interpreter runs kernels in numpy.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import pytest
import torch
from torch import nn

from synth.nn import kernels
from synth.nn.kernels import dispatch
from synth.nn.layers import LabelConv2d, label_conv2d

MODULE = "synth.nn.kernels.triton_kernels"

needs_triton = pytest.mark.skipif(
    importlib.util.find_spec("triton") is None, reason="triton is not installed"
)


@pytest.fixture
def interpreted(monkeypatch):
    """The kernels, interpreted, forced on (CPU tensors take the Triton path)."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    package = sys.modules["synth.nn.kernels"]
    before = sys.modules.pop(MODULE, None)
    try:
        module = importlib.import_module(MODULE)
    except Exception as e:  # pragma: no cover - depends on the installed triton
        if before is not None:
            sys.modules[MODULE] = before
        pytest.skip(f"triton's interpreter cannot run here: {type(e).__name__}: {e}")
    if not module.INTERPRETED:  # pragma: no cover
        pytest.skip("this triton does not honour TRITON_INTERPRET=1 at import")
    package.triton_kernels = module
    try:
        with kernels.backend_scope("triton"):
            yield module
    finally:
        _restore(package, before)


def _restore(package: object, before: object) -> None:
    """Put back the kernels module that was imported before a test swapped it (or none)."""
    if before is not None:
        sys.modules[MODULE] = before
        package.triton_kernels = before
    else:
        sys.modules.pop(MODULE, None)
        if hasattr(package, "triton_kernels"):
            delattr(package, "triton_kernels")


# --------------------------------------------------------------------------- dispatch


def test_dispatch_chooses_pytorch_on_cpu_and_obeys_the_switches(monkeypatch):
    x = torch.zeros(1)
    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)
    assert kernels.backend() == "auto"
    assert not kernels.use_triton(x)  # CPU tensors: always PyTorch in auto
    monkeypatch.setenv(dispatch.ENV_VAR, "torch")
    assert kernels.backend() == "torch" and not kernels.use_triton(x)
    with kernels.backend_scope("auto"):
        assert kernels.backend() == "auto"
    assert kernels.backend() == "torch"
    monkeypatch.setenv(dispatch.ENV_VAR, "cuda")
    with pytest.raises(ValueError, match="SYNTH_KERNELS='cuda'.*'auto', 'triton', 'torch'"):
        kernels.backend()
    with pytest.raises(ValueError, match="set_backend='fast'"):
        kernels.set_backend("fast")  # type: ignore[arg-type]


def test_compiled_code_takes_the_pytorch_path():
    """Under torch.compile the dispatch says PyTorch (inductor fuses it), without a graph
    break, also when Triton is forced."""

    def f(x):
        return x + (1.0 if kernels.use_triton(x) else 0.0)

    torch._dynamo.reset()
    try:
        with kernels.backend_scope("triton" if kernels.triton_available() else "auto"):
            out = torch.compile(f, fullgraph=True, backend="eager")(torch.zeros(3))
    finally:
        torch._dynamo.reset()
    assert torch.equal(out, torch.zeros(3))


# --------------------------------------------------------------------------- norm_modulate


def _inputs(shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=g) * 3 + 2).to(dtype)
    gamma = (0.5 * torch.randn(shape, generator=g)).to(dtype)
    beta = (0.5 * torch.randn(shape, generator=g)).to(dtype)
    return x, gamma, beta


def _grads(fn, *tensors):
    leaves = [t.detach().clone().requires_grad_() for t in tensors]
    out = fn(*leaves)
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(5))
    (out.float() * w).sum().backward()
    return out.detach(), [t.grad for t in leaves]


@needs_triton
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 2, 1, 1), (2, 2, 48, 48)])
def test_instance_norm_modulate_matches_pytorch(interpreted, shape):
    x, gamma, beta = _inputs(shape)
    out, grads = _grads(lambda a, b, c: kernels.norm_modulate(a, b, c, eps=1e-5), x, gamma, beta)
    with kernels.backend_scope("torch"):
        ref, ref_grads = _grads(
            lambda a, b, c: kernels.norm_modulate(a, b, c, eps=1e-5), x, gamma, beta
        )
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-5)


@needs_triton
def test_norm_modulate_keeps_low_precision_dtypes(interpreted):
    x, gamma, beta = _inputs((2, 3, 6, 6), torch.bfloat16)
    out = kernels.norm_modulate(x, gamma, beta)
    ref = kernels.norm_modulate_reference(x, gamma, beta)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref.float(), rtol=1e-2, atol=2e-2)


@needs_triton
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batch_norm_modulate_matches_pytorch_with_running_statistics(interpreted, momentum):
    x, gamma, beta = _inputs((3, 4, 5, 6))
    bn = nn.BatchNorm2d(4, affine=False, momentum=momentum)
    bn_ref = nn.BatchNorm2d(4, affine=False, momentum=momentum)
    for step in range(2):  # training: batch statistics, running statistics updated
        xs = x + step
        out, grads = _grads(lambda a, b, c: kernels.norm_modulate(a, b, c, bn=bn), xs, gamma, beta)
        ref, ref_grads = _grads(
            lambda a, b, c: kernels.norm_modulate_reference(a, b, c, bn=bn_ref), xs, gamma, beta
        )
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
        for g, r in zip(grads, ref_grads):
            torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bn.running_mean, bn_ref.running_mean)
    torch.testing.assert_close(bn.running_var, bn_ref.running_var)
    assert int(bn.num_batches_tracked) == int(bn_ref.num_batches_tracked) == 2
    bn.eval(), bn_ref.eval()  # eval: the running statistics, constants for the gradient
    out, grads = _grads(lambda a, b, c: kernels.norm_modulate(a, b, c, bn=bn), x, gamma, beta)
    ref, ref_grads = _grads(
        lambda a, b, c: kernels.norm_modulate_reference(a, b, c, bn=bn_ref), x, gamma, beta
    )
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-5)


def test_batch_statistics_refuses_one_value_per_channel():
    bn = nn.BatchNorm2d(2, affine=False)
    with pytest.raises(ValueError, match=r"more than 1 value per channel.*\[1, 2, 1, 1\]"):
        kernels.batch_statistics(torch.zeros(1, 2, 1, 1), bn)


# --------------------------------------------------------------------------- label gather


CONVS = {
    "spade_3x3_zeros": dict(k=3, padding=1, mode="zeros", stride=1, vectors=False),
    "pix2pixhd_7x7_reflect": dict(k=7, padding=3, mode="reflect", stride=1, vectors=False),
    "discriminator_4x4_stride2": dict(k=4, padding=2, mode="zeros", stride=2, vectors=False),
    "cse_class_vectors": dict(k=3, padding=1, mode="zeros", stride=1, vectors=True),
}


@needs_triton
@pytest.mark.parametrize("case", list(CONVS))
def test_label_gather_matches_pytorch(interpreted, case):
    c = CONVS[case]
    g = torch.Generator().manual_seed(1)
    k_cls, d, c_out = 5, 3, 6
    labels = torch.randint(0, k_cls, (2, 9, 11), generator=g)
    width = d if c["vectors"] else k_cls
    weight = torch.randn(c_out, width, c["k"], c["k"], generator=g)
    bias = torch.randn(c_out, generator=g)
    vectors = torch.randn(2, k_cls, d, generator=g) if c["vectors"] else None
    extra = torch.randn(2, 1, 9, 11, generator=g)
    weight_e = torch.cat([weight, torch.randn(c_out, 1, c["k"], c["k"], generator=g)], 1)

    def run():
        w = weight_e.clone().requires_grad_()
        v = None if vectors is None else vectors.clone().requires_grad_()
        out = label_conv2d(
            labels,
            w,
            bias,
            extra=extra,
            padding=c["padding"],
            padding_mode=c["mode"],
            class_vectors=v,
            stride=c["stride"],
        )
        (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(2))).sum().backward()
        return out.detach(), w.grad, None if v is None else v.grad

    out, gw, gv = run()
    with kernels.backend_scope("torch"):
        ref, rw, rv = run()
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gw, rw, rtol=1e-5, atol=1e-4)
    if gv is not None:
        torch.testing.assert_close(gv, rv, rtol=1e-5, atol=1e-4)


@needs_triton
def test_label_conv_module_state_dict_and_output_unchanged(interpreted):
    """LabelConv2d keeps the dense conv's state-dict layout and gives the same output on both
    paths."""
    torch.manual_seed(0)
    conv = LabelConv2d(4, 5, 3, padding=1)
    assert list(conv.state_dict()) == ["weight", "bias"]
    assert conv.weight.shape == (5, 4, 3, 3)
    labels = torch.randint(0, 4, (2, 6, 6))
    out = conv(labels)
    with kernels.backend_scope("torch"):
        ref = conv(labels)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


@needs_triton
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_spade_block_takes_the_fused_path_with_equal_results(interpreted, norm):
    """clvae.spade with the kernels forced (as on CUDA) equals its PyTorch path: output, the
    parameters' gradients and the batch norm's running statistics."""
    pytest.importorskip("synth_clvae")
    import synth

    torch.manual_seed(0)
    block = synth.build("clvae.spade", channels=3, num_classes=4, hidden=8, param_free_norm=norm)
    ref_block = synth.build(
        "clvae.spade", channels=3, num_classes=4, hidden=8, param_free_norm=norm
    )
    ref_block.load_state_dict(block.state_dict())
    assert block.state_dict().keys() == ref_block.state_dict().keys()
    g = torch.Generator().manual_seed(3)
    cond = synth.Condition(label_map=torch.randint(0, 4, (2, 8, 8), generator=g), num_classes=4)
    x = torch.randn(2, 3, 8, 8, generator=g)
    calls = []
    original = kernels.norm_modulate

    def spy(*a, **kw):
        calls.append(1)
        return original(*a, **kw)

    def run(b):
        xr = x.clone().requires_grad_()
        out = b(xr, synth.Context(cond))
        out.square().sum().backward()
        return out.detach(), xr.grad, {n: p.grad for n, p in b.named_parameters()}

    kernels.norm_modulate = spy
    try:
        out, gx, gp = run(block)
    finally:
        kernels.norm_modulate = original
    assert calls, "the forced Triton backend did not reach kernels.norm_modulate"
    with kernels.backend_scope("torch"):
        ref, rx, rp = run(ref_block)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gx, rx, rtol=1e-4, atol=1e-4)
    for n in rp:
        torch.testing.assert_close(gp[n], rp[n], rtol=1e-4, atol=1e-4, msg=n)
    for n, t in ref_block.state_dict().items():
        torch.testing.assert_close(block.state_dict()[n], t, msg=n)


# --------------------------------------------------------------------------- Hopper build


@pytest.fixture
def compiled_module(monkeypatch):
    """A fresh, non-interpreted copy of the kernels module (restored afterwards)."""
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    package = sys.modules["synth.nn.kernels"]
    before = sys.modules.pop(MODULE, None)
    try:
        yield importlib.import_module(MODULE)
    finally:
        _restore(package, before)


@needs_triton
@pytest.mark.slow
def test_kernels_build_for_hopper_without_a_gpu(compiled_module):
    """Both kernels go through Triton's whole pipeline to an sm_90 cubin (H100/H200) here, on
    a machine without a GPU: the errors that only the compiler finds (types, layouts) show up
    before a GPU is lent. The interpreter tests above check the numbers."""
    try:
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError as e:  # pragma: no cover - another triton layout
        pytest.skip(f"this triton has no ASTSource/GPUTarget: {e}")
    import triton

    tk = compiled_module
    norm_sig = {n: "*bf16" for n in ("x_ptr", "g_ptr", "b_ptr", "out_ptr", "mean_ptr", "rstd_ptr")}
    norm_sig.update(C="i32", HW="i32", eps="fp32", HAS_STATS="constexpr", BLOCK="constexpr")
    gather_sig = {"labels_ptr": "*i64", "table_ptr": "*fp32", "out_ptr": "*fp32"}
    gather_sig.update({n: "i32" for n in ("H", "W", "HO", "WO", "NP", "C_OUT", "NUM")})
    gather_sig.update(
        {
            n: "constexpr"
            for n in ("STRIDE", "PAD", "KS", "REFLECT", "PER_SAMPLE", "BLOCK_P", "BLOCK_C")
        }
    )
    cases = [
        (tk.norm_modulate_kernel, norm_sig, {(9,): False, (10,): 4096}),
        (
            tk.label_gather_kernel,
            gather_sig,
            {(10,): 1, (11,): 3, (12,): 7, (13,): True, (14,): True, (15,): 64, (16,): 64},
        ),
    ]
    for fn, sig, consts in cases:
        try:
            src = ASTSource(fn=fn, signature=sig, constexprs=consts)
        except TypeError as e:  # pragma: no cover - another ASTSource signature
            pytest.skip(f"this triton's ASTSource takes other arguments: {e}")
        kernel = triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": 8})
        assert "cubin" in kernel.asm, fn
