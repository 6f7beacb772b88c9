"""Slots and composition: a third conditioning block in the SPADE generator's norm slot, an
incompatible one refused, the recipes check out."""

from __future__ import annotations

import pytest
import torch

import synth
from synth.compose import check_spec, load_spec
from synth_clvae.plugin import RECIPES


def test_adain_swapped_into_the_norm_slot(clvae_registry):
    spec = {
        "generator": {
            "type": "clvae.spade_generator",
            "num_classes": 4,
            "ngf": 2,
            "style_dim": 8,
            "norm": {"type": "core.adain"},
        },
        "injector": {"type": "core.gaussian"},
    }
    model = synth.compose(spec)
    block = model.generator.stages[0].norm_0
    assert type(block).__name__ == "AdaIN" and block.config.channels == 32
    cond = synth.Condition(label_map=torch.randint(0, 4, (2, 32, 32)), num_classes=4)
    a = model.sample(cond, 2, generator=torch.Generator().manual_seed(0)).image
    assert a.shape == (4, 3, 32, 32) and torch.isfinite(a).all()
    assert not torch.allclose(a[0], a[1])  # the styles change the image


def test_incompatible_block_is_refused(clvae_registry):
    spec = {
        "generator": {
            "type": "clvae.spade_generator",
            "num_classes": 4,
            "norm": {"type": "clvae.cse"},  # reads class codes: nobody provides them
        },
        "injector": {"type": "core.gaussian"},
    }
    with pytest.raises(synth.ComposeError, match=r"generator\.norm \(clvae\.cse\).*class_codes"):
        synth.compose(spec)


def test_cse_composes_with_the_class_layer_encoder(clvae_registry):
    spec = {
        "generator": {
            "type": "clvae.clvae_generator",
            "num_classes": 4,
            "ngf": 2,
            "z_dim": 8,
            "code_dim": 3,
            "crop_size": 64,
            "norm": {"type": "clvae.spade", "hidden": 8},
            "cse": {"type": "clvae.cse", "hidden": 8},
        },
        "injector": {
            "type": "clvae.class_layer_encoder",
            "ndf": 2,
            "input_size": 64,
            "num_layers": 5,
        },
    }
    model = synth.compose(spec)
    assert model.injector.config.code_dim == 3 and model.injector.config.num_classes == 4
    cond = synth.Condition(label_map=torch.randint(0, 4, (1, 64, 64)), num_classes=4)
    lat = model.encode(torch.rand(1, 3, 64, 64) * 2 - 1, cond)
    assert len(lat.class_codes) == 6 and lat.class_codes[0].shape == (1, 4, 3)
    assert model.generate(cond, lat).image.shape == (1, 3, 64, 64)


def _instance_spec(condition):
    return {
        "generator": {
            "type": "clvae.spade_generator",
            "num_classes": 4,
            "ngf": 2,
            "use_instances": True,
            "norm": {"type": "clvae.spade", "hidden": 8},
        },
        "discriminator": {"type": "clvae.multiscale_discriminator", "ndf": 2, "n_layers": 2},
        "condition": condition,
    }


def test_instances_need_the_instance_map(clvae_registry):
    with pytest.raises(synth.ComposeError, match="instance_map"):
        synth.compose(_instance_spec(["label_map"]))
    model = synth.compose(_instance_spec(["label_map", "instance_map"]))
    block = model.generator.stages[0].norm_0
    assert block.config.use_instances and block.mlp_shared[0].weight.shape[1] == 5
    assert model.generator.fc.weight.shape[1] == 5
    g = torch.Generator().manual_seed(0)
    cond = synth.Condition(
        label_map=torch.randint(0, 4, (2, 32, 32), generator=g),
        instance_map=torch.randint(0, 3, (2, 32, 32), generator=g),
        num_classes=4,
    )
    assert model.generate(cond).image.shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="instance_map"):
        model.generate(synth.Condition(label_map=cond.label_map, num_classes=4))


def test_instances_refused_where_unsupported(clvae_registry):
    with pytest.raises(ValueError, match="use_instances"):
        synth.build(
            {
                "type": "clvae.cse",
                "channels": 4,
                "num_classes": 3,
                "code_dim": 2,
                "use_instances": True,
            }
        )
    with pytest.raises(ValueError, match="use_instances"):
        synth.build({"type": "clvae.clvae_generator", "num_classes": 3, "use_instances": True})
    spec = _instance_spec(["label_map", "instance_map"])
    spec["generator"]["norm"]["use_instances"] = False
    with pytest.raises((ValueError, synth.ComposeError), match="use_instances"):
        synth.compose(spec)


@pytest.mark.parametrize(
    # hybrids name other plugins' parts; tests/hybrids checks them with those plugins loaded
    "name",
    sorted(n for n, (_, description) in RECIPES.items() if not description.startswith("Hybrid")),
)
def test_recipes_check(clvae_registry, name):
    spec = load_spec(name, clvae_registry)
    check_spec(spec, clvae_registry)
    gen = spec.generator
    if name != "clvae.spade_cityscapes":
        assert spec.losses["kl"]["weight"] == 0.05
    assert spec.losses["fm"]["weight"] == 10.0 and spec.losses["vgg"]["weight"] == 10.0
    if name == "clvae.spade_cityscapes":
        assert gen["num_classes"] == 35 and gen["use_instances"]
        assert spec.discriminator["use_instances"]
        assert set(spec.condition) == {"label_map", "instance_map"}
    if name == "clvae.ade20k":
        assert gen["num_classes"] == 151 and gen.get("code_dim") is None  # N = C
    if name == "clvae.deepfashion":
        assert gen["ngf"] == 160 and gen["upsampling"] == "more"
