"""A run whose model names a recipe trains with the recipe's trainer settings (Recipe.train)
as defaults that the run's own ``train`` section overrides."""

from __future__ import annotations

import json
import types

import pytest
import yaml

import synth
from synth.testing import fresh_registry
from synth.train.run import recipe_train_settings, run_config

from .test_trainer import SPEC

PAPER = {
    "steps": 50,
    "batch_size": 2,
    "decay_start": 25,
    "optimizers": {
        "generator": {"lr": 1e-4, "betas": [0.0, 0.9]},
        "discriminator": {"lr": 4e-4, "betas": [0.0, 0.9]},
    },
}


def _register(registry) -> None:
    registry.add_recipe("rtest.tiny", SPEC, train=PAPER)
    registry.add_recipe("rtest.typo", SPEC, train={"stepz": 3})
    registry.add_recipe("rtest.plain", SPEC)


@pytest.fixture
def recipes():
    plugin = types.ModuleType("rtest")
    plugin.synth_register = synth.hookimpl(_register)
    with fresh_registry(("rtest", plugin)) as reg:
        yield reg


DATA = {"type": "demo", "size": 16, "num_classes": 4, "crops_per_photo": 1}


def test_recipe_settings_are_defaults_the_run_overrides(recipes):
    run = run_config(
        {
            "model": "rtest.tiny",
            "data": DATA,
            "train": {"steps": 3, "optimizers": {"generator": {"lr": 5e-5}}},
        }
    )
    t = run.train
    assert (t.steps, t.batch_size, t.decay_start) == (3, 2, 25)
    assert t.optimizers["generator"].lr == 5e-5  # the run's own value
    assert t.optimizers["generator"].betas == (0.0, 0.9)  # merged from the recipe
    assert t.optimizers["discriminator"].lr == 4e-4
    # command-line overrides come last
    assert run_config({"model": "rtest.tiny", "data": DATA}, {"steps": 7}).train.steps == 7


def test_recipe_named_as_base_of_a_spec_or_in_a_spec_file(recipes, tmp_path):
    spec = {"base": "rtest.tiny", "generator": {"ngf": 4}}
    assert run_config({"model": spec, "data": DATA}).train.decay_start == 25
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert run_config({"model": str(path), "data": DATA}).train.decay_start == 25
    # no recipe, or a recipe without settings: the TrainerConfig defaults
    assert run_config({"model": SPEC, "data": DATA}).train.decay_start is None
    assert recipe_train_settings("rtest.plain") == ("rtest.plain", {})
    assert recipe_train_settings(SPEC) == (None, {})


def test_invalid_recipe_settings_name_the_recipe(recipes):
    with pytest.raises(synth.ConfigError, match=r"recipe 'rtest\.typo'(.|\n)*stepz"):
        run_config({"model": "rtest.typo", "data": DATA})


def test_train_uses_the_recipe_settings(recipes, tmp_path):
    config = {
        "model": {"base": "rtest.tiny"},
        "data": DATA,
        "train": {"steps": 1, "sample_every": None, "checkpoint_every": 1},
    }
    run_dir = synth.train.train(config, run_dir=tmp_path / "run")
    saved = json.loads((run_dir / "config.json").read_text())["train"]
    assert saved["steps"] == 1 and saved["decay_start"] == 25
    assert saved["optimizers"]["generator"] == {
        "type": "adam",
        "lr": 1e-4,
        "betas": [0.0, 0.9],
        "weight_decay": 0.0,
        "eps": 1e-8,
    }
    assert (run_dir / "model" / "synth.json").exists()
