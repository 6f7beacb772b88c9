"""synth.viz: palettes, label-map colours, grids, condition tiles, sample grids, loss curves."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import synth
from synth import viz as sv
from synth.nn import ops

BLUE = (31, 119, 180)  # first loss-curve line colour


def has_color(png: Path, rgb: tuple[int, int, int], tol: int = 12) -> bool:
    arr = np.asarray(Image.open(png).convert("RGB")).astype(int)
    return bool((np.abs(arr - np.array(rgb)).max(-1) <= tol).any())


# --------------------------------------------------------------------------- colours


def test_palette_distinct_deterministic_and_cityscapes_first():
    p = sv.palette(300)
    assert p.shape == (300, 3) and p.dtype == torch.uint8
    assert len({tuple(c) for c in p.tolist()}) == 300
    assert torch.equal(p, sv.palette(300))
    assert [tuple(c) for c in p[:19].tolist()] == list(sv.CITYSCAPES_COLORS)
    assert torch.equal(sv.palette(5), p[:5])
    colors = {tuple(c) for c in p.tolist()}
    assert (0, 0, 0) not in colors and (255, 255, 255) not in colors
    other = sv.palette(8, seed=3)
    assert len({tuple(c) for c in other.tolist()}) == 8
    assert torch.equal(other, sv.palette(8, seed=3)) and not torch.equal(other, sv.palette(8))
    with pytest.raises(ValueError, match="num_classes"):
        sv.palette(0)


def test_colorize_labels_matches_hand_gather():
    g = torch.Generator().manual_seed(0)
    k = 6
    lm = torch.randint(0, k, (2, 5, 7), generator=g)
    lm[0, 0, 0] = 255  # an "ignore" id: drawn black
    lm[1, 2, 3] = -1
    pal = sv.palette(k)
    out = sv.colorize_labels(lm, k)
    assert out.shape == (2, 3, 5, 7) and out.dtype == torch.float32
    expected = torch.empty(2, 3, 5, 7)
    for b in range(2):
        for y in range(5):
            for x in range(7):
                i = int(lm[b, y, x])
                rgb = pal[i].float() if 0 <= i < k else torch.zeros(3)
                expected[b, :, y, x] = rgb / 127.5 - 1
    torch.testing.assert_close(out, expected)
    # [B, 1, H, W], a single [H, W] map and a custom palette
    torch.testing.assert_close(sv.colorize_labels(lm.unsqueeze(1), k), out)
    torch.testing.assert_close(sv.colorize_labels(lm[1], k), out[1])
    custom = torch.tensor([[255, 0, 0]] * k, dtype=torch.uint8)
    red = sv.colorize_labels(torch.zeros(1, 2, 2, dtype=torch.long), k, custom)
    assert red[0, :, 0, 0].tolist() == [1.0, -1.0, -1.0]
    with pytest.raises(ValueError, match="one colour per class"):
        sv.colorize_labels(lm, k, custom[:3])
    with pytest.raises(ValueError, match="integer class ids"):
        sv.colorize_labels(lm.float(), k)


# --------------------------------------------------------------------------- images and grids


def test_to_uint8_and_save_image(tmp_path: Path):
    img = torch.tensor([-1.0, 0.0, 1.0, 3.0, float("nan")]).view(1, 1, 1, 5).expand(1, 3, 1, 5)
    arr = sv.to_uint8(img)
    assert arr.shape == (1, 1, 5, 3) and arr.dtype == np.uint8
    assert arr[0, 0, :, 0].tolist() == [0, 128, 255, 255, 128]
    x = torch.rand(3, 3, 10, 12) * 2 - 1
    one = sv.save_image(x[0], tmp_path / "a" / "one.png")
    assert Image.open(one).size == (12, 10)
    np.testing.assert_array_equal(np.asarray(Image.open(one)), sv.to_uint8(x[0])[0])
    row = sv.save_image(x, tmp_path / "row.png")
    assert Image.open(row).size == (3 * 12 + 4 * 2, 10 + 2 * 2)
    again = sv.save_image(x, tmp_path / "row2.png")
    assert row.read_bytes() == again.read_bytes()


def test_image_grid_shapes_ragged_rows_and_headers():
    a = torch.full((3, 8, 10), -1.0)
    grid = sv.image_grid([[a, a, a], [a, a, a]], pad=2)
    assert grid.shape == (3, 2 * 8 + 3 * 2, 3 * 10 + 4 * 2)
    # ragged: the missing cells are padding colour; a cell's pixels land where expected
    grid = sv.image_grid([[a, a, a], [a]], pad=2, pad_value=1.0)
    assert grid.shape == (3, 22, 38)
    assert (grid[:, 12:20, 2:12] == -1).all()  # row 1, column 0
    assert (grid[:, 12:20, 14:24] == 1).all()  # row 1, column 1 is blank
    # smaller images are centred in the largest cell
    small = torch.full((3, 4, 4), -1.0)
    grid = sv.image_grid([[a, small]], pad=0)
    assert grid.shape == (3, 8, 20)
    assert (grid[:, 2:6, 13:17] == -1).all() and (grid[:, 0:2, 10:20] == 1).all()
    # headers add a strip on top and leave the rest alone
    headed = sv.image_grid([[a, a, a], [a]], pad=2, labels=["one", "two", "a long label"])
    extra = headed.shape[1] - 22
    assert headed.shape[2] == 38 and extra > 8
    torch.testing.assert_close(headed[:, extra:], sv.image_grid([[a, a, a], [a]], pad=2))
    assert (headed[:, :extra] < 0.5).any()  # some text was drawn (dark on white)
    dark = sv.image_grid([[a]], pad=2, pad_value=-1.0, labels=["x"])
    assert (dark[:, : dark.shape[1] - 12] > 0).any()  # light text on dark padding
    grey = sv.image_grid([[torch.zeros(1, 8, 10)]])
    assert grey.shape == (3, 12, 14)
    with pytest.raises(ValueError, match="one label per column"):
        sv.image_grid([[a]], labels=["a", "b"])
    with pytest.raises(ValueError, match="no images"):
        sv.image_grid([[]])


# --------------------------------------------------------------------------- condition tiles


def test_condition_tiles_label_map_with_instance_edges():
    lm = torch.zeros(2, 16, 16, dtype=torch.long)
    lm[:, :, 8:] = 2
    inst = torch.zeros_like(lm)
    inst[:, 4:10, 4:10] = 7
    cond = synth.Condition(label_map=lm, num_classes=3, instance_map=inst)
    tiles = sv.condition_tiles(cond)
    assert tiles.shape == (2, 3, 16, 16)
    edges = ops.instance_edges(inst)[:, 0].bool()
    colours = sv.colorize_labels(lm, 3)
    torch.testing.assert_close(tiles.permute(0, 2, 3, 1)[edges], torch.ones(int(edges.sum()), 3))
    torch.testing.assert_close(
        tiles.permute(0, 2, 3, 1)[~edges], colours.permute(0, 2, 3, 1)[~edges]
    )
    plain = sv.condition_tiles(synth.Condition(label_map=lm, num_classes=3))
    torch.testing.assert_close(plain, colours)


def test_condition_tiles_lr_image_mask_and_weights():
    lr = torch.rand(2, 3, 8, 8) * 2 - 1
    tiles = sv.condition_tiles(synth.Condition(image=lr, size=(32, 32)))
    assert tiles.shape == (2, 3, 32, 32)
    torch.testing.assert_close(tiles, lr.repeat_interleave(4, -2).repeat_interleave(4, -1))
    # a masked image: known pixels as they are, unknown ones a grey checkerboard
    img = torch.rand(1, 3, 16, 16) * 2 - 1
    mask = torch.ones(1, 1, 16, 16)
    mask[..., 8:] = 0
    tiles = sv.condition_tiles(synth.Condition(image=img, mask=mask))
    torch.testing.assert_close(tiles[..., :8], img[..., :8])
    unknown = tiles[..., 8:]
    assert (unknown[:, 0] == unknown[:, 1]).all() and unknown.unique().numel() == 2
    # a mask alone: white where known
    tiles = sv.condition_tiles(synth.Condition(mask=mask))
    assert (tiles[..., :8] == 1).all() and (tiles[..., 8:] == -1).all()
    # class weights: coloured by their argmax
    w = torch.softmax(torch.randn(1, 4, 8, 8), 1)
    tiles = sv.condition_tiles(synth.Condition(class_weights=w, num_classes=4))
    torch.testing.assert_close(tiles, sv.colorize_labels(w.argmax(1), 4))
    # a class id alone: a tile in the class colour at the output size
    tiles = sv.condition_tiles(
        synth.Condition(class_id=torch.tensor([1, 2]), num_classes=3, size=(24, 40))
    )
    assert tiles.shape == (2, 3, 24, 40)
    colour = sv.palette(3)[1].float() / 127.5 - 1
    torch.testing.assert_close(tiles[0, :, 0, 0], colour)


# --------------------------------------------------------------------------- sample grids


def test_sample_grid_writes_png_of_expected_size(tmp_path: Path):
    lm = torch.randint(0, 4, (2, 32, 32))
    cond = synth.Condition(label_map=lm, num_classes=4)
    samples = torch.rand(2, 3, 3, 32, 32) * 2 - 1
    real = torch.rand(2, 3, 32, 32) * 2 - 1
    grid = sv.sample_grid(cond, samples, real=real, path=tmp_path / "g" / "grid.png")
    # 32 px cells are magnified x2 so headers fit: 5 columns (condition, real, 3 samples)
    width = 5 * 64 + 6 * 2
    body = 2 * 64 + 3 * 2
    assert grid.shape[0] == 3 and grid.shape[2] == width and grid.shape[1] > body
    header = grid.shape[1] - body
    png = Image.open(tmp_path / "g" / "grid.png")
    assert png.size == (width, grid.shape[1])
    arr = np.asarray(png)
    # the first cell is the colourised label map, magnified by 2
    cond_cell = arr[header + 2 : header + 66, 2:66]
    expected = sv.to_uint8(sv.colorize_labels(lm[:1], 4))[0]
    np.testing.assert_array_equal(cond_cell, expected.repeat(2, 0).repeat(2, 1))
    # sample k of input 1
    cell = arr[header + 68 : header + 132, 2 + 3 * 66 : 2 + 3 * 66 + 64]
    np.testing.assert_array_equal(cell, sv.to_uint8(samples[1, 1])[0].repeat(2, 0).repeat(2, 1))
    # no real, native scale
    grid = sv.sample_grid(cond, samples, scale=1)
    assert grid.shape[2] == 4 * 32 + 5 * 2
    with pytest.raises(ValueError, match="b n"):
        sv.sample_grid(cond, samples[:1])


# --------------------------------------------------------------------------- loss curves


def write_log(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_loss_curve_with_nan_entries(tmp_path: Path):
    records = []
    for s in range(0, 200, 5):
        records.append(
            {
                "step": s,
                "g/gan": 0.7 + 0.1 * math.sin(s / 10),
                "d/hinge": 1.0 - s / 400,
                "lr/g": 2e-4,
                "time/step": 0.1,
                "note": "text",
                "flag": True,
            }
        )
    records[3]["g/gan"] = float("nan")
    records[5]["d/hinge"] = float("inf")
    log = write_log(tmp_path / "log.jsonl", records)
    with log.open("a") as f:
        f.write('{"step": 999, "g/gan": 0.')  # a line cut off by a crash
    out = sv.loss_curve(log, tmp_path / "plots" / "loss.png", smooth=5)
    assert out == tmp_path / "plots" / "loss.png"
    assert Image.open(out).size == (800, 480)
    assert has_color(out, BLUE)
    series, dropped = sv._series(sv._read_log(log)[0], None)
    assert list(series) == ["g/gan", "d/hinge"] and dropped == 2
    assert len(series["g/gan"][0]) == len(records) - 1
    # asked for by name, excluded keys are drawn; records may be given directly
    series, _ = sv._series(records, ["lr/g"])
    assert list(series) == ["lr/g"]
    out = sv.loss_curve(records, tmp_path / "lr.png", keys=["lr/g"], size=(400, 300))
    assert Image.open(out).size == (400, 300) and has_color(out, BLUE)


def test_loss_curve_single_point_empty_and_all_nan(tmp_path: Path):
    one = sv.loss_curve([{"step": 5, "loss": 0.3}], tmp_path / "one.png")
    assert has_color(one, BLUE)
    (tmp_path / "empty.jsonl").write_text("")
    empty = sv.loss_curve(tmp_path / "empty.jsonl", tmp_path / "empty.png")
    assert Image.open(empty).size == (800, 480) and not has_color(empty, BLUE)
    nan = sv.loss_curve([{"step": 1, "loss": float("nan")}], tmp_path / "nan.png")
    assert not has_color(nan, BLUE)
    only_lr = sv.loss_curve([{"step": 1, "lr/g": 0.1}], tmp_path / "lr.png")
    assert not has_color(only_lr, BLUE)
    with pytest.raises(FileNotFoundError):
        sv.loss_curve(tmp_path / "missing.jsonl", tmp_path / "x.png")


def test_loss_curve_log_scale_and_repeated_steps(tmp_path: Path):
    records = [{"step": s, "loss": 10 * math.exp(-s / 10) + 1e-4} for s in range(100)]
    records += [{"step": 50, "loss": 123.0}]  # a step logged again after a resume: last wins
    series, _ = sv._series(records, None)
    steps, values = series["loss"]
    assert len(steps) == 100 and values[50] == 123.0 and (np.diff(steps) > 0).all()
    auto = sv.loss_curve(records, tmp_path / "auto.png")
    linear = sv.loss_curve(records, tmp_path / "lin.png", log_scale=False)
    assert auto.read_bytes() != linear.read_bytes()
    with_zero = [*records, {"step": 200, "loss": 0.0}]
    out = sv.loss_curve(with_zero, tmp_path / "forced.png", log_scale=True)
    assert has_color(out, BLUE)
    assert sv.loss_curve(records, tmp_path / "a2.png").read_bytes() == auto.read_bytes()


ORANGE = (255, 127, 14)  # second loss-curve line colour


def test_image_grid_is_torchvision_make_grid():
    from torchvision.utils import make_grid

    x = torch.rand(5, 3, 8, 10) * 2 - 1
    grid = sv.image_grid([list(x[:3]), list(x[3:])], pad=3, pad_value=-1.0)
    blank = torch.full((3, 8, 10), -1.0)
    expected = make_grid([*x, blank], nrow=3, padding=3, pad_value=-1.0)
    torch.testing.assert_close(grid, expected)


def test_loss_curve_series_colours_and_smoothing(tmp_path: Path):
    records = [
        {"step": s, "g/gan": 0.7 + 0.3 * math.sin(s), "d/hinge": 1.0 - s / 400} for s in range(200)
    ]
    out = sv.loss_curve(records, tmp_path / "two.png")
    assert has_color(out, BLUE) and has_color(out, ORANGE)
    smooth = sv.loss_curve(records, tmp_path / "smooth.png", smooth=25)
    assert smooth.read_bytes() != out.read_bytes()
    np.testing.assert_allclose(sv._moving_average(np.arange(5.0), 2), [0, 0.5, 1.5, 2.5, 3.5])


CHART_SCRIPT = """
import sys
import matplotlib

def use(*args, **kwargs):
    raise AssertionError("synth called matplotlib.use(): the backend is the user's choice")

matplotlib.use = use
import synth.viz as sv
sv.loss_curve([{"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.25}], sys.argv[1])
assert "matplotlib.pyplot" not in sys.modules, "loss_curve used pyplot"
print("ok")
"""


def test_loss_curve_draws_on_its_own_agg_canvas(tmp_path: Path):
    """No pyplot global state and no matplotlib.use(): a user's backend is left alone."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", CHART_SCRIPT, str(tmp_path / "c.png")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]
    assert Image.open(tmp_path / "c.png").size == (800, 480)
