"""SPADE, CSE (eq. 12), RoI max-pooling (eqs. 16–17) and the KL (eq. 18) against independent,
looped computations on random maps."""

from __future__ import annotations

import pytest
import torch

import synth
from synth_clvae.encoders import class_layer_kl, roi_max_pool
from synth_clvae.norms import CSE, SPADE

from .official import OfficialSPADE, get_edges, nearest, one_hot, paint_loop


def _labels(b: int, h: int, w: int, k: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, k, (b, h // 4, w // 4), generator=g)
    lab = synth.nn.ops.resize_labels(coarse, (h, w))
    lab[:, 0, 0] = torch.randint(0, k, (b,), generator=g)  # some single-pixel regions
    return lab


@pytest.mark.parametrize("norm", ["batch", "instance"])
@pytest.mark.parametrize("train", [True, False])
def test_spade_matches_dense_reference(norm, train):
    torch.manual_seed(0)
    k, c = 7, 6
    ours = SPADE(channels=c, num_classes=k, hidden=16, param_free_norm=norm)
    ref = OfficialSPADE(c, k, hidden=16, norm=norm)
    ref.load_state_dict(ours.state_dict())
    ours.train(train), ref.train(train)
    labels = _labels(2, 32, 32, k, 1)
    cond = synth.Condition(label_map=labels, num_classes=k)
    x = torch.randn(2, c, 16, 16, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    out = ours(x, synth.Context(cond))
    want = ref(x2, one_hot(labels, k))
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(out)
    out.backward(g)
    want.backward(g)
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-4, atol=1e-5)
    for (n, p), (_, q) in zip(ours.named_parameters(), ref.named_parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-4, msg=n)


@pytest.mark.parametrize("label_scale", [None, 4])
def test_cse_matches_looped_painting(label_scale):
    """eq. 12: s(M, z) = W·T(M) + z·T(M), painted per class in a Python loop, then SPADE."""
    torch.manual_seed(0)
    k, d, c, stage = 5, 3, 4, 1
    ours = CSE(
        channels=c,
        num_classes=k,
        code_dim=d,
        hidden=8,
        stage=stage,
        label_scale=label_scale,
        param_free_norm="instance",
    )
    ref = OfficialSPADE(c, d, hidden=8, norm="instance")
    ref.load_state_dict({n: v for n, v in ours.state_dict().items() if "embedding" not in n})
    labels = _labels(2, 32, 32, k, 2)
    codes = [torch.randn(2, k, d) for _ in range(3)]
    cond = synth.Condition(label_map=labels, num_classes=k)
    x = torch.randn(2, c, 16, 16)
    out = ours(x, synth.Context(cond, synth.Latents(class_codes=codes), stage))
    vectors = ours.embedding.weight[None] + codes[stage]
    lab = nearest(labels, (8, 8)) if label_scale == 4 else labels
    painted = paint_loop(lab, vectors.detach())
    want = ref(x, painted)  # the official SPADE resizes the painted map to x (nearest)
    torch.testing.assert_close(out, want.detach(), rtol=1e-5, atol=1e-5)


def test_roi_max_pool_matches_loop():
    g = torch.Generator().manual_seed(3)
    k = 6
    feats = torch.randn(3, 5, 8, 8, generator=g, requires_grad=True)
    labels = _labels(3, 8, 8, k - 1, 4)  # class k-1 never occurs
    pooled, present = roi_max_pool(feats, labels, k)
    for b in range(3):
        for c in range(k):
            sel = feats[b][:, labels[b] == c]
            assert bool(present[b, c]) == (sel.shape[1] > 0)
            if sel.shape[1]:
                torch.testing.assert_close(pooled[b, c], sel.max(dim=1)[0])
            else:
                assert torch.all(pooled[b, c] == 0)
    weights = torch.randn(pooled.shape, generator=g)
    (pooled * weights).sum().backward()  # gradients flow to the arg-max pixels
    ours, feats.grad = feats.grad, None
    loop = sum(
        (feats[b][:, labels[b] == c].max(dim=1)[0] * weights[b, c]).sum()
        for b in range(3)
        for c in range(k)
        if bool(present[b, c])
    )
    loop.backward()  # the official code's max(dim=1) per class: the same gradient
    torch.testing.assert_close(ours, feats.grad)


def test_roi_max_pool_batched_channels_last_and_bf16():
    """Channels-last features and bf16 (autocast) pool as the contiguous fp32 ones do."""
    g = torch.Generator().manual_seed(4)
    feats = torch.randn(2, 7, 9, 11, generator=g)
    labels = _labels(2, 9, 11, 5, 3)
    want, present = roi_max_pool(feats, labels, 5)
    got, got_present = roi_max_pool(feats.to(memory_format=torch.channels_last), labels, 5)
    assert torch.equal(got, want) and torch.equal(got_present, present)
    half, _ = roi_max_pool(feats.bfloat16(), labels, 5)
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), want, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("normalize", ["per_layer", "image"])
def test_kl_eq18_by_hand(normalize):
    g = torch.Generator().manual_seed(5)
    b, layers, k, d, z = 2, 5, 4, 3, 6
    mu, logvar = torch.randn(b, z, generator=g), torch.randn(b, z, generator=g)
    cmu, clv = torch.randn(b, layers, k, d, generator=g), torch.randn(b, layers, k, d, generator=g)
    present = torch.rand(b, layers, k, generator=g) > 0.4
    present[0, 2] = False  # a layer with no class present
    num_present = torch.tensor([4, 3])

    def kld(m, lv):
        return sum(
            -0.5 * (1 + float(lv[i]) - float(m[i]) ** 2 - float(lv[i].exp())) for i in range(len(m))
        )

    want = sum(kld(mu[i], logvar[i]) for i in range(b))
    for i in range(b):
        if normalize == "per_layer":
            for layer in range(layers):
                terms = [
                    kld(cmu[i, layer, c], clv[i, layer, c])
                    for c in range(k)
                    if present[i, layer, c]
                ]
                want += sum(terms) / len(terms) if terms else 0.0
        else:
            total = sum(
                kld(cmu[i, layer, c], clv[i, layer, c])
                for layer in range(layers)
                for c in range(k)
                if present[i, layer, c]
            )
            want += total / int(num_present[i])
    got = class_layer_kl(
        mu, logvar, cmu, clv, present, normalize=normalize, num_present=num_present
    )
    assert got.item() == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("use_instances", [False, True])
def test_discriminator_gather_equals_dense(use_instances):
    """The finest scale's first conv gathers the one-hot part: outputs and weight/bias/image
    gradients equal the dense conv of ``cat(one_hot, [edges], image)``; the pooled scale stays
    the dense conv of the pooled input."""
    import torch.nn.functional as F

    from synth_clvae.discriminators import MultiscaleDiscriminator

    torch.manual_seed(0)
    k = 6
    d = MultiscaleDiscriminator(num_classes=k, ndf=4, n_layers=3, use_instances=use_instances)
    d = d.double().eval()  # fp64; no spectral-norm power iteration between the forwards
    labels = _labels(2, 20, 28, k, seed=1)  # resized nearest to the image size inside
    inst = synth.nn.ops.resize_labels(torch.randint(0, 4, (2, 5, 7)), (20, 28))
    cond = synth.Condition(label_map=labels, instance_map=inst, num_classes=k)
    image = torch.randn(2, 3, 38, 54, dtype=torch.float64, requires_grad=True)
    big = synth.nn.ops.resize_labels(labels, (38, 54))
    maps = [one_hot(big, k).double()]
    if use_instances:
        # edges at the map's size, then resized nearest (synth.Context.instance_edges)
        maps.append(synth.nn.ops.resize_labels(get_edges(inst[:, None]), (38, 54)).double())
    dense_in = torch.cat([*maps, image], 1)
    rest = dense_in[:, k:]
    net = d.discriminators[0]
    conv = net.model0[0]
    # SPADE's first D layer has no spectral norm (the middle ones have): a plain weight
    assert not torch.nn.utils.parametrize.is_parametrized(conv)
    assert torch.nn.utils.parametrize.is_parametrized(net.model1[0][0])

    def grads(outs):
        loss = sum((o * torch.linspace(-1, 1, o.numel()).view_as(o)).sum() for o in outs)
        return torch.autograd.grad(loss, [conv.weight, conv.bias, image])

    def outputs(*args):  # every submodel's output, the logits last (the official order)
        logits, feats = net(*args)
        return [*feats, logits]

    # the first layer alone (fp64 throughout): equal to rounding
    first_dense = net.model0(dense_in)
    first_gather = outputs(rest, big)[0]
    torch.testing.assert_close(first_gather, first_dense)
    for a, b in zip(grads([first_gather]), grads([first_dense]), strict=True):
        torch.testing.assert_close(a, b)
    # the whole scale (its instance norms keep fp32 statistics, hence the tolerances)
    dense, gather = outputs(dense_in), outputs(rest, big)
    for a, b in zip(gather, dense, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads(gather), grads(dense), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
    out = d(image, cond)
    torch.testing.assert_close(out.logits[0], dense[-1], rtol=1e-5, atol=1e-5)
    pooled = F.avg_pool2d(dense_in, 3, stride=2, padding=1, count_include_pad=False)
    torch.testing.assert_close(out.logits[1], d.discriminators[1](pooled)[0], rtol=1e-5, atol=1e-5)
