"""The ``synth`` command line: list, info, plugins, recipes, compose --check, train, sample, demo,
--version."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import Field
from torch import Tensor, nn

import synth
from synth.cli import format_markdown, format_table, main, markdown_summary, summary_line
from synth.registry import PluginInfo, discover
from synth.viz import to_uint8


class LabelScale(synth.ConditioningBlock):
    """Scale features per pixel from the label map.

    A second paragraph that the one-line summary leaves out.
    """

    requires = frozenset({"label_map"})

    class Config(synth.PartConfig):
        channels: int = Field(description="C (runtime argument)")
        num_classes: int
        hidden: int = Field(8, description="width of the hidden conv")

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        self.conv = nn.Conv2d(self.config.num_classes, self.config.channels, 3, padding=1)

    def forward(self, x: Tensor, ctx: synth.Context) -> Tensor:
        return x * (1 + self.conv(ctx.one_hot(x.shape[-2:])))


TINY = {
    "generator": {"type": "core.simple_generator", "num_classes": 4, "num_stages": 2, "ngf": 8},
}
#: A tiny trainable GAN, and its trainer settings (a paper's, for a real recipe).
GAN = {
    **TINY,
    "discriminator": {"type": "core.patch_discriminator", "ndf": 8, "n_layers": 2},
    "losses": {"gan": {"type": "core.hinge"}},
    "objective": {"type": "core.gan"},
}
TRAIN = {"optimizer": {"lr": 3e-4, "betas": (0.0, 0.9)}, "batch_size": 4, "log_every": 1}


@pytest.fixture
def registry():
    """Core parts, two test parts (one whose module does not exist) and a recipe, installed as
    the process-wide registry for the duration of a test."""
    reg = synth.Registry()
    discover(reg, entry_points=False)
    reg.add("clitest.label_scale", kind="conditioning", target=LabelScale)
    reg.add("clitest.broken", kind="loss", target="synth_no_such_module_xyz:Thing")
    reg.add_recipe("clitest.tiny", TINY, description="A tiny label-map generator.\n\nMore text.")
    old = synth.set_registry(reg)
    try:
        yield reg
    finally:
        synth.set_registry(old)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- helpers


def test_table_formatter_aligns_and_has_no_trailing_blanks():
    text = format_table(["a", "long header"], [["xxxx", "1"], ["y", None]])
    lines = text.splitlines()
    assert lines[0] == "a     long header"
    assert lines[1] == "----  -----------"
    assert lines[2] == "xxxx  1"
    assert lines[3] == "y"
    assert format_markdown(["a", "b"], [["x|y", "z"]]).splitlines() == [
        "| a | b |",
        "|---|---|",
        "| x\\|y | z |",
    ]
    # a line break would end the row: cells are joined into one line
    assert format_markdown(["a"], [["one\n  two", None]]).splitlines()[2] == "| one two |  |"


def test_summary_line():
    assert summary_line("First line.\n\n    Body.") == "First line."
    assert summary_line("Wrapped first\n    sentence.\n\n    Body.") == "Wrapped first sentence."
    long = "A first sentence. " + "Xy " * 100
    assert summary_line(long) == "A first sentence."
    assert summary_line(None) == ""
    assert summary_line("y" * 300).endswith("...")


def test_markdown_summary_is_never_cut():
    assert markdown_summary("First line.\n\n    Body.") == "First line."
    long = "A first sentence. " + "Xy " * 100
    assert markdown_summary(long) == "A first sentence."
    # a paragraph up to 200 characters is kept whole, longer than 120 (the terminal's limit)
    para = "A first sentence. Then a second one" + " word" * 25 + "."
    assert 120 < len(para) <= 200
    assert markdown_summary(para) == para
    assert summary_line(para) == "A first sentence."
    assert markdown_summary("y" * 300) == "y" * 300
    assert markdown_summary(None) == ""


# --------------------------------------------------------------------------- list


def test_list_table(registry, capsys):
    code, out, err = run(capsys, "list")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["name", "kind", "plugin", "summary"]
    row = next(ln for ln in lines if ln.startswith("clitest.label_scale "))
    assert row.split()[1:3] == ["conditioning", "clitest"]
    assert row.endswith("Scale features per pixel from the label map.")
    broken = next(ln for ln in lines if ln.startswith("clitest.broken "))
    assert "(import failed: ModuleNotFoundError" in broken
    assert "core.simple_generator" in out
    # recipes in a second section
    recipe_header = next(i for i, ln in enumerate(lines) if ln.startswith("recipe "))
    assert lines[recipe_header].split() == ["recipe", "plugin", "description"]
    assert any(
        ln.startswith("clitest.tiny ") and ln.endswith("A tiny label-map generator.")
        for ln in lines[recipe_header:]
    )


def test_list_markdown_is_sorted_and_deterministic(registry, capsys):
    code, out, _ = run(capsys, "list", "--format", "markdown")
    assert code == 0
    again = run(capsys, "list", "--format", "markdown")[1]
    assert out == again
    parts_md, recipes_md = out.strip().split("\n\n")
    lines = parts_md.splitlines()
    assert lines[0] == "| name | kind | plugin | summary |"
    assert lines[1] == "|---|---|---|---|"
    names = [ln.split("|")[1].strip() for ln in lines[2:]]
    assert all(n.startswith("`") and n.endswith("`") for n in names)  # code spans
    names = [n.strip("`") for n in names]
    assert names == registry.list() == sorted(names)
    assert "| `clitest.label_scale` | conditioning | clitest | Scale features per pixel" in parts_md
    assert recipes_md.splitlines()[0] == "| recipe | plugin | description |"
    assert "| `clitest.tiny` | clitest | A tiny label-map generator. |" in recipes_md


def test_list_markdown_keeps_whole_summaries_and_escapes_pipes(registry, capsys):
    long = (
        "A recipe whose first paragraph is longer than the terminal's 120 characters, with "
        "|S| = 4 and lr 1e-4. Train with TTUR: G lr 1e-4, D lr 4e-4."
    )
    assert 120 < len(long) <= 200
    registry.add_recipe("clitest.long", TINY, description=long + "\n\nMore text.")
    code, out, _ = run(capsys, "list", "clitest.*", "--format", "markdown")
    assert code == 0
    row = next(ln for ln in out.splitlines() if ln.startswith("| `clitest.long` |"))
    assert row == "| `clitest.long` | clitest | " + long.replace("|", "\\|") + " |"
    assert row.count(" | ") == 2  # escaped pipes do not add columns
    # the plain table still cuts at the terminal width
    table = run(capsys, "list", "clitest.*")[1]
    assert "TTUR" not in table


def test_list_json(registry, capsys):
    code, out, _ = run(capsys, "list", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert [p["name"] for p in data["parts"]] == registry.list()
    part = next(p for p in data["parts"] if p["name"] == "clitest.label_scale")
    assert part == {
        "name": "clitest.label_scale",
        "kind": "conditioning",
        "plugin": "clitest",
        "summary": "Scale features per pixel from the label map.",
    }
    assert data["recipes"] == [
        {"name": "clitest.tiny", "plugin": "clitest", "description": "A tiny label-map generator."}
    ]


def test_list_kind_and_pattern(registry, capsys):
    code, out, _ = run(capsys, "list", "--kind", "conditioning")
    assert code == 0
    names = [ln.split()[0] for ln in out.splitlines()[2:] if ln.strip()]
    assert names == registry.list("conditioning")
    assert "clitest.label_scale" in names and "recipe" not in out
    data = json.loads(run(capsys, "list", "-k", "conditioning", "-f", "json")[1])
    assert "recipes" not in data
    # shell-style wildcard, and a bare word matches as a substring
    data = json.loads(run(capsys, "list", "clitest.*", "-f", "json")[1])
    assert [p["name"] for p in data["parts"]] == ["clitest.broken", "clitest.label_scale"]
    assert [r["name"] for r in data["recipes"]] == ["clitest.tiny"]
    data = json.loads(run(capsys, "list", "label_sc", "-f", "json")[1])
    assert [p["name"] for p in data["parts"]] == ["clitest.label_scale"]
    code, out, _ = run(capsys, "list", "nothing_matches_this")
    assert code == 0 and "no parts match" in out


def test_list_unknown_kind_exits_2(registry, capsys):
    code, out, err = run(capsys, "list", "--kind", "normalisation")
    assert code == 2
    assert out == ""
    assert err.startswith("synth: error: unknown kind 'normalisation'")
    for kind in synth.KINDS:
        assert kind in err


# --------------------------------------------------------------------------- info


def test_info_part(registry, capsys):
    code, out, err = run(capsys, "info", "clitest.label_scale")
    assert code == 0, err
    assert out.startswith("clitest.label_scale  (conditioning, plugin clitest)")
    assert "A second paragraph" in out  # the whole docstring
    assert "requires: label_map" in out
    assert f"class:    {LabelScale.__module__}:LabelScale" in out
    rows = {ln.split()[0]: ln for ln in out.splitlines() if ln.startswith("  ")}
    assert rows["field"].split() == ["field", "type", "default", "runtime", "description"]
    assert rows["channels"].split()[:4] == ["channels", "int", "(required)", "runtime"]
    assert rows["num_classes"].split()[:4] == ["num_classes", "int", "(required)", "runtime"]
    assert rows["hidden"].split() == ["hidden", "int", "8", "width", "of", "the", "hidden", "conv"]
    assert "runtime arguments (channels, num_classes)" in out


def test_info_core_generator_shows_slots_and_no_runtime_marker(registry, capsys):
    code, out, err = run(capsys, "info", "core.simple_generator")
    assert code == 0, err
    rows = {ln.split()[0]: ln for ln in out.splitlines() if ln.startswith("  ")}
    assert "part spec" in rows["norm"]
    # a generator is built at the top level: its num_classes is the user's, not a runtime arg
    assert "runtime" not in rows["num_classes"].split()
    assert "produces:" in out


def test_info_json_is_describe(registry, capsys):
    code, out, _ = run(capsys, "info", "clitest.label_scale", "--json")
    assert code == 0
    assert json.loads(out) == json.loads(json.dumps(synth.describe("clitest.label_scale")))


def test_info_recipe(registry, capsys):
    code, out, _ = run(capsys, "info", "clitest.tiny")
    assert code == 0
    assert "recipe, plugin clitest" in out
    assert "generator:" in out and "type: core.simple_generator" in out
    code, out, _ = run(capsys, "info", "clitest.tiny", "--json")
    assert code == 0
    assert json.loads(out)["spec"] == TINY


def test_info_unknown_name_suggests_close_match(registry, capsys):
    code, out, err = run(capsys, "info", "clitest.label_scal")
    assert code == 1
    assert out == ""
    assert err.startswith("synth: error: unknown part or recipe 'clitest.label_scal'")
    assert "'clitest.label_scale'" in err
    code, _, err = run(capsys, "info", "clitest.tinny")
    assert code == 1 and "'clitest.tiny'" in err
    code, _, err = run(capsys, "info", "cimle.noise_encoder")
    assert code == 1 and "pip install synth-plugin-cimle" in err


def test_info_broken_part(registry, capsys):
    code, _, err = run(capsys, "info", "clitest.broken")
    assert code == 1
    assert "could not be imported" in err and "synth_no_such_module_xyz" in err


# --------------------------------------------------------------------------- plugins, recipes


def test_plugins(registry, capsys):
    code, out, _ = run(capsys, "plugins")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["name", "dist", "version", "status", "error"]
    assert lines[2].split() == ["core", "synth-core", synth.__version__, "ok"]
    assert "SYNTH_STRICT_PLUGINS" not in out


def test_plugins_shows_failure_on_one_line_with_hint(registry, capsys):
    registry.plugin_infos.append(
        PluginInfo("broke", "synth-broke", "0.3", "failed", "RuntimeError: boom\n  traceback")
    )
    code, out, _ = run(capsys, "plugins")
    assert code == 0
    row = next(ln for ln in out.splitlines() if ln.startswith("broke "))
    assert row.split() == ["broke", "synth-broke", "0.3", "failed", "RuntimeError:", "boom"]
    assert "traceback" not in row
    assert "SYNTH_STRICT_PLUGINS=1" in out.splitlines()[-1]


def test_recipes(registry, capsys):
    code, out, _ = run(capsys, "recipes")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["recipe", "plugin", "generator", "description"]
    assert lines[2].split()[:3] == ["clitest.tiny", "clitest", "core.simple_generator"]
    empty = synth.Registry()
    synth.set_registry(empty)
    code, out, _ = run(capsys, "recipes")
    assert code == 0 and "no recipes registered" in out


# --------------------------------------------------------------------------- compose


def test_compose_check_good_spec_file(registry, capsys, tmp_path: Path):
    spec = tmp_path / "model.yaml"
    spec.write_text(
        "generator:\n"
        "  type: core.simple_generator\n"
        "  num_classes: 4\n"
        "  style_dim: 8\n"
        "  norm: {type: core.adain}\n"
        "injector: {type: core.gaussian}\n"
    )
    code, out, err = run(capsys, "compose", str(spec), "--check")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "ok"
    rows = [ln.split() for ln in lines[3:]]
    assert ["generator", "core.simple_generator", "generator"] in rows
    assert ["generator.norm", "core.adain", "conditioning"] in rows
    assert ["injector", "core.gaussian", "injector"] in rows
    assert "condition fields read: label_map" in out


def test_compose_check_recipe_and_build(registry, capsys):
    code, out, err = run(capsys, "compose", "clitest.tiny", "--check")
    assert code == 0, err
    assert out.startswith("ok\n")
    code, out, err = run(capsys, "compose", "clitest.tiny")
    assert code == 0, err
    assert "parameters" in out.splitlines()[1]
    gen = next(ln for ln in out.splitlines() if ln.split()[0] == "generator")
    n = int(gen.split()[-1].replace(",", ""))
    assert n == sum(p.numel() for p in synth.compose("clitest.tiny").generator.parameters())


def test_compose_check_bad_specs(registry, capsys, tmp_path: Path):
    spec = tmp_path / "bad.json"
    spec.write_text(
        json.dumps(
            {
                "generator": {
                    "type": "core.simple_generator",
                    "num_classes": 4,
                    "norm": {"type": "core.adain"},
                }
            }
        )
    )
    code, out, err = run(capsys, "compose", str(spec), "--check")
    assert code == 1
    assert out == ""
    assert err.startswith("synth: error: the model spec does not fit together")
    assert "'styles'" in err and "core.gaussian" in err

    spec.write_text(json.dumps({"generator": {"type": "core.simple_generatr"}}))
    code, _, err = run(capsys, "compose", str(spec), "--check")
    assert code == 1 and "Did you mean 'core.simple_generator'" in err

    spec.write_text(json.dumps({"generator": "core.simple_generator", "extra_key": 1}))
    code, _, err = run(capsys, "compose", str(spec), "--check")
    assert code == 1 and "extra_key" in err

    code, _, err = run(capsys, "compose", str(tmp_path / "missing.yaml"), "--check")
    assert code == 1 and "does not exist" in err

    (tmp_path / "broken.yaml").write_text("generator: {type: [unclosed\n")
    code, _, err = run(capsys, "compose", str(tmp_path / "broken.yaml"), "--check")
    assert code == 1 and err.startswith("synth: error:")


# --------------------------------------------------------------------------- misc


def test_version_help_and_demo(registry, capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"synth-core {synth.__version__}"
    code, out, _ = run(capsys)
    assert code == 0 and "usage: synth" in out
    code, _, err = run(capsys, "frobnicate")
    assert code == 2 and "invalid choice" in err
    # the demo's recipes come with the plugins (tests/hybrids/test_demo.py runs them); with
    # core alone (and a recipe without demo settings) it names every plugin to install
    code, _, err = run(capsys, "demo")
    assert code == 1 and "no installed plugin registers one" in err
    install = err[err.index("pip install ") :]
    assert "synth-plugin-clvae" in install
    assert all(dist in install for dist in synth.registry.KNOWN_PLUGINS.values())


def _console_script() -> str:
    found = shutil.which("synth", path=str(Path(sys.executable).parent))
    return (
        found or shutil.which("synth") or pytest.skip("the synth console script is not installed")
    )


def test_installed_console_script_runs():
    res = subprocess.run(
        [_console_script(), "list", "--kind", "conditioning"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SYNTH_DISABLE_PLUGINS": ""},
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0].split() == ["name", "kind", "plugin", "summary"]
    assert "core.instance_norm" in res.stdout


def test_python_dash_m_synth():
    res = subprocess.run(
        [sys.executable, "-m", "synth", "--version"], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"synth-core {synth.__version__}"


def test_strict_plugin_failure_is_an_error_line(monkeypatch, capsys):
    def strict_failure():
        raise synth.PluginError("synth plugin 'broke' (synth-broke) was skipped: boom")

    monkeypatch.setattr("synth.registry.get_registry", strict_failure)
    code, out, err = run(capsys, "list")
    assert code == 1 and out == ""
    assert err.startswith("synth: error: synth plugin 'broke'")


# --------------------------------------------------------------------------- train


@pytest.fixture
def trainer_module(monkeypatch):
    """``synth.train`` (a stub module when the real one is absent), whose ``train`` records
    its arguments and writes a small run directory."""
    try:
        import synth.train as module
    except ImportError:
        module = types.ModuleType("synth.train")

        class TrainingDiverged(FloatingPointError):
            def __init__(self, message, **kwargs):
                super().__init__(message)

        module.TrainingDiverged = TrainingDiverged
        module.train = None
        monkeypatch.setitem(sys.modules, "synth.train", module)
        monkeypatch.setattr(synth, "trainer", module, raising=False)
    calls: list[tuple] = []

    def fake_train(config, *, run_dir=None, max_steps=None, resume=True, device=None):
        calls.append((config, run_dir, max_steps, resume, device))
        out = Path(run_dir or Path(config).parent / "run")
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        (out / "log.jsonl").write_text('{"step": 1, "loss": 0.5}\n')
        return out

    monkeypatch.setattr(module, "train", fake_train)
    module.calls = calls
    return module


def test_train_calls_trainer_and_prints_outputs(registry, capsys, tmp_path, trainer_module):
    config = tmp_path / "run.yaml"
    config.write_text("model: clitest.tiny\ndata: {type: demo}\ntrain: {steps: 10}\n")
    run_dir = tmp_path / "out"
    code, out, err = run(
        capsys, "train", str(config), "--run-dir", str(run_dir), "--steps", "3", "--no-resume"
    )
    assert code == 0, err
    assert trainer_module.calls == [(config, str(run_dir), 3, False, None)]
    lines = out.splitlines()
    assert lines[0] == f"training done; outputs in {run_dir}"
    assert lines[1:] == ["  checkpoints/", "  log.jsonl"]
    code, out, err = run(capsys, "train", str(config), "--device", "cpu")
    assert code == 0, err
    assert trainer_module.calls[-1] == (config, None, None, True, "cpu")
    assert f"outputs in {tmp_path / 'run'}" in out


def test_train_a_recipe_with_its_trainer_settings_as_defaults(registry, capsys, tmp_path):
    """End to end (the real synth.train): the recipe's settings, under the file's own train
    section, under the command line's."""
    registry.add_recipe("clitest.gan", GAN, description="A tiny GAN.", train=TRAIN)
    config = tmp_path / "run.yaml"
    config.write_text(
        "model: clitest.gan\n"
        "data: {type: demo, size: 16, num_classes: 4}\n"
        "train: {batch_size: 2, device: cpu, sample_every: null, progress: false}\n"
    )
    run_dir = tmp_path / "out"
    code, out, err = run(capsys, "train", str(config), "--run-dir", str(run_dir), "--steps", "1")
    assert code == 0, err
    assert out.splitlines()[0] == f"training done; outputs in {run_dir}"
    used = json.loads((run_dir / "config.json").read_text())["train"]
    assert used["optimizer"]["lr"] == 3e-4 and used["optimizer"]["betas"] == [0.0, 0.9]
    assert used["log_every"] == 1  # the recipe's
    assert used["batch_size"] == 2  # the file's train section over the recipe's 4
    assert used["steps"] == 1 and used["run_dir"] == str(run_dir)  # the command line's


