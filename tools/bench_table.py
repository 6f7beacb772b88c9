"""Regenerate README.md's performance table from the newest benchmark JSON (issue 18).

The block between the two marker comments lists every comparison row of
``bench/results/latest-cpu-paper.json`` (``bench/run_all.py --paper-sizes``), or of
``latest-cpu.json`` (the quick ``make bench``) when there is no paper-size run: what was
timed, against which code (the authors' own, at a commit, or the re-implementation of their
layout), the ratio, the ceiling where shared work caps it, and the row's target (``target``
in the row; else 1, the no-regression rule).

    python tools/bench_table.py                 # rewrite the block in README.md
    python tools/bench_table.py --check         # exit 1 when the block is out of date
    python tools/bench_table.py --json bench/results/2026-11-26-cpu-paper.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "bench" / "results"
BEGIN = "<!-- bench table (tools/bench_table.py): begin -->"
END = "<!-- bench table (tools/bench_table.py): end -->"


def newest_json() -> Path:
    """``latest-cpu-paper.json`` if a paper-size run wrote one, else ``latest-cpu.json``."""
    for name in ("latest-cpu-paper.json", "latest-cpu.json"):
        if (RESULTS / name).is_file():
            return RESULTS / name
    raise FileNotFoundError(
        f"no latest-cpu-paper.json or latest-cpu.json in {RESULTS}: run bench/run_all.py first"
    )


def reference_text(row: dict[str, object]) -> str:
    """``authors' code (NVIDIA/pix2pixHD @ 14b3b3c7fff4)`` or ``re-implementation``."""
    ref = str(row.get("reference", ""))
    if ref.startswith("official code: "):
        repo, _, rest = ref[len("official code: ") :].partition(" @ ")
        return f"authors' code ({repo} @ {rest.split()[0][:12]})"
    return "re-implementation"


def render(doc: dict[str, object], source: str) -> str:
    """The markdown block (without the markers) for one run_all JSON document."""
    m = doc["machine"]
    lines = [
        f"Ratios = reference time / ours (> 1: ours is faster), medians of interleaved runs, "
        f"{m['torch_threads']} threads, fp32, {doc.get('sizes', 'quick')} sizes, "
        f"{doc['date']}, load average {m['load_avg']} at start, "
        f"OMP_WAIT_POLICY {doc.get('omp_wait_policy', '(not recorded)')}; from `{source}`.",
        "",
        "| comparison | setting | reference | ratio | target | met |",
        "|---|---|---|---:|---:|:---:|",
    ]
    for r in doc["rows"]:
        ratio = f"{r['ratio']:.2f}×"
        if "ceiling" in r:
            ratio += f" (ceiling {r['ceiling']:.2f}×)"
        target = float(r.get("target", 1.0))
        met = "yes" if r["ratio"] >= target else "**no**"
        lines.append(
            f"| {r['name']} | {r['setting']} | {reference_text(r)} | {ratio} | "
            f"≥ {target:g}× | {met} |"
        )
    return "\n".join(lines)


def updated(readme: str, block: str) -> str:
    if BEGIN not in readme or END not in readme:
        raise ValueError(f"README.md lacks the markers {BEGIN!r} ... {END!r}")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{block}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=None, help="a run_all JSON (default: newest)")
    ap.add_argument("--check", action="store_true", help="exit 1 when README.md is out of date")
    args = ap.parse_args(argv)
    path = (args.json or newest_json()).resolve()
    doc = json.loads(path.read_text())
    source = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
    text = README.read_text()
    new = updated(text, render(doc, source))
    if args.check:
        if new != text:
            print("README.md's bench table is out of date: python tools/bench_table.py")
            return 1
        return 0
    README.write_text(new)
    print(f"README.md: bench table from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
