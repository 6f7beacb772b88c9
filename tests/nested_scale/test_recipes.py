"""The nested-scale recipes: the paper's settings (supplement A–B) compose at full size, their
trainer settings validate as ``synth.TrainerConfig`` and their demo settings as the demo's,
and each trains for a step at CPU demo size on the demo photos and on a fake CelebA tree. The
plugin also registers the flagship hybrid (``nested_scale.spade``, needing the clvae plugin:
tests/hybrids/test_flagship.py)."""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import synth
from synth.cli import main
from synth.demo import demo_settings, demo_spec, demo_trainer_config, run_demo
from synth.train import TrainerConfig
from synth_nested_scale import ndiv
from synth_nested_scale.recipes import DEMO, FLAGSHIP, RECIPES, TRAIN

OUTPAINT, SR = "nested_scale.celeba_outpaint", "nested_scale.celeba_sr16"
#: The paper's recipes (the flagship hybrid is tested with the clvae plugin, in tests/hybrids).
NAMES = sorted(set(RECIPES) - {FLAGSHIP})


def _paper_terms(spec: dict) -> None:
    """Supplement A: log-loss GAN + disentanglement + NDiv, weights 1/1/1; N = 4, α = 0.8;
    one shared Z0 per scale; one 70×70 PatchGAN per pyramid level."""
    losses = spec["losses"]
    assert {k: (v["type"], v["weight"]) for k, v in losses.items()} == {
        "gan": ("core.nonsaturating", 1.0),
        "disentangle": ("nested_scale.disentangle", 1.0),
        "ndiv": ("nested_scale.ndiv", 1.0),
    }
    assert losses["ndiv"]["alpha"] == 0.8
    assert losses["gan"]["reduce_scales"] == "sum"  # eq. 4: Σ over the levels
    assert spec["objective"] == {"type": "core.gan", "samples_per_input": 4}
    assert spec["injector"] == {"type": "core.gaussian", "shared_styles": True}
    disc = spec["discriminator"]
    assert disc["type"] == "nested_scale.pyramid_discriminator"
    conditional = {
        "use_image": "image" in spec["condition"],
        "use_mask": "mask" in spec["condition"],
    }
    assert disc["discriminator"] == {
        "type": "core.patch_discriminator",
        "ndf": 64,
        "n_layers": 3,
        "num_scales": 1,
        **conditional,  # eq. 4's D_i(·|c): each level's D reads the input too
    }


def test_recipes_are_registered_with_their_settings(nested_registry):
    recipes = synth.recipes()
    assert set(NAMES) == {OUTPAINT, SR} and set(RECIPES) <= set(recipes)
    assert set(TRAIN) == set(DEMO) == set(RECIPES) == {OUTPAINT, SR, FLAGSHIP}
    for name in RECIPES:
        recipe = recipes[name]
        assert recipe.plugin == "nested_scale"
        assert recipe.spec == RECIPES[name][0] and recipe.description == RECIPES[name][1]
        assert recipe.train == TRAIN[name] and recipe.demo == DEMO[name]
    for name in NAMES:
        _paper_terms(recipes[name].spec)


def test_outpainting_recipe_is_the_papers_decoder(nested_registry):
    spec = synth.recipes()[OUTPAINT].spec
    assert spec["condition"] == ["image", "mask"]
    assert "include_input" not in spec["losses"]["disentangle"]
    model = synth.compose(OUTPAINT)
    g = model.generator
    assert g.config.resolution == (128, 128) and g.config.channels == 512
    assert g.config.use_mask and g.config.variant == "standard"
    assert g.pyramid_scales == [32, 16, 8, 4, 2, 1]  # 6 scales, 4×4 .. 128×128
    assert model.data_fields == {"image", "mask"}
    assert model.discriminator.num_scales == 6 and len(model.discriminator.levels) == 6
    assert model.injector.config.num_stages == 6 and model.injector.config.shared_styles
    assert model.objective.config.samples_per_input == 4


def test_super_resolution_recipe_decodes_from_the_input(nested_registry):
    spec = synth.recipes()[SR].spec
    assert spec["condition"] == ["image"]
    assert spec["losses"]["disentangle"]["include_input"] is True  # the LR consistency term
    assert "scales" not in spec["losses"]["ndiv"]  # NDiv at every decoded scale
    model = synth.compose(SR)
    g = model.generator
    assert (g.config.variant, g.config.scale, g.config.resolution) == (
        "super_resolution",
        8,
        (128, 128),
    )
    assert g.pyramid_scales == [4, 2, 1]  # 32, 64, 128: nothing at or below the 16×16 input
    assert g.output_size((16, 16)) == (128, 128)
    assert model.discriminator.num_scales == 3


