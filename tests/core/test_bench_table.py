"""README.md's performance table is generated from a bench/run_all.py JSON
(``tools/bench_table.py``): each row's reference, ratio, ceiling and target (issue 18)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location("bench_table", ROOT / "tools" / "bench_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _tool()

DOC = {
    "date": "2026-11-26",
    "sizes": "paper",
    "machine": {"torch_threads": 2, "load_avg": [0.1, 0.2, 0.3]},
    "rows": [
        {
            "name": "pix2pixhd: encoder E + instance pooling",
            "setting": "1x3x512x1024, 512 instances",
            "reference": "official code: NVIDIA/pix2pixHD @ 14b3b3c7fff413086e (/src/pix2pixHD)",
            "ratio": 2.4,
            "ceiling": 2.8,
            "target": 2.5,
        },
        {"name": "cimle: selection", "setting": "4 x 100", "ratio": 1.3},
    ],
}


def test_rows_name_their_reference_ratio_ceiling_and_target():
    block = tool.render(DOC, "bench/results/x.json")
    enc, cimle = block.splitlines()[-2:]
    assert "authors' code (NVIDIA/pix2pixHD @ 14b3b3c7fff4)" in enc
    assert "2.40× (ceiling 2.80×)" in enc and "≥ 2.5×" in enc and enc.endswith("**no** |")
    assert "re-implementation" in cimle and "≥ 1×" in cimle and cimle.endswith("yes |")
    assert "paper sizes" in block and "bench/results/x.json" in block


def test_block_replaced_between_the_markers_only():
    readme = f"intro\n{tool.BEGIN}\nold table\n{tool.END}\noutro\n"
    new = tool.updated(readme, "NEW")
    assert new == f"intro\n{tool.BEGIN}\nNEW\n{tool.END}\noutro\n"
    with pytest.raises(ValueError, match="markers"):
        tool.updated("no markers here", "NEW")


def test_readme_has_the_markers():
    text = (ROOT / "README.md").read_text()
    assert tool.BEGIN in text and tool.END in text
