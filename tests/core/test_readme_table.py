"""README.md's "Registered parts" block is what ``synth list --format markdown`` prints for core
and the plugins (regenerate it with ``make readme-table``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location(
        "readme_table", ROOT / "tools" / "readme_table.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _tool()


@pytest.fixture
def all_plugins():
    missing = [pkg for pkg in tool.PLUGINS.values() if importlib.util.find_spec(pkg) is None]
    if missing:
        pytest.skip(f"the README table lists every plugin; not installed: {', '.join(missing)}")


def test_readme_parts_table_is_current(all_plugins):
    table = tool.render()
    names = [ln.split("|")[1].strip() for ln in table.splitlines() if ln.startswith("| `")]
    assert {n.strip("`").split(".")[0] for n in names} == {"core", *tool.PLUGINS}
    assert tool.block(tool.README.read_text()) == tool.expected_block(table), (
        f"README.md's parts table differs from `synth list --format markdown`; regenerate it "
        f"with {tool.COMMAND}"
    )


def test_render_uses_the_installed_plugins_not_a_test_registry(all_plugins, synth_registry):
    # a test's registry (core only) is active: the table still lists the plugins, and the
    # test's registry is back afterwards
    import synth

    table = tool.render()
    assert "`pix2pixhd.global_generator`" in table and "`clvae.ade20k`" in table
    assert synth.get_registry() is synth_registry


def test_splice_replaces_only_the_block():
    text = f"intro\n{tool.BEGIN}\nold\n{tool.END}\noutro\n"
    new = tool.splice(text, "| a |\n|---|\n")
    assert new == f"intro\n{tool.BEGIN}\n\n| a |\n|---|\n\n{tool.END}\noutro\n"
    assert tool.splice(new, "| a |\n|---|\n") == new
    with pytest.raises(ValueError, match="once each"):
        tool.block("no markers")
