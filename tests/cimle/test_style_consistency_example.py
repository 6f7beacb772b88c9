"""examples/cimle_style_consistency.py (cIMLE Fig. 12) at a tiny size: the grid's layout, and
that each row really reuses one code across layouts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import synth
import synth.viz
from synth_cimle.injectors import NOISE_KEY

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "cimle_style_consistency.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("cimle_style_consistency", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_style_consistency_grid(tmp_path):
    script = _load_script()
    size, n, m, pad = 32, 2, 2, 2
    out = tmp_path / "grid.png"
    res = script.main(
        ["--size", str(size), "--codes", str(n), "--layouts", str(m), "--out", str(out)]
    )
    assert res["path"] == out and out.is_file()
    images, codes, model, layouts = res["images"], res["codes"], res["model"], res["layouts"]
    assert images.shape == (n, m, 3, size, size)
    assert codes.shape[0] == n

    # header row of layouts + one row per code, one column per layout
    png = np.asarray(Image.open(out).convert("RGB"))
    assert png.shape == ((n + 1) * size + (n + 2) * pad, m * size + (m + 1) * pad, 3)
    pixels = synth.viz.to_uint8(images.flatten(0, 1)).reshape(n, m, size, size, 3)
    tiles = synth.viz.to_uint8(synth.viz.condition_tiles(layouts))
    for j in range(m):
        x = pad + j * (size + pad)
        assert png[pad : pad + size, x : x + size].any()  # the header tile is drawn
        assert tiles[j].std() > 0  # a real layout, not one flat class
        for i in range(n):
            y = pad + (i + 1) * (size + pad)
            np.testing.assert_array_equal(png[y : y + size, x : x + size], pixels[i, j])

    def differ(a, b):
        return (a - b).abs().max() > 1e-3

    for i in range(n):  # same code, different layouts
        assert differ(images[i, 0], images[i, 1])
    for j in range(m):  # same layout, different codes
        assert differ(images[0, j], images[1, j])

    # one code twice -> identical rows: render reuses the given z̃, it draws nothing new
    twice = script.render(model, layouts, torch.cat([codes[:1], codes[:1]]))
    np.testing.assert_array_equal(synth.viz.to_uint8(twice[0]), synth.viz.to_uint8(twice[1]))
    torch.testing.assert_close(twice[0], images[0], atol=1e-5, rtol=0)

    # each batched cell (i, j) is code i's z̃ encoded with layout j alone
    for i in range(n):
        for j in range(m):
            cond = synth.Condition(
                label_map=layouts.label_map[j : j + 1], num_classes=layouts.num_classes
            )
            raw = synth.Latents(extras={NOISE_KEY: codes[i : i + 1]})
            with torch.no_grad():
                alone = model.generate(cond, model.injector.from_codes(cond, raw)).image[0]
            torch.testing.assert_close(alone, images[i, j], atol=1e-5, rtol=0)