def test_train_errors(registry, capsys, tmp_path, trainer_module, monkeypatch):
    code, out, err = run(capsys, "train", str(tmp_path / "missing.yaml"))
    assert code == 1 and out == ""
    assert err.startswith("synth: error: ") and "missing.yaml: no such config file" in err
    config = tmp_path / "run.yaml"
    config.write_text("model: clitest.tiny\n")
    code, _, err = run(capsys, "train", str(config), "--steps", "0")
    assert code == 2 and "--steps 0" in err

    def raising(exc):
        def train(config, **kwargs):
            raise exc

        return train

    diverged = trainer_module.TrainingDiverged
    try:
        stop = diverged("loss 'g/gan' became NaN at step 7", step=7, loss="g/gan", checkpoint=None)
    except TypeError:  # a TrainingDiverged that takes only a message
        stop = diverged("loss 'g/gan' became NaN at step 7")
    for exc, text in [
        (synth.ConfigError("train.steps: must be positive"), "train.steps: must be positive"),
        (synth.ComposeError("the model spec does not fit together"), "does not fit together"),
        (ValueError("bad value"), "bad value"),
        (FileNotFoundError("data/ is missing"), "data/ is missing"),
        (stop, "became NaN at step 7"),
    ]:
        monkeypatch.setattr(trainer_module, "train", raising(exc))
        code, out, err = run(capsys, "train", str(config))
        assert code == 1, exc
        assert out == ""
        assert err.startswith("synth: error: ") and text in err
    monkeypatch.setattr(trainer_module, "train", raising(KeyboardInterrupt()))
    code, _, err = run(capsys, "train", str(config), "--run-dir", "x")
    assert code == 130 and "again to resume" in err and "--run-dir x" in err


