"""Regenerate README.md's table of registered parts (`make readme-table`).

The block between the two marker comments is the output of ``synth list --format markdown``
for core and the three plugins of this repository, loaded through their entry points (the
real plugin registry, not a test registry). Other installed plugins are left out.

    python tools/readme_table.py           # rewrite the block in README.md
    python tools/readme_table.py --check   # exit 1 when the block is out of date

tests/core/test_readme_table.py imports this file and checks the block.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata as md
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN = "<!-- synth list --format markdown: begin -->"
END = "<!-- synth list --format markdown: end -->"
#: entry-point name -> import package of the plugins the table lists (besides core)
PLUGINS = {
    "pix2pixhd": "synth_pix2pixhd",
    "clvae": "synth_clvae",
    "cimle": "synth_cimle",
    "nested_scale": "synth_nested_scale",
}
COMMAND = "make readme-table (or: python tools/readme_table.py)"


@contextlib.contextmanager
def _env(name: str, value: str | None) -> Iterator[None]:
    old = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def render() -> str:
    """``synth list --format markdown`` with core and :data:`PLUGINS` discovered from their
    entry points; raises ``RuntimeError`` when one of them is missing or fails to load."""
    import synth
    from synth.cli import main
    from synth.registry import ENTRY_POINT_GROUP, discover

    others = sorted(
        {ep.name for ep in md.entry_points(group=ENTRY_POINT_GROUP)} - {"core", *PLUGINS}
    )
    reg = synth.Registry()
    with _env("SYNTH_DISABLE_PLUGINS", ",".join(others) or None):
        discover(reg)
    status = {i.name: i for i in reg.plugin_infos}
    for name in PLUGINS:
        info = status.get(name)
        if info is None or info.status != "ok":
            why = "not installed" if info is None else f"{info.status}: {info.error}"
            raise RuntimeError(f"plugin {name!r} is needed for the README table ({why})")
    old = synth.set_registry(reg)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            code = main(["list", "--format", "markdown"])
    finally:
        synth.set_registry(old)
    if code != 0:
        raise RuntimeError(f"synth list --format markdown exited with {code}")
    return out.getvalue()


def block(text: str) -> str:
    """What README ``text`` holds between the markers (markers excluded)."""
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ValueError(f"README.md must hold {BEGIN!r} and {END!r} once each")
    start = text.index(BEGIN) + len(BEGIN)
    end = text.index(END)
    if end < start:
        raise ValueError(f"{END!r} comes before {BEGIN!r} in README.md")
    return text[start:end]


def expected_block(table: str) -> str:
    """The text between the markers for ``table`` (blank lines around it, so it is a table)."""
    return "\n\n" + table.strip("\n") + "\n\n"


def splice(text: str, table: str) -> str:
    old = block(text)
    start = text.index(BEGIN) + len(BEGIN)
    return text[:start] + expected_block(table) + text[start + len(old) :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the block is stale")
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    new = splice(text, render())
    if args.check:
        if new != text:
            print(f"{args.readme}: the parts table is out of date; run {COMMAND}")
            return 1
        return 0
    if new != text:
        args.readme.write_text(new)
        print(f"updated the parts table in {args.readme}")
    else:
        print(f"the parts table in {args.readme} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
