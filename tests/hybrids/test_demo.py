"""``synth demo`` / :func:`synth.demo.run_demo`: a hybrid recipe shrunk to CPU size by its own
demo settings, trained for a time budget on the demo photos, with its pictures (CLVAE's and the
nested-scale plugin's through the ``synth_demo_pictures`` hook), metrics, model and a working
``synth sample`` command; per-class resampling keeps every other code; the default recipe is
the plugins' preference: the flagship, ``nested_scale.spade``, with every plugin installed."""

from __future__ import annotations

import json
import shlex

import pytest
import torch
from PIL import Image

import synth
from synth.cli import main
from synth.demo import BEST_OF_DRAWS, default_recipe, demo_spec, run_demo

pytest.importorskip("synth_clvae")
pytest.importorskip("synth_pix2pixhd")
pytest.importorskip("synth_cimle")
pytest.importorskip("synth_nested_scale")

from synth_clvae.pictures import class_resample

#: What the installed plugins prefer as the default demo: the flagship (nested-scale plugin,
#: needs clvae); without the nested-scale plugin, GauGAN as a composition.
DEFAULT_RECIPE = "nested_scale.spade"
GAUGAN = "clvae.gaugan_composed"

#: A very short run at 32 px with one VGG layer: the pipeline, not the quality.
TINY = {"minutes": 0.01, "size": 32, "num_samples": 3, "batch_size": 2}
ONE_VGG_LAYER = {"losses.vgg.layers": ["relu1_1"], "losses.vgg.layer_weights": [1.0]}


def test_the_default_demo_is_the_plugins_preference(registry_with):
    registry_with("nested_scale", "pix2pixhd", "clvae", "cimle")
    assert default_recipe() == (DEFAULT_RECIPE, [])
    registry_with("pix2pixhd", "clvae", "cimle")
    assert default_recipe() == (GAUGAN, [])
    assert synth.get_registry().recipe(GAUGAN).demo["preference"] == 10


def test_the_default_demo_with_every_installed_plugin_is_the_flagship():
    assert default_recipe() == (DEFAULT_RECIPE, [])


def test_without_clvae_the_flagship_gives_way_and_the_note_says_why(registry_with):
    registry_with("nested_scale", "pix2pixhd", "cimle")
    name, notes = default_recipe()
    assert name == "cimle.sr_x4_small"
    assert notes == [
        f"the default demo recipe {DEFAULT_RECIPE} needs synth-plugin-clvae, which is not "
        f"installed; running {name} instead (pip install synth-plugin-clvae for the default)"
    ]


def test_without_a_plugin_of_the_default_the_demo_runs_another_and_says_so(registry_with):
    registry_with("clvae", "cimle")  # the GauGAN composition needs pix2pixHD's parts
    name, notes = default_recipe()
    assert name == "clvae.gaugan_vae_ade20k"  # clvae's next preference: GauGAN-VAE alone
    assert notes == [
        f"the default demo recipe {GAUGAN} needs synth-plugin-pix2pixhd, which is not "
        f"installed; running {name} instead (pip install synth-plugin-pix2pixhd for the default)"
    ]
    registry_with("pix2pixhd", "cimle")  # without clvae: the preferred recipe of the others
    assert default_recipe() == ("cimle.sr_x4_small", [])


def test_a_plugin_with_a_higher_preference_becomes_the_default_demo(registry_with):
    """A later plugin (e.g. a nested-scale hybrid) takes over the default by registering a
    higher demo preference: no core change."""
    reg = registry_with("pix2pixhd", "clvae")
    base = reg.recipe(GAUGAN)

    class Later:
        @synth.hookimpl
        def synth_register(self, registry):
            demo = {**base.demo, "preference": base.demo["preference"] + 1}
            registry.add_recipe("later.hybrid", base.spec, demo=demo)

    reg.register_plugin(Later(), "later")
    assert default_recipe() == ("later.hybrid", [])
    spec, _ = demo_spec(size=32)
    assert spec["generator"]["ngf"] == base.demo["caps"]["ngf"]


