"""core.gaussian / core.spatial_noise: shapes, distributions, seeding, errors."""

from __future__ import annotations

import pytest
import torch

import synth
from synth.parts.injectors import Gaussian, SpatialNoise


def _cond(b: int = 2, size: int = 16) -> synth.Condition:
    labels = torch.randint(0, 3, (b, size, size), generator=torch.Generator().manual_seed(0))
    return synth.Condition(label_map=labels, num_classes=3)


def test_gaussian_shapes_and_capabilities():
    inj = synth.build("core.gaussian", z_dim=8, style_dim=5, num_stages=3, num_classes=3)
    assert isinstance(inj, Gaussian)
    assert inj.has_posterior is False
    assert Gaussian.provided(None) == frozenset({"z", "styles"})
    assert Gaussian.provided(inj.config) == frozenset({"z", "styles"})
    assert Gaussian.provided(Gaussian.Config(z_dim=4)) == frozenset({"z"})
    lat = inj.prior(_cond(2))
    assert lat.z.shape == (2, 8)
    assert len(lat.styles) == 3 and all(s.shape == (2, 5) for s in lat.styles)
    # shared styles: the same code at every stage
    assert all(torch.equal(s, lat.styles[0]) for s in lat.styles)
    assert lat.spatial is None and lat.kl is None
    with pytest.raises(synth.CapabilityError, match="no posterior"):
        inj.posterior(torch.zeros(2, 3, 16, 16), _cond(2))


def test_gaussian_empty_fields_when_dims_are_zero():
    lat = Gaussian(style_dim=4).prior(_cond(3))
    assert lat.z is None and len(lat.styles) == 1 and lat.styles[0].shape == (3, 4)
    lat = Gaussian(z_dim=4).prior(_cond(3))
    assert lat.styles is None and lat.z.shape == (3, 4)
    assert Gaussian().prior(_cond()).fields() == frozenset()


def test_gaussian_independent_styles_and_std():
    inj = Gaussian(z_dim=2, style_dim=3, num_stages=4, shared_styles=False, std=0.5)
    lat = inj.prior(_cond(2))
    assert not torch.equal(lat.styles[0], lat.styles[1])
    big = Gaussian(z_dim=64, style_dim=64, num_stages=2, shared_styles=False, std=0.5)
    lat = big.prior(_cond(512), torch.Generator().manual_seed(1))
    for t in (lat.z, *lat.styles):
        assert abs(t.mean().item()) < 0.02
        assert abs(t.std().item() - 0.5) < 0.01


def test_gaussian_seeded_draws_are_reproducible():
    inj = Gaussian(z_dim=4, style_dim=3, num_stages=2)
    a = inj.prior(_cond(), torch.Generator().manual_seed(7))
    b = inj.prior(_cond(), torch.Generator().manual_seed(7))
    c = inj.prior(_cond(), torch.Generator().manual_seed(8))
    assert torch.equal(a.z, b.z) and torch.equal(a.styles[0], b.styles[0])
    assert not torch.equal(a.z, c.z)
    # documented draw order: z first, then the style code
    g = torch.Generator().manual_seed(7)
    z = torch.randn(2, 4, generator=g)
    s = torch.randn(2, 3, generator=g)
    assert torch.equal(a.z, z) and torch.equal(a.styles[1], s)


def test_spatial_noise_shapes_and_scale():
    inj = synth.build({"type": "core.spatial_noise", "scale": 4}, channels=3, z_dim=0)
    assert isinstance(inj, SpatialNoise)
    assert SpatialNoise.provided(None) == frozenset({"spatial"})
    lat = inj.prior(_cond(2, 16), torch.Generator().manual_seed(0))
    assert lat.spatial.shape == (2, 3, 4, 4)
    assert lat.fields() == frozenset({"spatial"})
    g = torch.Generator().manual_seed(0)
    assert torch.equal(lat.spatial, torch.randn(2, 3, 4, 4, generator=g))


def test_spatial_noise_errors_name_the_fix():
    with pytest.raises(synth.ConfigError, match="noise_channels"):
        synth.build("core.spatial_noise", channels=0)
    no_size = synth.Condition(class_id=torch.tensor([0, 1]), num_classes=2)
    assert no_size.size is None
    with pytest.raises(ValueError, match=r"size=\(H, W\)"):
        SpatialNoise(channels=2).prior(no_size)
    # with an explicit size it works
    sized = synth.Condition(class_id=torch.tensor([0, 1]), num_classes=2, size=(8, 12))
    assert SpatialNoise(channels=2, scale=2).prior(sized).spatial.shape == (2, 2, 4, 6)


def test_injectors_follow_the_condition_device():
    lat = Gaussian(z_dim=3).prior(_cond().to("meta"))
    assert lat.z.device.type == "meta"