# --------------------------------------------------------------------------- sample

SAMPLE_MODEL = {
    "generator": {
        "type": "core.simple_generator",
        "num_classes": 4,
        "ngf": 8,
        "num_stages": 2,
        "z_dim": 4,
    },
    "injector": {"type": "core.gaussian"},
}


@pytest.fixture
def model_dir(registry, tmp_path: Path) -> Path:
    torch.manual_seed(0)
    synth.compose(SAMPLE_MODEL).save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def label_png(path: Path, ids: np.ndarray, mode: str = "L") -> Path:
    img = Image.fromarray(ids.astype(np.uint8), "L")
    if mode == "P":
        img = img.convert("P")
        img.putpalette([v for i in range(256) for v in (i * 40 % 256, i * 90 % 256, i)])
    img.save(path)
    return path


def test_sample_from_label_map(capsys, tmp_path, model_dir):
    ids = np.zeros((32, 32), np.uint8)
    ids[:, 16:] = 1
    ids[16:] = 2
    ids[4:10, 4:10] = 3
    png = label_png(tmp_path / "labels.png", ids)
    out_dir = tmp_path / "out"
    code, out, err = run(
        capsys, "sample", str(model_dir), "--label-map", str(png), "-n", "3", "--out", str(out_dir)
    )
    assert code == 0, err
    names = ["grid.png", "sample_00_00.png", "sample_00_01.png", "sample_00_02.png"]
    assert sorted(p.name for p in out_dir.iterdir()) == names
    assert out.splitlines()[0] == "wrote 3 samples for 1 input (seed 0):"
    assert out.splitlines()[1:] == [f"  {out_dir / n}" for n in names]
    assert Image.open(out_dir / "sample_00_01.png").size == (32, 32)
    # grid: condition + 3 samples, 32 px cells magnified x2, with a header strip
    grid = Image.open(out_dir / "grid.png")
    assert grid.size[0] == 4 * 64 + 5 * 2 and grid.size[1] > 64 + 2 * 2
    # the samples are the model's: sample k of input 0, seeded by --seed 0
    model = synth.load(model_dir).eval()
    cond = synth.Condition(label_map=torch.from_numpy(ids).long()[None], num_classes=4)
    with torch.no_grad():
        image = model.sample(cond, 3, generator=torch.Generator().manual_seed(0)).image
    np.testing.assert_array_equal(
        np.asarray(Image.open(out_dir / "sample_00_02.png")), to_uint8(image[2])[0]
    )
    # a palette (P mode) PNG of ids, resized nearest to --size
    pal = label_png(tmp_path / "pal.png", ids, "P")
    code, _, err = run(
        capsys, "sample", str(model_dir), "--label-map", str(pal), "--size", "64", "64",
        "-n", "1", "--out", str(tmp_path / "big"),
    )  # fmt: skip
    assert code == 0, err
    assert Image.open(tmp_path / "big" / "sample_00_00.png").size == (64, 64)