def test_cli_demo_prints_the_fallback_note(registry_with, tmp_path, capsys):
    registry_with("clvae")
    argv = ["demo", "--minutes", "0.005", "--size", "32", "-n", "2", "--batch-size", "2"]
    argv += ["--out", str(tmp_path), "--set", 'losses.vgg.layers=["relu1_1"]', "--lr", "5e-4"]
    argv += ["--set", "losses.vgg.layer_weights=[1]"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    lrs = json.loads((tmp_path / "metrics.json").read_text())["settings"]["lr"]
    assert lrs and set(lrs.values()) == {5e-4}  # every optimizer's
    assert "note: the default demo recipe clvae.gaugan_composed needs synth-plugin-pix2pixhd" in out
    assert "synth demo: clvae.gaugan_vae_ade20k" in out


def test_demo_spec_caps_a_paper_sized_recipe():
    caps = synth.get_registry().recipe(GAUGAN).demo["caps"]
    spec, changes = demo_spec(GAUGAN, size=48, num_classes=5)
    gen = spec["generator"]
    assert gen["ngf"] == caps["ngf"] and gen["crop_size"] == 48 and gen["num_classes"] == 5
    assert gen["norm"]["hidden"] == caps["hidden"]  # a slot left at its default is capped
    # the hybrid's own settings shrink the other plugin's part (pix2pixHD's discriminator)
    assert spec["discriminator"]["ndf"] == caps["ndf"]
    assert any("ngf 64 → 16" in c for c in changes)
    spec, changes = demo_spec(GAUGAN, overrides={"generator.ngf": 8})
    assert spec["generator"]["ngf"] == 8 and changes[-1].endswith("(--set)")
    # the registered recipe itself is untouched
    assert synth.get_registry().recipe(GAUGAN).spec["generator"]["crop_size"] == 256
    # the default recipe (the flagship) shrinks the wrapped generator inside its adapter
    spec, _ = demo_spec(size=48, num_classes=5)
    inner = spec["generator"]["generator"]
    assert inner["ngf"] == caps["ngf"] and inner["crop_size"] == 48 and inner["num_classes"] == 5


def test_default_demo_writes_pictures_metrics_model_and_a_working_command(tmp_path, capsys):
    lines: list[str] = []
    out = tmp_path / "demo"
    result = run_demo(out_dir=out, log=lines.append, **TINY)  # the flagship: no VGG loss
    for name in ("samples.png", "loss_curve.png", "metrics.json", "log.jsonl"):
        assert (out / name).is_file(), name
    assert (out / "model" / "synth.json").is_file()
    # one row per demo photo (8) and condition | real | 3 samples per row
    grid = Image.open(out / "samples.png")
    assert grid.width == 5 * 64 + 6 * 2 and grid.height > 8 * 64  # cells magnified to 64 px
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["recipe"] == DEFAULT_RECIPE
    assert metrics["lpips_diversity"] >= 0 and metrics["best_of_3_l1"] <= metrics["mean_sample_l1"]
    # the expected best of 3: averaged over independent draws, with one draw's spread
    assert metrics["best_of_draws"] == BEST_OF_DRAWS > 1 and metrics["best_of_3_l1_draw_std"] >= 0
    spade = metrics["settings"]["spec"]["generator"]["generator"]
    assert metrics["train"]["steps"] >= 1 and spade["ngf"] == 16
    # per-scale codes: the scale-edit picture and per-scale diversity; no per-class codes, no
    # per-class resampling, and the demo says so
    assert (out / "scale_edit.png").is_file() and metrics["files"]["scale_edit"]
    assert len(metrics["lpips_diversity_per_scale"]) == 6
    assert not (out / "class_resample.png").exists()
    assert any("per-class codes" in n for n in result.notes)
    assert any("AlexNet" in n for n in result.notes)  # no LPIPS AlexNet weights offline
    assert any("demo size" in ln for ln in lines)
    # the printed command reloads the model and samples the saved label map
    argv = shlex.split(result.sample_command)
    assert argv[0] == "synth" and "--label-map" in argv
    assert main(argv[1:]) == 0
    written = sorted((out / "more_samples").glob("*.png"))
    assert len(written) >= 3, written


def test_demo_resamples_one_class_for_models_with_class_codes(tmp_path):
    result = run_demo("clvae.ade20k", out_dir=tmp_path, log=lambda *_: None, **TINY)
    assert "class_resample" in result.files and result.files["class_resample"].is_file()


def test_class_resample_changes_only_the_chosen_class_codes(registry_with):
    registry_with("clvae")
    spec, _ = demo_spec("clvae.ade20k", size=32, num_classes=4)
    for section in ("losses", "discriminator", "objective"):
        spec.pop(section)
    torch.manual_seed(0)
    model = synth.compose(spec).eval()
    seen = []
    real_generator = model.generator

    class Recorder(torch.nn.Module):
        def forward(self, cond, latents):
            seen.append(latents)
            return real_generator(cond, latents)

    model.generator = Recorder()
    label_map = torch.zeros(2, 32, 32, dtype=torch.long)
    label_map[:, :, 16:] = 1
    label_map[1, :8] = 3
    cond = synth.Condition(label_map=label_map, num_classes=4)
    classes = torch.tensor([1, 3])
    with torch.no_grad():
        base, resampled = class_resample(model, cond, classes, 3, torch.Generator().manual_seed(0))
    assert base.shape == (2, 3, 32, 32) and resampled.shape == (2, 3, 3, 32, 32)
    (latents,) = seen  # one batched generator call for all inputs and resamples
    for codes in latents.class_codes:  # [(b m), K, D] with m = 4: the base, then 3 resamples
        codes = codes.view(2, 4, *codes.shape[1:])
        for b, c in enumerate(classes.tolist()):
            others = [k for k in range(4) if k != c]
            assert torch.equal(codes[b, 1:, others], codes[b, :1, others].expand(3, -1, -1))
            assert not torch.equal(codes[b, 1, c], codes[b, 0, c])
    assert torch.equal(
        latents.z.view(2, 4, -1)[:, 1:], latents.z.view(2, 4, -1)[:, :1].expand(-1, 3, -1)
    )


def test_demo_trains_a_super_resolution_recipe_on_the_photos(tmp_path):
    result = run_demo("cimle.sr_x4_small", out_dir=tmp_path, log=lambda *_: None, **TINY)
    assert (tmp_path / "samples.png").is_file()
    assert "--image" in result.sample_command
    lr = Image.open(next((tmp_path / "inputs").glob("*.png")))
    assert lr.mode == "RGB" and lr.size == (8, 8)  # 32 px / scale 4


def test_cli_demo_errors(capsys):
    assert main(["demo", "--recipe", "clvae.nope"]) == 1
    assert "unknown recipe 'clvae.nope'" in capsys.readouterr().err
    assert main(["demo", "--set", "generator.ngf"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(["demo", "--minutes", "0"]) == 1
    assert "positive training time" in capsys.readouterr().err
    assert main(["demo", "--steps", "0"]) == 1
    assert "positive number of steps" in capsys.readouterr().err


def test_cli_demo_prints_the_summary_and_the_sample_command(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["demo", "--minutes", "0.01", "--size", "32", "-n", "2", "--batch-size", "2"]
    argv += ["--set", "generator.style_dim=8"]  # the default recipe: the flagship's adapter
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "synth demo: nested_scale.spade" in out
    assert "generator.style_dim = 8 (--set)" in out
    assert "diversity " in out and "best-of-2 L1" in out
    assert "synth sample runs/demo/model --label-map runs/demo/inputs/astronaut.png" in out
    assert (tmp_path / "runs" / "demo" / "samples.png").is_file()


#: Recipes with demo settings; the others (class-conditional collage GANs: the demo photos
#: carry no class labels) are refused with a clear error.
RECIPES = synth.get_registry().recipes()
WITH_DEMO = sorted(n for n, r in RECIPES.items() if r.demo)
WITHOUT_DEMO = sorted(n for n, r in RECIPES.items() if not r.demo)


@pytest.mark.parametrize("recipe", WITHOUT_DEMO)
def test_a_recipe_the_demo_photos_cannot_feed_is_a_clear_error(recipe, tmp_path):
    with pytest.raises(ValueError, match="synth demo trains on label maps"):
        run_demo(recipe, out_dir=tmp_path, steps=1, size=32, log=lambda *_: None)


@pytest.mark.parametrize("recipe", WITH_DEMO)
def test_every_registered_recipe_runs_as_a_demo(recipe, tmp_path):
    """`synth demo --recipe NAME` for each recipe at the demo's 64 px (some recipes need 64:
    CLVAE's 'more' upsampling, the local enhancer's depth): capped to CPU size, a step or two."""
    result = run_demo(
        recipe,
        out_dir=tmp_path,
        minutes=0.005,
        size=64,
        num_samples=2,
        batch_size=2,
        log=lambda *_: None,
    )
    assert result.metrics["train"]["steps"] >= 1
    assert (tmp_path / "samples.png").is_file() and (tmp_path / "model" / "synth.json").is_file()