@pytest.mark.parametrize("name", NAMES)
def test_trainer_settings_are_the_papers(nested_registry, name):
    cfg = TrainerConfig.model_validate(synth.recipes()[name].train)
    assert (cfg.optimizer.type, cfg.optimizer.lr, cfg.optimizer.betas) == (
        "adam",
        2e-4,
        (0.5, 0.999),
    )
    assert cfg.optimizers == {}  # one Adam for every network
    assert cfg.batch_size == 24
    assert cfg.steps == 200_000 and cfg.decay_start is None  # our choice: no schedule given
    # ≈ 29.5 epochs of CelebA's 162,770 training faces
    assert math.isclose(cfg.steps * cfg.batch_size / 162_770, 29.5, abs_tol=0.1)


@pytest.mark.parametrize("name", NAMES)
def test_demo_settings_validate_and_shrink_to_cpu_size(nested_registry, name):
    recipe = synth.recipes()[name]
    settings = demo_settings(recipe)
    assert settings.preference == 0  # never displaces another plugin's default demo
    demo_trainer_config(recipe, {})
    spec, changes = demo_spec(name, size=64)
    g = spec["generator"]
    assert g["channels"] == 16 and g["resolution"] == 64
    assert spec["discriminator"]["discriminator"]["ndf"] == 16
    # at least three samples per input: with two, NDiv is identically zero (next test)
    assert spec["objective"]["samples_per_input"] == 3
    assert any("channels 512 → 16" in c for c in changes)
    model = synth.compose(spec)
    assert sum(p.numel() for p in model.parameters()) < 2_000_000
    if name == OUTPAINT:
        assert model.generator.pyramid_scales == [16, 8, 4, 2, 1]  # 4×4 .. 64×64


def test_two_samples_per_input_give_ndiv_no_signal():
    """Why the demo draws three samples: each normalised distance row of two samples holds
    one entry, 1 on both sides, so relu(α·1 − 1) = 0 whatever the samples."""
    g = torch.Generator().manual_seed(0)
    z, y = torch.randn(5, 2, 8, generator=g), torch.randn(5, 2, 30, generator=g)
    assert torch.equal(ndiv(z, y), torch.zeros(5))
    z3, y3 = torch.randn(5, 3, 8, generator=g), torch.randn(5, 3, 30, generator=g) * 1e-3
    assert (ndiv(z3, y3) > 0).any()


@pytest.mark.parametrize("name", NAMES)
def test_recipe_trains_at_demo_size_on_the_demo_photos(nested_registry, name, tmp_path):
    result = run_demo(name, out_dir=tmp_path, steps=2, size=32, num_samples=2, log=lambda *_: None)
    train = result.metrics["train"]
    assert train["steps"] == 2
    losses = train["final_losses"]
    assert {"g/gan", "g/disentangle", "g/ndiv", "d/gan"} <= set(losses)
    assert all(math.isfinite(v) for v in losses.values())
    assert result.files["samples"].is_file()
    assert result.files["scale_edit"].is_file()  # per-scale codes: the scale-edit picture
    inputs = sorted((tmp_path / "inputs").glob("*.png"))
    if name == OUTPAINT:  # masked photos, the mask as alpha
        assert Image.open(inputs[0]).mode == "RGBA"
    else:  # 32 / 8 = 4 px low-resolution photos
        assert Image.open(inputs[0]).size == (4, 4)
    argv = shlex.split(result.sample_command)
    assert main(argv[1:]) == 0
    assert len(list((tmp_path / "more_samples").glob("*.png"))) >= 2


def _celeba_tree(root: Path, n: int = 4) -> Path:
    folder = root / "img_align_celeba"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(n):
        name = f"{i + 1:06d}.jpg"
        Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)).save(folder / name)
        lines.append(f"{name} {0 if i < n - 1 else 2}")
    (root / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.parametrize("name", NAMES)
def test_synth_train_runs_a_recipe_on_celeba(nested_registry, name, tmp_path):
    """``model: {base: <recipe>, ...}`` with ``data: {type: celeba}``: the recipe's trainer
    settings are the defaults under the run's own, at a CPU size."""
    root = _celeba_tree(tmp_path / "celeba")
    spec, _ = demo_spec(name, size=32)
    small = {k: spec[k] for k in ("generator", "discriminator", "objective")}
    task = "outpainting" if name == OUTPAINT else "super_resolution"
    config = {
        "model": {"base": name, **small},
        "data": {"type": "celeba", "root": str(root), "task": task, "size": 32, "scale": 8},
        "train": {"steps": 1, "batch_size": 2, "sample_every": None, "checkpoint_every": 1},
    }
    run_dir = synth.train.train(config, run_dir=tmp_path / "run")
    saved = json.loads((run_dir / "config.json").read_text())["train"]
    assert saved["steps"] == 1 and saved["batch_size"] == 2
    assert saved["optimizer"]["lr"] == 2e-4 and saved["optimizer"]["betas"] == [0.5, 0.999]
    model = synth.load(run_dir / "model")
    assert model.generator.config.resolution == (32, 32)
