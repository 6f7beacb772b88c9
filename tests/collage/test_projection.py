"""Manifold projection (collage §4, eq. 4): the loss against an independent computation, the
official feature vector, batched == one at a time, and what projection leaves untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import synth
from synth_collage.auxiliary import AuxiliaryNetworks
from synth_collage.encoder import ResNetEncoder
from synth_collage.projection import (
    discriminator_features,
    project,
    projection_loss,
    starting_codes,
)


def _core_model() -> synth.SynthesisModel:
    """Projection works on any generator reading z and any discriminator with features."""
    torch.manual_seed(0)
    return synth.compose(
        {
            "generator": {
                "type": "core.simple_generator",
                "z_dim": 8,
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


def _photos(b: int, size: int = 16, seed: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, size, size, generator=g) * 2 - 1


def _cond(b: int, size: int = 16) -> synth.Condition:
    return synth.Condition(class_id=torch.arange(b) % 3, num_classes=3, size=(size, size))


def test_loss_is_eq4_plus_the_pixel_term():
    g = torch.Generator().manual_seed(0)
    recon, target = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    fr, ft = torch.randn(2, 10, generator=g), torch.randn(2, 10, generator=g)
    got = projection_loss(recon, target, fr, ft, pixel_weight=0.2)
    # numpy: 1 - Ψ(x1)·Ψ(x2) with Ψ the L2-normalised feature, + 0.2 · per-image MSE
    a, b = fr.double().numpy(), ft.double().numpy()
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    mse = ((recon.double().numpy() - target.double().numpy()) ** 2).reshape(2, -1).mean(1)
    np.testing.assert_allclose(got.numpy(), 1 - cos + 0.2 * mse, rtol=1e-5)
    # identical images and features: zero
    assert torch.allclose(projection_loss(recon, recon, fr, fr), torch.zeros(2), atol=1e-6)


def test_collage_discriminator_features_are_the_official_feature_vector():
    from synth_collage.discriminators import ProjectionDiscriminator

    torch.manual_seed(0)
    disc = ProjectionDiscriminator(
        num_classes=3, resolution=32, ch=4, channel_multipliers=[1, 2, 4, 4]
    ).eval()
    x, cond = _photos(2, 32), _cond(2, 32)
    got = discriminator_features(disc, x, cond)
    # official feature_vector: relu(last block's output), flattened before the global sum
    h = x
    for block in disc.blocks:
        h = block(h)
    torch.testing.assert_close(got, torch.relu(h).reshape(2, -1))
    # the method itself, and what the docs say: Ψ is un-pooled, the logits' φ is its spatial sum
    fv = disc.feature_vector(x, cond)
    torch.testing.assert_close(fv, got)
    phi = disc(x, cond).features[0][-1].flatten(1)  # [B, C]
    c = phi.shape[1]
    assert fv.shape[1] == c * h.shape[-2] * h.shape[-1] != c
    torch.testing.assert_close(phi, fv.view(2, c, -1).sum(-1))


def test_batched_equals_one_at_a_time():
    model = _core_model()
    photos, cond = _photos(3), _cond(3)
    z0 = torch.randn(3, 8, generator=torch.Generator().manual_seed(5))
    batched = project(model, photos, cond, steps=4, z=z0)
    for i in range(3):
        alone = project(model, photos[i : i + 1], cond[i : i + 1], steps=4, z=z0[i : i + 1])
        torch.testing.assert_close(batched.z[i : i + 1], alone.z, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(batched.losses[:, i : i + 1], alone.losses, rtol=1e-4, atol=1e-5)
    assert batched.losses.shape == (5, 3) and batched.image.shape == (3, 3, 16, 16)


def test_projection_lowers_the_loss_and_leaves_the_model_alone():
    model = _core_model().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    photos, cond = _photos(2), _cond(2)
    out = project(model, photos, cond, steps=8, lr=0.05, generator=torch.Generator().manual_seed(0))
    assert torch.all(out.losses[-1] < out.losses[0])
    # eval mode inside (running BN statistics untouched), flags restored, no parameter grads
    assert model.training and model.generator.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in model.parameters())
    # the returned image is G(z) of the returned codes
    with torch.no_grad():
        again = model.eval().generator(cond, synth.Latents(z=out.z)).image
    torch.testing.assert_close(out.image, again)


def test_starts_from_the_encoder_and_runs_on_zeta_with_the_auxiliary_networks():
    model = _core_model()
    photos, cond = _photos(2), _cond(2)
    enc = ResNetEncoder(z_dim=8, ch=2, image_size=16)
    z0 = starting_codes(model, photos, cond, encoder=enc)
    torch.testing.assert_close(z0, enc.eval().posterior(photos, cond).z)
    zero = project(model, photos, cond, steps=0, encoder=enc)
    torch.testing.assert_close(zero.z, z0)
    aux = AuxiliaryNetworks(z_dim=8, hidden_a=6, zeta_dim=12, hidden_b=6)
    out = project(model, photos, cond, steps=2, encoder=enc, auxiliary=aux)
    assert out.zeta is not None and out.zeta.shape == (2, 12)
    with torch.no_grad():
        torch.testing.assert_close(out.z, aux.project(out.zeta))
        start = project(model, photos, cond, steps=0, encoder=enc, auxiliary=aux)
        torch.testing.assert_close(start.zeta, aux.embed(z0))


def test_bad_photos_are_named():
    model = _core_model()
    with pytest.raises(ValueError, match="resize the photo"):
        project(model, _photos(2, 8), _cond(2), steps=1)
    with pytest.raises(ValueError, match="one condition row per photo"):
        project(model, _photos(3), _cond(2), steps=1)
    with pytest.raises(ValueError, match="no discriminator"):
        project(_without_discriminator(model), _photos(2), _cond(2), steps=1)


def _without_discriminator(model):
    class M:
        generator = model.generator
        discriminator = None
        injector = model.injector

    return M()
