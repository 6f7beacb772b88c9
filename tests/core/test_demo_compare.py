"""``synth demo --compare`` with core alone and a test plugin: the demo recipe and its
comparison set train with the same budget, photos, seed and size, each into
``compare/<recipe>/``; ``compare.md`` / ``.json`` / ``.png`` hold one row per recipe; recipes
whose plugins are missing are skipped with a note; a model with a pyramid gets per-scale
diversity (also in the plain demo's ``metrics.json``)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import synth
import synth.testing
import synth.viz
from synth.cli import main
from synth.demo import compare_set, run_compare, run_demo
from synth.parts.generators import SimpleGenerator


class PyramidSimple(SimpleGenerator):
    """core.simple_generator with a two-level pyramid: the image at half size, then itself."""

    has_pyramid = True

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        self.pyramid_scales = [2, 1]

    def forward(self, cond, latents=None, *, return_features=False):
        out = super().forward(cond, latents, return_features=return_features)
        out.pyramid = [F.avg_pool2d(out.image, 2), out.image]
        return out


def _spec(generator: str) -> dict:
    return {
        "generator": {"type": generator, "ngf": 64, "num_stages": 2, "z_dim": 4},
        "injector": {"type": "core.gaussian"},
        "discriminator": {"type": "core.patch_discriminator", "ndf": 64, "n_layers": 2},
        "losses": {"gan": {"type": "core.hinge"}},
        "objective": {"type": "core.gan"},
    }


DEMO = {"caps": {"ngf": 8, "ndf": 8}, "train": {"log_every": 1}}
#: The comparison set of the preferred recipe: itself (left out), a runnable recipe, one that
#: needs a plugin that is not installed, one whose plugin is missing altogether, and a repeat.
COMPARE = ["cmptest.pyramid", "cmptest.plain", "cmptest.needs_clvae", "pix2pixhd.imle"]


class ComparePlugin:
    @synth.hookimpl
    def synth_register(self, registry):
        registry.add("cmptest.pyramid_generator", kind="generator", target=PyramidSimple)
        demo = {**DEMO, "preference": 5, "compare": [*COMPARE, "cmptest.plain"]}
        registry.add_recipe("cmptest.pyramid", _spec("cmptest.pyramid_generator"), demo=demo)
        registry.add_recipe("cmptest.plain", _spec("core.simple_generator"), demo=DEMO)
        needs = {**_spec("core.simple_generator")}
        needs["discriminator"] = {"type": "clvae.multiscale_discriminator"}
        registry.add_recipe("cmptest.needs_clvae", needs, demo=DEMO)


@pytest.fixture
def compare_registry():
    with synth.testing.fresh_registry(("cmptest", ComparePlugin())) as reg:
        yield reg


def test_compare_set_keeps_the_order_and_skips_missing_plugins_with_a_note(compare_registry):
    names, notes = compare_set()
    assert names == ["cmptest.pyramid", "cmptest.plain"]
    assert notes == [
        "cmptest.needs_clvae skipped: it needs synth-plugin-clvae, which is not installed",
        "pix2pixhd.imle skipped: its plugin is not installed (pip install synth-plugin-pix2pixhd)",
    ]
    # names given on the command line replace the recipe's own set
    assert compare_set("cmptest.plain", ["cmptest.pyramid"]) == (
        ["cmptest.plain", "cmptest.pyramid"],
        [],
    )


def test_compare_set_errors_name_the_fix(compare_registry):
    with pytest.raises(ValueError, match=r"cmptest.plain names no recipes.*--compare NAME"):
        compare_set("cmptest.plain")
    # a typo in an installed plugin's namespace is an error with the close match, not a skip
    with pytest.raises(synth.UnknownPartError, match="cmptest.plain"):
        compare_set("cmptest.pyramid", ["cmptest.plane"])


def test_compare_trains_each_recipe_alike_and_writes_the_table_json_and_figure(
    compare_registry, tmp_path
):
    lines: list[str] = []
    result = run_compare(out_dir=tmp_path, steps=1, size=32, num_samples=3, log=lines.append)
    names = ["cmptest.pyramid", "cmptest.plain"]
    assert list(result.runs) == names and [r["recipe"] for r in result.rows] == names
    for name in names:  # each run's usual files, in compare/<recipe>/
        run_dir = tmp_path / "compare" / name
        for file in ("samples.png", "metrics.json", "loss_curve.png", "log.jsonl"):
            assert (run_dir / file).is_file(), (name, file)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["settings"]["size"] == 32 and metrics["settings"]["seed"] == 0
        assert metrics["train"]["steps"] == 1
    # progress: which recipe, and how much is left
    assert any(ln.startswith("[1/2] cmptest.pyramid (2 recipes of at most 1 steps") for ln in lines)
    assert any(ln.startswith("[2/2] cmptest.plain (about ") for ln in lines)

    report = json.loads((tmp_path / "compare.json").read_text())
    assert report["settings"]["steps"] == 1 and report["settings"]["size"] == 32
    # the metric (and backbone) that made the numbers, named as the runs' metrics.json name it
    label = json.loads((tmp_path / "compare/cmptest.plain/metrics.json").read_text())
    assert (
        report["diversity_metric"] == label["diversity_metric"]
        and "LPIPS" in report["diversity_metric"]
    )
    first, second = report["recipes"]
    for row in (first, second):
        for key in ("diversity", "best_of_3_l1", "mean_sample_l1", "steps", "images_per_s"):
            assert isinstance(row[key], int | float), key
        assert row["best_of_3_l1"] <= row["mean_sample_l1"] + 1e-6
    assert first["diversity_ratio"] == pytest.approx(1.0)
    assert second["diversity_ratio"] == pytest.approx(second["diversity"] / first["diversity"])
    assert len(first["per_scale_diversity"]) == 2 and first["pyramid_levels"] == [
        [16, 16],
        [32, 32],
    ]
    assert second["per_scale_diversity"] is None
    assert any("pix2pixhd.imle skipped" in note for note in report["notes"])

    with Image.open(tmp_path / "compare.png") as png:
        assert png.width > 400 and png.height > 300


def test_the_markdown_table_has_one_row_per_recipe(compare_registry, tmp_path):
    result = run_compare(out_dir=tmp_path, steps=1, size=32, num_samples=2, log=lambda *_: None)
    md = (tmp_path / "compare.md").read_text()
    first = result.rows[0]
    assert result.files["md"] == tmp_path / "compare.md"
    assert f"Diversity: {first['diversity_metric']}, " in md and "2 samples per photo" in md
    table = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert table[0].startswith("| recipe | diversity | × first | best-of-2 L1 | one-sample L1")
    rows = {ln.split(" | ")[0][2:]: ln.split(" | ") for ln in table[2:]}
    assert list(rows) == ["cmptest.pyramid", "cmptest.plain"]
    assert rows["cmptest.pyramid"][1] == f"{first['diversity']:.4g}"
    assert rows["cmptest.pyramid"][2] == "1×"
    assert rows["cmptest.pyramid"][5].count(",") == 1  # two pyramid levels
    assert rows["cmptest.plain"][5] == "no pyramid"
    assert rows["cmptest.plain"][6] == "1"  # steps
    assert "- cmptest.needs_clvae skipped: it needs synth-plugin-clvae" in md


def test_plain_demo_metrics_gain_per_scale_diversity_for_a_pyramid(compare_registry, tmp_path):
    result = run_demo("cmptest.pyramid", out_dir=tmp_path, steps=1, size=32, num_samples=2,
                      log=lambda *_: None)  # fmt: skip
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert len(metrics["lpips_diversity_per_scale"]) == 2
    assert metrics["pyramid_levels"] == [[16, 16], [32, 32]]
    # the output level is the image itself: its diversity is the overall one
    assert metrics["lpips_diversity_per_scale"][-1] == pytest.approx(metrics["lpips_diversity"])
    assert "LPIPS" in metrics["diversity_metric"]  # every number says what made it
    assert result.images is not None and result.images.samples.shape == (8, 2, 3, 32, 32)
    assert not (tmp_path / "compare.md").exists()  # no --compare: no comparison
    run_demo("cmptest.plain", out_dir=tmp_path, steps=1, size=32, num_samples=2,
             log=lambda *_: None)  # fmt: skip
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert "lpips_diversity_per_scale" not in metrics


def test_cli_parses_compare(compare_registry, tmp_path, capsys, monkeypatch):
    seen: dict = {}

    def fake(recipe, **kwargs):
        seen.update(recipe=recipe, **kwargs)
        raise SystemExit(0)

    monkeypatch.setattr("synth.demo.run_compare", fake)
    with pytest.raises(SystemExit):
        main(["demo", "--compare", "--steps", "3", "--out", str(tmp_path)])
    assert seen["recipe"] is None and seen["compare"] == [] and seen["steps"] == 3
    with pytest.raises(SystemExit):
        main(["demo", "--recipe", "cmptest.plain", "--compare", "a.b", "c.d", "--minutes", "2"])
    assert seen["recipe"] == "cmptest.plain" and seen["compare"] == ["a.b", "c.d"]
    assert seen["minutes"] == 2.0
    assert main(["demo", "--compare", "--set", "generator.ngf=4"]) == 2
    assert "cannot be combined with --compare" in capsys.readouterr().err


def test_cli_compare_prints_every_recipe(compare_registry, tmp_path, capsys):
    code = main(["demo", "--compare", "--steps", "1", "--size", "32", "-n", "2",
                 "--out", str(tmp_path)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "[1/2] cmptest.pyramid" in printed and "[2/2] cmptest.plain" in printed
    assert "  cmptest.pyramid: diversity " in printed and "× the first; per scale " in printed
    assert "note: pix2pixhd.imle skipped" in printed
    assert str(tmp_path / "compare.md") in printed


def test_comparison_figure_rows_and_panels(tmp_path):
    g = torch.Generator().manual_seed(0)
    samples = {
        "a.x": torch.rand(3, 3, 16, 16, generator=g) * 2 - 1,
        "b.y": torch.zeros(2, 3, 16, 16),
    }
    bars = {
        "diversity": {"": {"a.x": 0.5, "b.y": None}},  # None: the bar is left out, "n/a"
        "per scale": {"level 1": {"a.x": 0.1}, "level 2": {"a.x": 0.2}},  # only a.x has levels
    }
    inputs = {"photo": torch.zeros(3, 16, 16)}
    first = synth.viz.comparison_figure(samples, tmp_path / "c.png", inputs=inputs, bars=bars)
    again = synth.viz.comparison_figure(samples, tmp_path / "d.png", inputs=inputs, bars=bars)
    assert first.read_bytes() == again.read_bytes()  # the same numbers give the same file
    with Image.open(first) as png:  # 1 input + 3 samples of 96 px, and a chart row
        assert png.width >= 4 * 96 and png.height >= 2 * 96 + 320
    with pytest.raises(ValueError, match="no models"):
        synth.viz.comparison_figure({}, tmp_path / "e.png")