def test_sample_seed_is_reproducible(capsys, tmp_path, model_dir):
    ids = np.random.default_rng(0).integers(0, 4, (32, 32))
    png = label_png(tmp_path / "labels.png", ids)

    def files(seed: str, out: str) -> dict[str, bytes]:
        code, _, err = run(
            capsys, "sample", str(model_dir), "--label-map", str(png), "-n", "2",
            "--seed", seed, "--out", str(tmp_path / out),
        )  # fmt: skip
        assert code == 0, err
        return {p.name: p.read_bytes() for p in sorted((tmp_path / out).iterdir())}

    first, again, other = files("7", "a"), files("7", "b"), files("8", "c")
    assert first == again
    assert first.keys() == other.keys()
    assert first["sample_00_00.png"] != other["sample_00_00.png"]
    assert first["grid.png"] != other["grid.png"]


def test_sample_from_data_set(capsys, tmp_path, model_dir, monkeypatch):
    import synth.data

    class Tiny:
        num_classes = 4

        def __len__(self):
            return 3

        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            return {
                "real": torch.rand(3, 32, 32, generator=g) * 2 - 1,
                "label_map": torch.randint(0, 4, (32, 32), generator=g),
                "index": i,
            }

    specs = []

    def build_dataset(spec):
        specs.append(spec)
        return Tiny()

    monkeypatch.setattr(synth.data, "build_dataset", build_dataset)
    out_dir = tmp_path / "out"
    code, _, err = run(
        capsys, "sample", str(model_dir), "--data", '{"type": "tiny", "size": 32}',
        "--index", "2", "--index", "0", "-n", "2", "--out", str(out_dir),
    )  # fmt: skip
    assert code == 0, err
    assert specs == [{"type": "tiny", "size": 32}]
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "grid.png",
        "sample_00_00.png",
        "sample_00_01.png",
        "sample_02_00.png",
        "sample_02_01.png",
    ]
    # grid columns: condition | real | 2 samples; rows: the two inputs
    grid = Image.open(out_dir / "grid.png")
    assert grid.size[0] == 4 * 64 + 5 * 2
    assert grid.size[1] > 2 * 64 + 3 * 2
    # a bare type name, a spec file, and errors
    code, _, err = run(capsys, "sample", str(model_dir), "--data", "tiny", "--out", str(out_dir))
    assert code == 0, err
    assert specs[-1] == {"type": "tiny"}
    spec_file = tmp_path / "data.yaml"
    spec_file.write_text("type: tiny\nroot: somewhere\n")
    code, _, err = run(
        capsys, "sample", str(model_dir), "--data", str(spec_file), "--out", str(out_dir)
    )
    assert code == 0, err
    assert specs[-1] == {"type": "tiny", "root": "somewhere"}
    code, _, err = run(capsys, "sample", str(model_dir), "--data", "tiny", "--index", "3")
    assert code == 1 and "--index 3 is out of range: the data set has 3 items (0..2)" in err
    Tiny.num_classes = 5
    code, _, err = run(capsys, "sample", str(model_dir), "--data", "tiny")
    assert code == 1 and "num_classes = 5" in err


