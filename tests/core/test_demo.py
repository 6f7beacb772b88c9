"""``synth demo`` with core alone and a test plugin: the recipe's demo settings (caps, size
fields, set/unset, train) shrink and train it, the default is the highest preference among
runnable recipes, plugin pictures come through the ``synth_demo_pictures`` hook, and bad
settings are errors naming the recipe and the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import synth
import synth.testing
import synth.viz
from synth.demo import DEMO_TRAIN, default_recipe, demo_spec, demo_trainer_config, run_demo
from synth.registry import DemoPicture

#: A label-map GAN of core parts at paper-like widths, for the demo to shrink.
SPEC = {
    "generator": {"type": "core.simple_generator", "ngf": 64, "num_stages": 3, "z_dim": 4},
    "injector": {"type": "core.gaussian"},
    "discriminator": {"type": "core.patch_discriminator", "ndf": 64, "n_layers": 2},
    "losses": {"gan": {"type": "core.hinge"}},
    "objective": {"type": "core.gan"},
}

DEMO = {
    "preference": 3,
    "caps": {"ngf": 8, "ndf": 8},
    "set": {"generator.num_stages": 2},
    "unset": ["discriminator.n_layers"],
    "train": {"optimizer": {"lr": 5e-4}, "log_every": 1},
}


class DemoPlugin:
    """Registers ``demotest.*`` recipes and a picture for models with a global code."""

    calls: list[dict] = []

    @synth.hookimpl
    def synth_register(self, registry):
        registry.add_recipe("demotest.tiny", SPEC, description="A tiny GAN.", demo=DEMO)
        registry.add_recipe("demotest.no_demo", SPEC, description="No demo settings.")
        # preferred, but it needs a plugin that is not installed
        other = {**SPEC, "discriminator": {"type": "clvae.multiscale_discriminator"}}
        registry.add_recipe("demotest.needs_clvae", other, demo={"preference": 9})

    @synth.hookimpl
    def synth_demo_pictures(self, model, cond, num_samples, generator):
        self.calls.append({"n": num_samples, "b": cond.batch_size})
        with torch.no_grad():
            image = model.generator(cond, model.injector.prior(cond, generator)).image

        def write(path: Path) -> None:
            synth.viz.save_image(image[0], path)

        return [
            DemoPicture("first_sample", write, note="first_sample.png: one prior draw"),
            DemoPicture("nothing", note="no nothing.png: not this model"),
        ]


@pytest.fixture
def demo_registry():
    with synth.testing.fresh_registry(("demotest", DemoPlugin())) as reg:
        yield reg


def test_default_is_the_preferred_runnable_recipe_and_the_note_names_the_plugin(demo_registry):
    name, notes = default_recipe()
    assert name == "demotest.tiny"  # recipes without demo settings are never the default
    assert notes == [
        "the default demo recipe demotest.needs_clvae needs synth-plugin-clvae, which is not "
        "installed; running demotest.tiny instead (pip install synth-plugin-clvae for the "
        "default)"
    ]


def test_demo_spec_applies_the_recipes_caps_set_and_unset(demo_registry):
    spec, changes = demo_spec("demotest.tiny", size=32, num_classes=5, overrides={"x.y": 1})
    assert spec["generator"]["ngf"] == 8 and spec["discriminator"]["ndf"] == 8
    assert spec["generator"]["num_stages"] == 2 and "n_layers" not in spec["discriminator"]
    assert spec["generator"]["norm"] == {"type": "core.instance_norm"}  # default slot written
    assert spec["x"] == {"y": 1}
    assert changes == [
        "generator(core.simple_generator).ngf 64 → 8",
        "discriminator(core.patch_discriminator).ndf 64 → 8",
        "discriminator.n_layers removed (demo)",
        "generator.num_stages = 2 (demo)",
        "x.y = 1 (--set)",
    ]
    assert demo_registry.recipe("demotest.tiny").spec == SPEC  # the registered one untouched


def test_demo_trainer_config_layers_core_recipe_run_and_user_settings(demo_registry):
    recipe = demo_registry.recipe("demotest.tiny")
    cfg = demo_trainer_config(recipe, {"time_limit": 6.0, "run_dir": "x"})
    assert cfg.optimizer.lr == 5e-4 and cfg.optimizer.betas == DEMO_TRAIN["optimizer"]["betas"]
    assert cfg.batch_size == DEMO_TRAIN["batch_size"] and cfg.log_every == 1
    assert cfg.time_limit == 6.0 and cfg.run_dir == "x"
    cfg = demo_trainer_config(recipe, {}, batch_size=2, lr=1e-2)
    assert cfg.batch_size == 2 and cfg.optimizer.lr == 1e-2


@pytest.mark.parametrize(
    ("demo", "key"),
    [
        ({"capz": {"ngf": 8}}, "capz"),  # an unknown key
        ({"caps": {"ngf": "small"}}, "caps.ngf"),  # a cap that is not an integer
        ({"train": {"lrr": 1e-3}}, "lrr"),  # not a TrainerConfig field
    ],
)
def test_bad_demo_settings_name_the_recipe_and_the_key(demo, key, tmp_path):
    class Bad:
        @synth.hookimpl
        def synth_register(self, registry):
            registry.add_recipe("bad.recipe", SPEC, demo=demo)

    bad_settings = pytest.raises(synth.ConfigError, match=rf"recipe 'bad.recipe'.*\n.*{key}")
    with synth.testing.fresh_registry(("bad", Bad())), bad_settings:
        run_demo(out_dir=tmp_path, minutes=0.01, size=32, log=lambda *_: None)


def test_no_demo_recipe_names_the_plugins_to_install():
    none = pytest.raises(synth.ConfigError, match="no installed plugin registers one")
    with synth.testing.fresh_registry(), none as got:
        default_recipe()
    for dist in synth.registry.KNOWN_PLUGINS.values():
        assert dist in str(got.value)


def test_demo_writes_the_plugin_pictures_and_notes(demo_registry, tmp_path):
    DemoPlugin.calls.clear()
    lines: list[str] = []
    result = run_demo(out_dir=tmp_path, steps=2, size=32, num_samples=2, log=lines.append)
    assert result.metrics["recipe"] == "demotest.tiny"
    assert result.metrics["train"]["steps"] == 2  # --steps ends it before the 3 minutes
    assert any("at most 2 steps" in ln for ln in lines)
    assert any("needs synth-plugin-clvae" in ln for ln in lines)
    assert DemoPlugin.calls == [{"n": 2, "b": 8}]  # once, on the 8 demo photos
    assert result.files["first_sample"] == tmp_path / "first_sample.png"
    assert result.files["first_sample"].is_file() and "nothing" not in result.files
    assert "first_sample.png: one prior draw" in result.notes
    assert "no nothing.png: not this model" in result.notes
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["files"]["first_sample"] == str(tmp_path / "first_sample.png")
    assert metrics["settings"]["spec"]["generator"]["ngf"] == 8

    # a later run in the same folder removes the pictures this one wrote (metrics.json lists
    # them), also when its model makes none
    class Plain:
        @synth.hookimpl
        def synth_register(self, registry):
            registry.add_recipe("plain.tiny", SPEC, demo=DEMO)

    with synth.testing.fresh_registry(("plain", Plain())):
        run_demo(out_dir=tmp_path, steps=1, size=32, num_samples=2, log=lambda *_: None)
    assert not (tmp_path / "first_sample.png").exists()
    assert (tmp_path / "samples.png").is_file()
