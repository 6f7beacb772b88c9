"""The plugins' READMEs run as written: every ```python block marked
``<!-- readme-test: run -->`` (as in the root README, tests/core/test_readme.py) is executed in
a fresh folder with downloads off, in order, sharing nothing but that folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_MARKED = re.compile(
    r"<!-- readme-test: (?P<what>[^>]*?) -->[ \t]*\n```python[^\n]*\n(?P<code>.*?)\n```", re.S
)
_PLUGINS = {"plugins-cimle": "synth_cimle"}


def _blocks(readme: Path) -> list[tuple[int, str]]:
    text = readme.read_text()
    out = []
    for m in _MARKED.finditer(text):
        assert m["what"].strip() == "run", f"{readme}: unknown readme-test marker {m['what']!r}"
        out.append((text.count("\n", 0, m.start("code")) + 1, m["code"] + "\n"))
    return out


@pytest.mark.parametrize("package", sorted(_PLUGINS))
def test_every_python_block_is_marked(package):
    readme = ROOT / "packages" / package / "README.md"
    fences = len(re.findall(r"^```python\s*$", readme.read_text(), re.M))
    assert fences == len(_blocks(readme)) >= 1, f"{readme}: mark each ```python block"


@pytest.mark.slow
@pytest.mark.parametrize("package", sorted(_PLUGINS))
def test_readme_blocks_run(package, tmp_path, monkeypatch):
    pytest.importorskip(_PLUGINS[package])
    readme = ROOT / "packages" / package / "README.md"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYNTH_OFFLINE", "1")
    monkeypatch.setenv("SYNTH_HOME", str(tmp_path / "home"))  # no weights, no cached scores
    for line, code in _blocks(readme):
        exec(compile(code, f"{readme}:{line}", "exec"), {"__name__": "__readme__"})
