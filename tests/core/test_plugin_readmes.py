"""The plugins' READMEs run as written: every ```python block marked
``<!-- readme-test: run -->`` (as in the root README, tests/core/test_readme.py) is executed in
a fresh folder with downloads off, in order, sharing nothing but that folder. A block marked
``<!-- readme-test: fragment WHY -->`` (it needs what only a real run makes, e.g. a trained
model folder) is compiled, not run; every block carries one of the two markers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_MARKED = re.compile(
    r"<!-- readme-test: (?P<what>[^>]*?) -->[ \t]*\n```python[^\n]*\n(?P<code>.*?)\n```", re.S
)
_PLUGINS = {"plugins-cimle": "synth_cimle"}


def _blocks(readme: Path, what: str | None = None) -> list[tuple[int, str]]:
    text = readme.read_text()
    out = []
    for m in _MARKED.finditer(text):
        kind = m["what"].split()[0]
        assert kind in ("run", "fragment"), f"{readme}: unknown readme-test marker {m['what']!r}"
        if kind == "fragment":
            assert len(m["what"].split()) > 1, f"{readme}: a fragment marker says why"
        if what is None or kind == what:
            out.append((text.count("\n", 0, m.start("code")) + 1, m["code"] + "\n"))
    return out


@pytest.mark.parametrize("package", sorted(_PLUGINS))
def test_every_python_block_is_marked(package):
    readme = ROOT / "packages" / package / "README.md"
    fences = len(re.findall(r"^```python\s*$", readme.read_text(), re.M))
    assert fences == len(_blocks(readme)) >= 1, f"{readme}: mark each ```python block"
    assert _blocks(readme, "run"), f"{readme}: no runnable example"
    for line, code in _blocks(readme, "fragment"):
        compile(code, f"{readme}:{line}", "exec")


@pytest.mark.slow
@pytest.mark.parametrize("package", sorted(_PLUGINS))
def test_readme_blocks_run(package, tmp_path, monkeypatch):
    pytest.importorskip(_PLUGINS[package])
    readme = ROOT / "packages" / package / "README.md"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYNTH_OFFLINE", "1")
    monkeypatch.setenv("SYNTH_HOME", str(tmp_path / "home"))  # no weights, no cached scores
    for line, code in _blocks(readme, "run"):
        exec(compile(code, f"{readme}:{line}", "exec"), {"__name__": "__readme__"})
