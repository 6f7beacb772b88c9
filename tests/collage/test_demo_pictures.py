"""collage.tiny in ``synth demo``: label maps as per-pixel class maps (the recipe's demo
settings), the projection discriminator on label maps, label_collage at intensity < 1 mixing
with the label map, and the label-collage demo picture."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

import synth
from synth.demo import demo_spec
from synth_collage.demo_pictures import demo_pictures, painted_label_maps

K = 4


def _labels(b: int = 2, size: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    coarse = torch.randint(0, K, (b, size // 8, size // 8), generator=g)
    return coarse.repeat_interleave(8, 1).repeat_interleave(8, 2)


def _label_map_model(registry) -> synth.SynthesisModel:
    spec = copy.deepcopy(registry.recipe("collage.tiny").spec)
    spec["condition"] = ["label_map"]
    spec["generator"]["norm"]["condition"] = "label_map"
    spec["discriminator"]["condition"] = "label_map"
    torch.manual_seed(0)
    model = synth.compose(spec).eval()
    with torch.no_grad():
        for name, p in model.generator.named_parameters():
            if "gammas" in name or "betas" in name:  # make the classes differ
                p.add_(torch.randn_like(p) * 0.5)
    return model


def test_demo_settings_read_label_maps(collage_registry):
    spec, changes = demo_spec("collage.tiny", size=32, num_classes=6)
    assert spec["condition"] == ["label_map"]
    assert spec["generator"]["norm"]["condition"] == "label_map"
    assert spec["discriminator"]["condition"] == "label_map"
    assert spec["generator"]["num_classes"] == 6
    assert any("condition" in c for c in changes)
    synth.check_spec(synth.load_spec(spec))


def test_discriminator_projects_on_the_label_maps_area_fractions(collage_registry):
    model = _label_map_model(collage_registry)
    labels = _labels()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    weights = F.one_hot(labels, K).permute(0, 3, 1, 2).float()
    d = model.discriminator
    with torch.no_grad():
        a = d(x, synth.Condition(label_map=labels, num_classes=K)).logits[0]
        b = d(x, synth.Condition(class_weights=weights, num_classes=K)).logits[0]
    torch.testing.assert_close(a, b)


def test_label_collage_intensity_mixes_with_the_label_map(collage_registry):
    model = _label_map_model(collage_registry)
    labels = _labels()
    cond = synth.Condition(label_map=labels, num_classes=K)
    painted = painted_label_maps(labels, K)
    w1 = F.one_hot(painted, K).permute(0, 3, 1, 2).float()
    w0 = F.one_hot(labels, K).permute(0, 3, 1, 2).float()
    lat = model.injector.prior(cond, torch.Generator().manual_seed(1))

    def collage(alpha: float) -> torch.Tensor:
        return model.sample(
            cond,
            1,
            sampler="collage.label_collage",
            class_weights=w1,
            intensity=alpha,
            latents=lat,
        ).image

    with torch.no_grad():
        plain = model.generate(cond, lat).image
        half = model.generate(
            synth.Condition(label_map=labels, class_weights=0.5 * w0 + 0.5 * w1, num_classes=K),
            lat,
        ).image
        torch.testing.assert_close(collage(0.0), plain)
        torch.testing.assert_close(collage(0.5), half)
    # the painted map: the right half is the left half's main class
    left = labels[..., :16]
    for i in range(2):
        assert (painted[i, :, 16:] == left[i].flatten().mode().values).all()
    assert torch.equal(painted[..., :16], left)


def test_demo_picture_is_written_for_scbn_on_label_maps_only(collage_registry, tmp_path):
    model = _label_map_model(collage_registry)
    labels = _labels()
    cond = synth.Condition(label_map=labels, num_classes=K)
    real = torch.rand(2, 3, 32, 32) * 2 - 1
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        (picture,) = demo_pictures(model, cond, cond, real, None, 2, g)
        picture.write(tmp_path / "label_collage.png")
    assert picture.name == "label_collage" and (tmp_path / "label_collage.png").is_file()
    # a model without spatial norms, or without label maps: no picture
    plain = synth.compose(
        {
            "generator": {"type": "core.simple_generator", "num_classes": K, "ngf": 4},
            "injector": {"type": "core.gaussian"},
        }
    ).eval()
    assert demo_pictures(plain, cond, cond, real, None, 2, g) == []
