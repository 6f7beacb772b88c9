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
