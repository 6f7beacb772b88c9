"""collage.label_collage: chosen layers, continuous intensity, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import synth
from synth_collage import collage_map, layer_class_maps
from synth_collage.recipes import tiny_collage_model


@pytest.fixture
def model(collage_registry):
    m = tiny_collage_model()
    with torch.no_grad():
        for p in m.generator.parameters():
            if p.dim() == 2 and p.shape[0] == 4:  # class embeddings [K, C]: make classes differ
                p.add_(torch.randn_like(p) * 0.5)
    return m


def test_intensity_mixes_with_the_conditions_class(model):
    cond = synth.Condition(class_id=torch.tensor([0, 2]), num_classes=4, size=(32, 32))
    lat = synth.Latents(z=torch.randn(2, 16))
    region = torch.zeros(2, 1, 32, 32)
    region[..., 8:24, 8:24] = 1
    target = collage_map(cond.class_id, 1, region, 4)
    with torch.no_grad():
        out = model.sample(
            cond,
            1,
            sampler="collage.label_collage",
            class_weights=target,
            layers=[2, 3],
            intensity=0.3,
            latents=lat,
        ).image
        expected_map = collage_map(cond.class_id, 1, region, 4, intensity=0.3)
        with layer_class_maps(model.generator, {2: expected_map, 3: expected_map}):
            expected = model.generate(cond, lat).image
        base = model.generate(cond, lat).image
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert (out - base).abs().max() > 1e-4


def test_all_layers_with_a_uniform_map_is_the_other_class(model):
    cond = synth.Condition(class_id=torch.tensor([0, 0]), num_classes=4, size=(32, 32))
    lat = synth.Latents(z=torch.randn(2, 16))
    w = F.one_hot(torch.tensor([3, 3]), 4).float()[:, :, None, None].expand(-1, -1, 32, 32)
    with torch.no_grad():
        out = model.sample(
            cond, 1, sampler="collage.label_collage", class_weights=w.contiguous(), latents=lat
        ).image
        other = model.generate(
            synth.Condition(class_id=torch.tensor([3, 3]), num_classes=4, size=(32, 32)), lat
        ).image
    torch.testing.assert_close(out, other, rtol=1e-5, atol=1e-5)


def test_errors_are_named(model):
    cond = synth.Condition(class_id=torch.tensor([0, 0]), num_classes=4, size=(32, 32))
    with pytest.raises(ValueError, match=r"\[B, K, H, W\]"):
        model.sample(cond, 1, sampler="collage.label_collage", class_weights=torch.ones(2, 3, 8, 8))
    with pytest.raises(ValueError, match="intensity"):
        model.sample(
            cond,
            1,
            sampler="collage.label_collage",
            class_weights=torch.ones(2, 4, 8, 8) / 4,
            intensity=2.0,
        )
    with pytest.raises(TypeError):
        model.sample(cond, 1, sampler="collage.label_collage")  # class_weights is required


def test_generator_without_spatial_norms_is_a_capability_error(collage_registry):
    from synth.testing._tiny import tiny_model

    cond = synth.Condition(label_map=torch.zeros(1, 8, 8, dtype=torch.long), num_classes=4)
    with pytest.raises(synth.CapabilityError, match="collage.scbn"):
        tiny_model().sample(
            cond, 1, sampler="collage.label_collage", class_weights=torch.ones(1, 4, 8, 8) / 4
        )
