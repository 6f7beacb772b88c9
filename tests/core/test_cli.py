"""The ``synth`` command line: list, info, plugins, recipes, compose --check, demo, --version."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import Field
from torch import Tensor, nn

import synth
from synth.cli import format_markdown, format_table, main, summary_line
from synth.plugins import PluginInfo, discover


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


def test_summary_line():
    assert summary_line("First line.\n\n    Body.") == "First line."
    assert summary_line("Wrapped first\n    sentence.\n\n    Body.") == "Wrapped first sentence."
    long = "A first sentence. " + "Xy " * 100
    assert summary_line(long) == "A first sentence."
    assert summary_line(None) == ""
    assert summary_line("y" * 300).endswith("...")


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
    assert names == registry.list() == sorted(names)
    assert "| clitest.label_scale | conditioning | clitest | Scale features per pixel" in parts_md
    assert recipes_md.splitlines()[0] == "| recipe | plugin | description |"
    assert "| clitest.tiny | clitest | A tiny label-map generator. |" in recipes_md


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
    code, out, _ = run(capsys, "demo")
    assert code == 0
    assert "core.simple_generator" in out and "clitest.tiny" in out
    assert "arrives with the plugins" in out


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
