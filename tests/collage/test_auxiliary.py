"""Auxiliary networks A, B and L_AB (collage appendix B, eqs. 5-6) against independent
computations: the layer order, the loss per photo by hand, and its gradient (double backprop)
by finite differences."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import synth
from synth_collage.auxiliary import AuxiliaryNetworks, auxiliary_loss, train_auxiliary
from synth_collage.encoder import ResNetEncoder


def _aux(dtype=torch.float32) -> AuxiliaryNetworks:
    torch.manual_seed(0)
    return AuxiliaryNetworks(z_dim=4, hidden_a=6, zeta_dim=10, hidden_b=6).to(dtype)


def _toy(dtype=torch.float64):
    """A smooth toy 'generator' and 'discriminator features' (tanh of linear maps)."""
    g = torch.Generator().manual_seed(1)
    wg = torch.randn(4, 3 * 4 * 4, generator=g, dtype=dtype) * 0.5
    wd = torch.randn(3 * 4 * 4, 7, generator=g, dtype=dtype) * 0.3

    def render(z):
        return torch.tanh(z @ wg).reshape(-1, 3, 4, 4)

    def features(img):
        return torch.tanh(img.reshape(img.shape[0], -1) @ wd)

    return render, features


def test_paper_widths_and_official_layer_order():
    full = AuxiliaryNetworks()
    assert (full.a1.out_features, full.a2.out_features, full.b1.out_features) == (1000, 10000, 1000)
    aux = _aux()
    assert torch.all(aux.a_prelu.weight == 0.25) and torch.all(aux.b_prelu.weight == 0.25)
    z = torch.randn(3, 4)

    def prelu(x, w):  # Chainer's: max(x, 0) + w · min(x, 0)
        return x.clamp(min=0) + w * x.clamp(max=0)

    zeta = prelu(
        F.relu(z @ aux.a1.weight.T + aux.a1.bias) @ aux.a2.weight.T + aux.a2.bias,
        aux.a_prelu.weight,
    )
    torch.testing.assert_close(aux.embed(z), zeta)
    back = prelu(
        F.relu(zeta @ aux.b1.weight.T + aux.b1.bias) @ aux.b2.weight.T + aux.b2.bias,
        aux.b_prelu.weight,
    )
    torch.testing.assert_close(aux(z), back)
    with pytest.raises(ValueError, match="zeta_dim=0"):
        AuxiliaryNetworks(zeta_dim=0)


def _by_hand(aux, render, features, z, x, lr, pixel_weight=0.2):
    """Eq. 6 for ONE photo, written out: rounds j = 0, 1, 2 with AdaGrad steps (eq. 5)."""

    def loss(zeta):
        img = render(aux.project(zeta))
        f1, f2 = features(img)[0], features(x)[0]
        cos = (f1 * f2).sum() / (f1.norm() * f2.norm())
        return 1 - cos + pixel_weight * ((img - x) ** 2).mean()

    zeta = aux.embed(z)
    r = torch.full_like(zeta, 1e-8)
    ls = []
    for j in range(3):
        lj = loss(zeta)
        ls.append(lj)
        if j < 2:
            (grad,) = torch.autograd.grad(lj, zeta, create_graph=True)
            r = r + grad**2
            zeta = zeta - lr * grad / torch.sqrt(r)
    return 20 * ls[0] + 2 * ls[1] + 1 * ls[2] + 100 * ((aux(z) - z) ** 2).sum()


def test_loss_matches_eq6_by_hand_per_photo():
    aux = _aux(torch.float64)
    render, features = _toy()
    z = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    x = torch.rand(3, 3, 4, 4, dtype=torch.float64) * 2 - 1
    out = auxiliary_loss(aux, render, features, z, x, inner_lr=0.05)
    for i in range(3):
        ref = _by_hand(aux, render, features, z[i : i + 1], x[i : i + 1], lr=0.05)
        torch.testing.assert_close(out.per_photo[i], ref)
    torch.testing.assert_close(out.loss, out.per_photo.mean())
    assert out.rounds.shape == (3, 3) and out.reconstruction.shape == (3,)
    with pytest.raises(ValueError, match="n_iter \\+ 1"):
        auxiliary_loss(aux, render, features, z, x, n_iter=3)


def test_gradient_includes_the_inner_steps_finite_differences():
    aux = _aux(torch.float64)
    render, features = _toy()
    z = torch.randn(2, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64) * 2 - 1
    out = auxiliary_loss(aux, render, features, z, x, inner_lr=0.05)
    out.loss.backward()
    w = aux.a2.weight
    eps = 1e-6
    for idx in [(0, 0), (3, 2), (9, 5)]:
        with torch.no_grad():
            w[idx] += eps
            up = auxiliary_loss(aux, render, features, z, x, inner_lr=0.05).loss.detach()
            w[idx] -= 2 * eps
            down = auxiliary_loss(aux, render, features, z, x, inner_lr=0.05).loss.detach()
            w[idx] += eps
        numeric = (up - down) / (2 * eps)
        torch.testing.assert_close(w.grad[idx], numeric, rtol=1e-4, atol=1e-7)


def test_train_auxiliary_runs_with_the_model_frozen():
    torch.manual_seed(0)
    model = synth.compose(
        {
            "generator": {
                "type": "core.simple_generator",
                "z_dim": 4,
                "ngf": 4,
                "num_stages": 2,
                "norm": {"type": "core.batch_norm"},
            },
            "injector": {"type": "core.gaussian"},
            "discriminator": {
                "type": "core.patch_discriminator",
                "conditional": False,
                "ndf": 4,
                "n_layers": 2,
            },
        }
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    aux = _aux()
    a_before = aux.a1.weight.detach().clone()
    photos = torch.rand(2, 3, 16, 16) * 2 - 1
    cond = synth.Condition(class_id=torch.tensor([0, 1]), num_classes=2, size=(16, 16))
    enc = ResNetEncoder(z_dim=4, ch=2, image_size=16)
    seen = []
    hist = train_auxiliary(
        model,
        aux,
        [(photos, cond)],
        steps=3,
        encoder=enc,
        lr=1e-3,
        log=lambda step, out: seen.append(step),
    )
    assert len(hist) == 3 and seen == [0, 1, 2] and all(torch.isfinite(torch.tensor(hist)))
    assert not torch.equal(aux.a1.weight, a_before)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.requires_grad for p in model.parameters())
