"""LabelConv2d: the gather formulation equals the dense convolution, forward and backward."""

import pytest
import torch
import torch.nn.functional as F

from synth.nn import ops
from synth.nn.layers import LabelConv2d, label_conv2d


def labels(b=2, h=9, w=7, k=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, k, (b, h, w), generator=g)


@pytest.mark.parametrize(
    ("ksize", "pad", "mode"),
    [(3, 1, "zeros"), (1, 0, "zeros"), (3, 0, "zeros"), (7, 3, "reflect"), (3, 1, "reflect")],
)
def test_one_hot_conv_matches_dense(ksize, pad, mode):
    torch.manual_seed(0)
    lab = labels()
    conv = LabelConv2d(5, 6, ksize, padding=pad, padding_mode=mode).double()
    dense = ops.one_hot(lab, 5, dtype=torch.float64)
    if pad and mode == "reflect":
        dense = F.pad(dense, (pad,) * 4, mode="reflect")
        ref = F.conv2d(dense, conv.weight, conv.bias)
    else:
        ref = F.conv2d(dense, conv.weight, conv.bias, padding=pad)
    out = conv(lab)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref)
    # gradients w.r.t. weight and bias agree too
    g = torch.randn_like(ref)
    gw, gb = torch.autograd.grad((out * g).sum(), [conv.weight, conv.bias])
    rw, rb = torch.autograd.grad((ref * g).sum(), [conv.weight, conv.bias])
    torch.testing.assert_close(gw, rw)
    torch.testing.assert_close(gb, rb)


def test_painted_map_conv_matches_dense_with_per_sample_vectors():
    torch.manual_seed(0)
    lab = labels(k=4)
    vecs = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)  # [B, K, D]
    weight = torch.randn(5, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(5, dtype=torch.float64)
    painted = torch.stack([vecs[b][lab[b]] for b in range(2)]).permute(0, 3, 1, 2)
    ref = F.conv2d(painted, weight, bias, padding=1)
    out = label_conv2d(lab, weight, bias, padding=1, class_vectors=vecs)
    torch.testing.assert_close(out, ref)
    g = torch.randn_like(ref)
    got = torch.autograd.grad((out * g).sum(), [weight, vecs])
    want = torch.autograd.grad((ref * g).sum(), [weight, vecs])
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_state_dict_matches_dense_conv_layout():
    conv = LabelConv2d(7, 4, 3, padding=1)
    dense = torch.nn.Conv2d(7, 4, 3, padding=1)
    assert {k: v.shape for k, v in conv.state_dict().items()} == {
        k: v.shape for k, v in dense.state_dict().items()
    }
    dense.load_state_dict(conv.state_dict())
    lab = labels(k=7)
    torch.testing.assert_close(conv(lab), dense(ops.one_hot(lab, 7)), atol=1e-5, rtol=1e-5)


def test_compiles_without_graph_breaks():
    conv = LabelConv2d(5, 4, 3, padding=1)
    lab = labels()
    torch._dynamo.reset()
    compiled = torch.compile(conv, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(lab), conv(lab))
    torch._dynamo.reset()


@pytest.mark.parametrize(("ksize", "stride", "pad"), [(4, 2, 2), (3, 2, 1), (4, 2, 0), (3, 3, 1)])
def test_strided_one_hot_conv_matches_dense(ksize, stride, pad):
    torch.manual_seed(0)
    lab = labels(h=11, w=9)
    conv = LabelConv2d(5, 3, ksize, padding=pad, stride=stride).double()
    ref = F.conv2d(ops.one_hot(lab, 5, dtype=torch.float64), conv.weight, conv.bias, stride, pad)
    torch.testing.assert_close(conv(lab), ref)


# --------------------------------------------------------------------------- one-hot + extra


def _dense_of(conv, lab, extra):
    """The dense conv of ``cat(one_hot(lab), extra)``, padded as ``conv`` pads."""
    x = torch.cat([ops.one_hot(lab, conv.num_classes, dtype=extra.dtype), extra], 1)
    p = conv.padding[0]
    if conv.padding_mode == "reflect":
        return F.conv2d(F.pad(x, (p,) * 4, mode="reflect"), conv.weight, conv.bias, conv.stride)
    return F.conv2d(x, conv.weight, conv.bias, conv.stride, p)


@pytest.mark.parametrize(
    ("ksize", "stride", "pad", "mode"),
    [(4, 2, 2, "zeros"), (7, 1, 3, "reflect"), (3, 1, 1, "zeros"), (3, 2, 1, "reflect")],
)
def test_gather_plus_dense_extra_equals_dense_conv(ksize, stride, pad, mode):
    """``conv(labels, extra)`` == the dense conv of ``cat(one_hot, extra)``: values and the
    gradients of weight, bias and the extra channels."""
    torch.manual_seed(0)
    lab = labels(h=11, w=10)
    conv = LabelConv2d(
        5, 6, ksize, stride=stride, padding=pad, padding_mode=mode, extra_channels=4
    ).double()
    assert conv.weight.shape == (6, 5 + 4, ksize, ksize) and conv.in_channels == 9
    extra = torch.randn(2, 4, 11, 10, dtype=torch.float64, requires_grad=True)
    out, ref = conv(lab, extra), _dense_of(conv, lab, extra)
    torch.testing.assert_close(out, ref)
    g = torch.randn_like(ref)
    params = [conv.weight, conv.bias, extra]
    got = torch.autograd.grad((out * g).sum(), params)
    want = torch.autograd.grad((ref * g).sum(), params)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)
    # the same module on the dense input is the plain convolution (the pooled-input path)
    dense_in = torch.cat([ops.one_hot(lab, 5, dtype=torch.float64), extra], 1)
    torch.testing.assert_close(conv(dense_in), ref)