def test_sample_errors(capsys, tmp_path, model_dir):
    ids = np.zeros((32, 32), np.uint8)
    good = label_png(tmp_path / "good.png", ids)

    def error(*argv: str, code: int = 1) -> str:
        got, out, err = run(capsys, "sample", *argv)
        assert got == code, err
        assert out == ""
        assert err.startswith("synth: error: ") or code == 2
        return err

    err = error(str(tmp_path / "nowhere"), "--label-map", str(good))
    assert "nowhere: no such model directory" in err and "save_pretrained" in err
    rgb = tmp_path / "colours.png"
    Image.fromarray(np.full((32, 32, 3), (128, 64, 128), np.uint8), "RGB").save(rgb)
    err = error(str(model_dir), "--label-map", str(rgb))
    # synth.data.load_label_map's message: the mode, what a label map holds, the conversion
    assert (
        "colours.png' is a colour image (mode RGB)" in err and "Convert its colours to ids" in err
    )
    bad = ids.copy()
    bad[0, :3] = [4, 9, 255]
    err = error(str(model_dir), "--label-map", str(label_png(tmp_path / "bad.png", bad)))
    assert "bad.png has class ids [4, 9, 255] outside [0, 4)" in err
    err = error(str(model_dir), "--label-map", str(tmp_path / "missing.png"))
    assert "missing.png: no such file" in err
    err = error(str(model_dir), code=2)
    assert "--label-map PNG" in err and "--image PNG" in err and "--data SPEC" in err
    err = error(str(model_dir), "--label-map", str(good), "--image", str(good), code=2)
    assert "not allowed with argument" in err
    err = error(str(model_dir), "--label-map", str(good), "--index", "1", code=2)
    assert "--index picks items of --data" in err
    err = error(str(model_dir), "--label-map", str(good), "--size", "30", "30")
    assert "multiples of 4" in err
    err = error(str(model_dir), "--label-map", str(good), "--num-classes", "5")
    assert "num_classes = 4" in err
    err = error(str(model_dir), "--image", str(good))
    assert "--size H W" in err
    err = error(str(model_dir), "--image", str(good), "--size", "32", "32")
    assert "label_map" in err  # this model reads a label map, not an image
    err = error(str(model_dir), "--label-map", str(good), "--sampler", "core.priorr")
    assert "core.prior" in err
    err = error(str(model_dir), "--label-map", str(good), "-n", "0", code=2)
    assert "at least one sample" in err