def test_functional_extra_equals_dense_and_needs_the_right_channels():
    torch.manual_seed(0)
    lab = labels()
    weight, bias = torch.randn(3, 5 + 2, 3, 3), torch.randn(3)
    extra = torch.randn(2, 2, 9, 7)
    x = torch.cat([ops.one_hot(lab, 5), extra], 1)
    ref = F.conv2d(x, weight, bias, padding=1)
    got = label_conv2d(lab, weight, bias, extra=extra, padding=1)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    conv = LabelConv2d(5, 3, 3, padding=1, extra_channels=2)
    with pytest.raises(ValueError, match="extra channel"):
        conv(lab)
    with pytest.raises(ValueError, match="extra channel"):
        LabelConv2d(5, 3, 3, padding=1)(lab, extra)


def test_extra_layout_is_the_dense_conv_and_spectral_norm_applies():
    conv = LabelConv2d(7, 4, 3, padding=1, extra_channels=3)
    dense = torch.nn.Conv2d(7 + 3, 4, 3, padding=1)
    assert isinstance(conv, torch.nn.Conv2d)
    dense.load_state_dict(conv.state_dict())
    lab, extra = labels(k=7), torch.randn(2, 3, 9, 7)
    ref = dense(torch.cat([ops.one_hot(lab, 7), extra], 1))
    torch.testing.assert_close(conv(lab, extra), ref, atol=1e-5, rtol=1e-5)
    sn = torch.nn.utils.parametrizations.spectral_norm(conv).eval()
    ref = F.conv2d(torch.cat([ops.one_hot(lab, 7), extra], 1), sn.weight, sn.bias, padding=1)
    torch.testing.assert_close(sn(lab, extra), ref, atol=1e-5, rtol=1e-5)


def test_gather_with_extra_compiles_without_graph_breaks():
    conv = LabelConv2d(5, 4, 4, stride=2, padding=2, extra_channels=3)
    lab, extra = labels(), torch.randn(2, 3, 9, 7)
    torch._dynamo.reset()
    compiled = torch.compile(conv, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(lab, extra), conv(lab, extra))
    torch._dynamo.reset()


def test_gather_with_extra_under_bf16_autocast():
    torch.manual_seed(0)
    conv = LabelConv2d(5, 4, 3, padding=1, extra_channels=2)
    lab, extra = labels(), torch.randn(2, 2, 9, 7)
    ref = conv(lab, extra)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = conv(lab, extra)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), ref, atol=0.05, rtol=0.05)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_bag_sum_equals_embedding_bag_values_and_gradients(dtype):
    """ops.bag_sum's CPU backward (one index_add_ per column) against embedding_bag's (sort)."""
    g = torch.Generator().manual_seed(0)
    table = torch.randn(30, 7, generator=g).to(dtype).requires_grad_()
    idx = torch.randint(0, 30, (500, 9), generator=g)
    upstream = torch.randn(500, 7, generator=g).to(dtype)
    out = ops.bag_sum(idx, table)
    ref = F.embedding_bag(idx, table, mode="sum")
    torch.testing.assert_close(out, ref)
    (ours,) = torch.autograd.grad(out, table, upstream)
    # the exact gradient: each (row, column) entry adds its upstream row to the table row
    want = torch.zeros(30, 7, dtype=torch.float64)
    want.index_add_(0, idx.reshape(-1), upstream.double().repeat_interleave(9, 0))
    tol = {
        torch.float64: {},
        torch.float32: {"rtol": 1e-5, "atol": 1e-4},
        torch.bfloat16: {"rtol": 1e-2, "atol": 2e-2},
    }[dtype]
    assert ours.dtype == dtype
    torch.testing.assert_close(ours.double(), want, **tol)
    with torch.no_grad():  # no graph wanted: torch's op as it is
        assert torch.equal(ops.bag_sum(idx, table), ref.detach())
