"""Pictures people would rather look at than read: label maps, sample grids, loss curves, the
disentanglement curve and models side by side.

Grids are :func:`torchvision.utils.make_grid`, written as PNG with Pillow (both required: a
training run writes sample grids); column headers and class tiles use PIL's default font. Loss
curves are matplotlib charts (the ``[viz]`` extra), drawn with its object API on the Agg canvas,
never through pyplot's global state. Everything works on CPU tensors; inputs on other devices
or in other float dtypes are moved and cast first. Images are ``float`` tensors in ``[-1, 1]``
(the library's convention) until they are written.

>>> import synth.viz as sv
>>> tiles = sv.condition_tiles(cond)                                  # doctest: +SKIP
>>> sv.sample_grid(cond, samples, real=batch.real, path="grid.png")  # doctest: +SKIP
>>> sv.loss_curve("runs/x/log.jsonl", "runs/x/loss.png", smooth=20)  # doctest: +SKIP
>>> sv.disentanglement_curve({"ours": [0.3, 0.1, 0.02]}, "curve.png")  # doctest: +SKIP
>>> sv.comparison_figure({"a": samples_a, "b": samples_b}, "compare.png")  # doctest: +SKIP
"""

from __future__ import annotations

import colorsys
import functools
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor
from torchvision.utils import make_grid

from .condition import Condition
from .extras import require
from .nn import ops

__all__ = [
    "CITYSCAPES_COLORS",
    "LOSS_CURVE_EXCLUDE",
    "colorize_labels",
    "comparison_figure",
    "condition_tiles",
    "disentanglement_curve",
    "image_grid",
    "loss_curve",
    "palette",
    "sample_grid",
    "save_image",
    "save_label_map",
    "to_uint8",
]

#: The Cityscapes colours of its 19 training classes (road, sidewalk, building, ... bicycle), in
#: train-id order: the first colours of :func:`palette` (seed 0), so Cityscapes maps look familiar.
CITYSCAPES_COLORS: tuple[tuple[int, int, int], ...] = (
    (128, 64, 128),
    (244, 35, 232),
    (70, 70, 70),
    (102, 102, 156),
    (190, 153, 153),
    (153, 153, 153),
    (250, 170, 30),
    (220, 220, 0),
    (107, 142, 35),
    (152, 251, 152),
    (70, 130, 180),
    (220, 20, 60),
    (255, 0, 0),
    (0, 0, 142),
    (0, 0, 70),
    (0, 60, 100),
    (0, 80, 100),
    (0, 0, 230),
    (119, 11, 32),
)

#: Log entries :func:`loss_curve` leaves out unless asked for by name: ``step`` and anything
#: whose first ``/``-separated component is one of these (learning rates, timings, epochs, memory).
LOSS_CURVE_EXCLUDE: frozenset[str] = frozenset({"step", "lr", "time", "epoch", "mem", "memory"})

_GOLDEN = 0.6180339887498949


# --------------------------------------------------------------------------- colours


@functools.lru_cache(maxsize=64)
def _palette(num_classes: int, seed: int) -> tuple[tuple[int, int, int], ...]:
    colors: list[tuple[int, int, int]] = []
    seen: set[tuple[int, int, int]] = {(0, 0, 0), (255, 255, 255)}  # out-of-range ids, edges
    if seed == 0:
        for c in CITYSCAPES_COLORS[:num_classes]:
            colors.append(c)
            seen.add(c)
        hue0 = 0.11
    else:
        hue0 = float(torch.rand(1, generator=torch.Generator().manual_seed(seed)))
    i = 0
    while len(colors) < num_classes:
        hue = (hue0 + i * _GOLDEN) % 1.0
        sat = 0.85 if (i // 3) % 2 == 0 else 0.55
        val = (0.95, 0.78, 0.6)[(i // 2) % 3]
        rgb = tuple(round(255 * v) for v in colorsys.hsv_to_rgb(hue, sat, val))
        i += 1
        if rgb not in seen:
            seen.add(rgb)  # type: ignore[arg-type]
            colors.append(rgb)  # type: ignore[arg-type]
    return tuple(colors)


def palette(num_classes: int, seed: int = 0) -> Tensor:
    """``num_classes`` distinct colours: ``uint8 Tensor[K, 3]``.

    With ``seed=0`` the first 19 are the Cityscapes class colours (:data:`CITYSCAPES_COLORS`) and
    the rest a golden-ratio spread of hues over a few saturation/brightness levels; another seed
    gives a different (deterministic) spread. No colour is black or white: black marks ids
    outside ``[0, K)`` in :func:`colorize_labels`, white marks instance edges.
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"palette: num_classes = {num_classes!r}; give a positive int")
    return torch.tensor(_palette(num_classes, int(seed)), dtype=torch.uint8)


def _as_palette(pal: Any, num_classes: int) -> Tensor:
    if pal is None:
        return palette(num_classes)
    t = torch.as_tensor(pal)
    if t.dim() != 2 or t.shape[1] != 3:
        raise ValueError(f"palette has shape {tuple(t.shape)}: expected [K, 3] RGB colours")
    if t.shape[0] < num_classes:
        raise ValueError(
            f"palette has {t.shape[0]} colours but num_classes = {num_classes}: give one colour "
            "per class (synth.viz.palette(num_classes) makes them)"
        )
    if t.is_floating_point() and float(t.max()) <= 1.0:
        t = t * 255  # colours given in [0, 1]
    return t[:num_classes].round().clamp(0, 255).to(torch.uint8)


def colorize_labels(label_map: Tensor, num_classes: int, palette: Any = None) -> Tensor:
    """A label map as a colour image: ``float [B, 3, H, W]`` in ``[-1, 1]``.

    Args:
        label_map: ``LongTensor[B, H, W]`` (or ``[B, 1, H, W]``, or one ``[H, W]`` map, which
            gives ``[3, H, W]``) of class ids.
        num_classes: K.
        palette: ``uint8 [>=K, 3]`` colours (default :func:`palette` ``(K)``).

    One gather, no loops. Ids outside ``[0, K)`` (e.g. an "ignore" id 255) are drawn black.
    """
    if label_map.is_floating_point() or label_map.is_complex():
        raise ValueError(
            f"colorize_labels: label_map has dtype {label_map.dtype}; give integer class ids"
        )
    single = label_map.dim() == 2
    lm = label_map.unsqueeze(0) if single else label_map
    if lm.dim() == 4 and lm.shape[1] == 1:
        lm = lm[:, 0]
    if lm.dim() != 3:
        raise ValueError(
            f"colorize_labels: label_map has shape {tuple(label_map.shape)}; expected [B, H, W]"
        )
    pal = _as_palette(palette, num_classes).to(lm.device, torch.float32) / 127.5 - 1
    table = torch.cat([pal, pal.new_full((1, 3), -1.0)])  # row K: black for bad ids
    lm = lm.long()
    idx = torch.where((lm >= 0) & (lm < num_classes), lm, torch.full_like(lm, num_classes))
    out = table[idx].permute(0, 3, 1, 2).contiguous()
    return out[0] if single else out


# --------------------------------------------------------------------------- images


def _rgb(image: Tensor) -> Tensor:
    """``[B, 3, H, W]`` float32 CPU from ``[3|1, H, W]`` / ``[B, 3|1, H, W]``."""
    t = image.detach()
    if t.dim() == 3:
        t = t.unsqueeze(0)
    if t.dim() != 4 or t.shape[1] not in (1, 3, 4):
        raise ValueError(
            f"expected an image [3, H, W] or a batch [B, 3, H, W], got shape {tuple(image.shape)}"
        )
    if t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    elif t.shape[1] == 4:  # drop alpha
        t = t[:, :3]
    if t.dtype == torch.uint8:
        t = t.float() / 127.5 - 1
    return t.float().cpu()


def to_uint8(images: Tensor) -> np.ndarray:
    """``[B, 3, H, W]`` (or ``[3, H, W]``) in ``[-1, 1]`` → ``uint8`` numpy ``[B, H, W, 3]``.

    Values are clamped to ``[-1, 1]`` and NaN drawn mid-grey; rounding is to the nearest level.
    """
    t = torch.nan_to_num(_rgb(images), nan=0.0).clamp(-1, 1)
    return ((t + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def _from_pil(img: Image.Image) -> Tensor:
    arr = np.asarray(img.convert("RGB"), dtype=np.float32)
    return torch.from_numpy(arr).permute(2, 0, 1) / 127.5 - 1


def save_image(image: Tensor, path: str | os.PathLike, pad: int = 2) -> Path:
    """Write an image ``[3, H, W]`` in ``[-1, 1]`` as a PNG (or the format ``path`` names).

    A batch ``[B, 3, H, W]`` is written as one row (see :func:`image_grid`). Parent folders are
    made; the same tensor always gives the same bytes.
    """
    batch = _rgb(image)
    single = batch[0] if batch.shape[0] == 1 else image_grid([list(batch)], pad=pad)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(single)[0], "RGB").save(path)
    return path


def save_label_map(
    label_map: Tensor, path: str | os.PathLike, num_classes: int, palette: Any = None
) -> Path:
    """Write class ids ``[H, W]`` as an indexed (``"P"`` mode) PNG whose palette is the grids'
    colours (:func:`palette` ``(num_classes)``, or ``palette``).

    The pixel values stay the ids (:func:`synth.data.transforms.load_label_map` and ``synth
    sample --label-map`` read them back unchanged) while an image viewer shows the colours
    of :func:`sample_grid`, not ids 0..K-1 as near-black greys. Ids must fit the 256 entries
    of a PNG palette.
    """
    ids = torch.as_tensor(label_map).detach().cpu()
    if ids.dim() == 3 and ids.shape[0] == 1:
        ids = ids[0]
    if ids.dim() != 2 or ids.is_floating_point():
        raise ValueError(
            f"save_label_map: label_map has shape {tuple(ids.shape)} ({ids.dtype}): give integer "
            "class ids [H, W] (label_map.argmax(0) for a one-hot [K, H, W] map)"
        )
    top = int(ids.max()) if ids.numel() else 0
    if ids.numel() and int(ids.min()) < 0:
        raise ValueError(f"save_label_map: negative ids ({int(ids.min())}); ids are 0..K-1")
    if top >= num_classes:
        raise ValueError(
            f"save_label_map: id {top} but num_classes = {num_classes}; ids are 0..K-1 (raise "
            "num_classes)"
        )
    if num_classes > 256:
        raise ValueError(
            f"save_label_map: id {top} (num_classes = {num_classes}) does not fit a PNG palette "
            "of 256 entries; write ids >= 256 as a 16-bit grayscale PNG instead "
            "(PIL.Image.fromarray(ids.astype(np.uint16)))"
        )
    colors = _as_palette(palette, num_classes).to(torch.uint8).numpy()
    img = Image.fromarray(ids.to(torch.uint8).numpy())  # "L"; a palette makes it "P"
    img.putpalette(colors.reshape(-1).tolist())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """PIL's default font at ``size`` px (the bitmap default on Pillow < 10.1)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, AttributeError, OSError):  # pragma: no cover - old Pillow / no FreeType
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    """``text``, cut with an ellipsis so it is at most ``width`` px wide."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…" if text else ""


def _cells(rows: Sequence[Sequence[Tensor]], pad_value: float) -> tuple[Tensor, int]:
    """Every cell of the grid, row by row, as one batch ``[R·C, 3, h, w]`` of the largest size
    (smaller images centred, missing cells blank), and the number of columns ``C``."""
    cells = [[_rgb(im)[0] for im in row] for row in rows]
    flat = [c for row in cells for c in row]
    if not flat:
        raise ValueError("image_grid: no images; give a list of rows of [3, H, W] tensors")
    h = max(c.shape[1] for c in flat)
    w = max(c.shape[2] for c in flat)
    n_cols = max(len(row) for row in cells)
    blank = torch.full((3, h, w), float(pad_value))

    def centred(c: Tensor) -> Tensor:
        top, left = (h - c.shape[1]) // 2, (w - c.shape[2]) // 2
        border = (left, w - c.shape[2] - left, top, h - c.shape[1] - top)
        return F.pad(c, border, value=float(pad_value))

    grid = [centred(c) for row in cells for c in (*row, *[blank] * (n_cols - len(row)))]
    return torch.stack(grid), n_cols


def image_grid(
    rows: Sequence[Sequence[Tensor]],
    pad: int = 2,
    pad_value: float = 1.0,
    labels: Sequence[str] | None = None,
) -> Tensor:
    """Images laid out in a grid (:func:`torchvision.utils.make_grid`): ``[3, H', W']`` in
    ``[-1, 1]``.

    Args:
        rows: a list of rows, each a list of images ``[3, H, W]`` (or ``[1, H, W]``) in
            ``[-1, 1]``. Rows may have different lengths (missing cells are left blank); images
            of different sizes are centred in cells of the largest size.
        pad: pixels between cells and around the border.
        pad_value: the colour of the padding, in ``[-1, 1]`` (1 = white).
        labels: optional column headers, drawn above the columns with PIL's default font (cut
            with "…" when wider than a cell).

    ``H' = header + n_rows·H + (n_rows + 1)·pad`` and ``W' = n_cols·W + (n_cols + 1)·pad``.
    """
    cells, n_cols = _cells(rows, pad_value)
    if labels is not None and len(labels) > n_cols:
        raise ValueError(
            f"image_grid: {len(labels)} labels for {n_cols} columns; give one label per column"
        )
    if cells.shape[0] == 1:  # make_grid returns a lone image without its border
        grid = F.pad(cells[0], (pad,) * 4, value=float(pad_value))
    else:
        grid = make_grid(cells, nrow=n_cols, padding=pad, pad_value=float(pad_value))
    if not labels:
        return grid
    header = _header(labels, int(cells.shape[-1]), int(grid.shape[-1]), pad, pad_value)
    return torch.cat([header, grid], dim=1)


def _header(labels: Sequence[str], cell_w: int, width: int, pad: int, pad_value: float) -> Tensor:
    """A strip ``[3, h, width]`` with each label centred over its column."""
    font = _font(int(min(22, max(11, cell_w / 6))))
    bg = round((min(max(float(pad_value), -1.0), 1.0) + 1) * 127.5)
    fg = (0, 0, 0) if bg >= 128 else (255, 255, 255)
    _, top, _, bottom = font.getbbox("Hg")
    margin = max(pad, 3)
    strip = Image.new("RGB", (width, bottom - top + 2 * margin + 2), (bg, bg, bg))
    draw = ImageDraw.Draw(strip)
    for j, text in enumerate(labels):
        text = _fit(draw, str(text), font, cell_w)
        x = pad + j * (cell_w + pad) + cell_w / 2
        draw.text((x, strip.height - margin), text, fill=fg, font=font, anchor="md")
    return _from_pil(strip)


# --------------------------------------------------------------------------- conditions


def _resize(t: Tensor, size: tuple[int, int], mode: str = "nearest") -> Tensor:
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    if mode == "nearest":
        return F.interpolate(t, size=size, mode="nearest")
    return F.interpolate(t, size=size, mode="bilinear", antialias=True, align_corners=False)


def _checker(size: tuple[int, int], square: int = 8) -> Tensor:
    """A grey checkerboard ``[1, 3, H, W]``: how unknown pixels are shown."""
    ys = torch.arange(size[0]) // square
    xs = torch.arange(size[1]) // square
    board = ((ys[:, None] + xs[None, :]) % 2).float()
    return (0.25 * board - 0.05).expand(1, 3, -1, -1)


def condition_tiles(cond: Condition, palette: Any = None) -> Tensor:
    """A picture of each input of ``cond``: ``float [B, 3, H, W]`` in ``[-1, 1]`` on the CPU.

    In order of preference:

    - the colourised label map (``palette`` or :func:`palette` ``(num_classes)``), or the argmax
      of ``class_weights`` coloured the same way, with instance boundaries drawn in white when
      there is an ``instance_map``;
    - the conditioning ``image`` (resized nearest to ``cond.size`` when it is smaller, e.g. a
      super-resolution input), with unknown pixels (``mask == 0``) shown as a grey checkerboard;
    - the ``mask`` in grey (white = known);
    - for ``class_id`` alone, a tile in the class's colour with its id written on it.
    """
    size = cond.size
    tiles: Tensor | None = None
    if cond.label_map is not None or cond.class_weights is not None:
        if cond.label_map is not None:
            ids = cond.label_map.detach().cpu()
        else:
            ids = cond.class_weights.detach().cpu().argmax(1)  # type: ignore[union-attr]
        k = cond.num_classes or int(ids.max()) + 1
        tiles = colorize_labels(ids, k, palette)
        if cond.instance_map is not None:
            edges = ops.instance_edges(cond.instance_map.detach().cpu())
            edges = _resize(edges, tuple(tiles.shape[-2:])) > 0.5
            tiles = torch.where(edges, torch.ones_like(tiles), tiles)
    elif cond.image is not None:
        tiles = _rgb(cond.image)
        if size is not None:
            smaller = tiles.shape[-2] <= size[0] and tiles.shape[-1] <= size[1]
            tiles = _resize(tiles, size, "nearest" if smaller else "bilinear")
        if cond.mask is not None:
            mask = _resize(cond.mask.detach().float().cpu(), tuple(tiles.shape[-2:]))
            tiles = tiles * mask + _checker(tuple(tiles.shape[-2:])) * (1 - mask)
    elif cond.mask is not None:
        tiles = (cond.mask.detach().float().cpu() * 2 - 1).expand(-1, 3, -1, -1)
    elif cond.class_id is not None:
        tiles = _class_tiles(cond.class_id.detach().cpu(), cond.num_classes, size, palette)
    if tiles is None:  # pragma: no cover - a Condition always has a field
        raise ValueError("condition_tiles: the Condition has no field to draw")
    if size is not None and tuple(tiles.shape[-2:]) != tuple(size):
        tiles = _resize(tiles, size)
    return tiles.contiguous()


def _class_tiles(
    class_id: Tensor, num_classes: int | None, size: tuple[int, int] | None, palette: Any
) -> Tensor:
    h, w = size or (64, 64)
    k = num_classes or int(class_id.max()) + 1
    colors = to_uint8(colorize_labels(class_id.view(-1, 1, 1), k, palette))[:, 0, 0]
    font = _font(int(min(22, max(10, min(h, w) / 4))))
    out = []
    for cid, color in zip(class_id.tolist(), colors):
        img = Image.new("RGB", (w, h), tuple(int(c) for c in color))
        fg = (0, 0, 0) if sum(int(c) for c in color) > 384 else (255, 255, 255)
        ImageDraw.Draw(img).text((w / 2, h / 2), f"class {cid}", fill=fg, font=font, anchor="mm")
        out.append(_from_pil(img))
    return torch.stack(out)


def sample_grid(
    cond: Condition,
    samples: Tensor,
    real: Tensor | None = None,
    path: str | os.PathLike | None = None,
    palette: Any = None,
    *,
    pad: int = 2,
    scale: int | None = None,
) -> Tensor:
    """One row per input: condition | ground truth (when ``real`` is given) | n samples.

    Args:
        cond: the inputs (``B`` of them), drawn with :func:`condition_tiles`.
        samples: ``[B, n, 3, H, W]`` in ``[-1, 1]`` (a sampler's ``image`` is ``[B·n, ...]``:
            ``rearrange(out.image, "(b n) c h w -> b n c h w", b=B)``); ``[B, 3, H, W]`` is n = 1.
        real: ``[B, 3, H, W]`` ground-truth images.
        path: where to write the grid as a PNG (parent folders are made), if given.
        palette: colours of the label classes (default :func:`palette`).
        pad: pixels between cells.
        scale: integer nearest-neighbour magnification of every cell; default: the smallest that
            makes cells at least 64 px high and wide, so the headers fit.

    Column headers read "condition", "real", "sample 1" ... "sample n". Returns the grid
    ``[3, H', W']`` (as :func:`image_grid`, with cells of ``H·scale × W·scale``).
    """
    if samples.dim() == 4:
        samples = samples.unsqueeze(1)
    if samples.dim() != 5:
        raise ValueError(
            f"sample_grid: samples has shape {tuple(samples.shape)}; expected [B, n, 3, H, W]"
        )
    b, n = int(samples.shape[0]), int(samples.shape[1])
    if b != cond.batch_size:
        raise ValueError(
            f"sample_grid: samples has {b} inputs but the Condition has {cond.batch_size}; "
            "reshape a sampler's [B·n, ...] images with "
            "rearrange(image, '(b n) c h w -> b n c h w', b=B)"
        )
    samples = samples.detach().float().cpu()
    size = (int(samples.shape[-2]), int(samples.shape[-1]))
    tiles = _resize(condition_tiles(cond, palette), size)
    columns = [tiles]
    labels = ["condition"]
    if real is not None:
        if real.shape[0] != b:
            raise ValueError(f"sample_grid: real has {real.shape[0]} images for {b} inputs")
        columns.append(_resize(_rgb(real), size, "bilinear"))
        labels.append("real")
    columns += list(samples.unbind(1))
    labels += [f"sample {k + 1}" for k in range(n)]
    if scale is None:
        scale = max(1, math.ceil(64 / max(1, min(size))))
    if scale > 1:
        columns = [c.repeat_interleave(scale, -2).repeat_interleave(scale, -1) for c in columns]
    rows = [[c[i] for c in columns] for i in range(b)]
    grid = image_grid(rows, pad=pad, labels=labels)
    if path is not None:
        save_image(grid, path)
    return grid


# --------------------------------------------------------------------------- loss curves


def _read_log(log: str | os.PathLike | Iterable[Mapping[str, Any]]) -> tuple[list, str]:
    if isinstance(log, (str, os.PathLike)):
        path = Path(log)
        records = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # e.g. a last line cut off by a crash
                continue
            if isinstance(rec, Mapping):
                records.append(rec)
        return records, path.name
    return [r for r in log if isinstance(r, Mapping)], ""


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _series(
    records: list, keys: Sequence[str] | None
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], int]:
    """``{key: (steps, values)}`` sorted by step (a step logged twice keeps its last value),
    with non-finite values dropped; also how many were dropped."""
    data: dict[str, dict[float, float]] = {}
    wanted = None if keys is None else list(keys)
    for i, rec in enumerate(records):
        step = rec.get("step", i)
        step = float(step) if _is_number(step) and math.isfinite(step) else float(i)
        for k, v in rec.items():
            if not _is_number(v) or k == "step":
                continue
            if wanted is not None:
                if k not in wanted:
                    continue
            elif k.split("/", 1)[0].lower() in LOSS_CURVE_EXCLUDE:
                continue
            data.setdefault(k, {})[step] = float(v)
    order = wanted if wanted is not None else list(data)
    out, dropped = {}, 0
    for k in order:
        if k not in data:
            continue
        steps = np.array(sorted(data[k]), dtype=np.float64)
        vals = np.array([data[k][s] for s in steps], dtype=np.float64)
        ok = np.isfinite(vals)
        dropped += int((~ok).sum())
        if ok.any():
            out[k] = (steps[ok], vals[ok])
    return out, dropped


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` points (fewer at the start)."""
    if window <= 1 or values.size < 2:
        return values
    csum = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, values.size + 1)
    lo = np.maximum(idx - window, 0)
    return (csum[idx] - csum[lo]) / (idx - lo)


def _matplotlib(module: str) -> Any:
    """``matplotlib.<module>``, or an error naming the ``[viz]`` extra."""
    return require(f"matplotlib.{module}", extra="viz", needed_by="synth.viz.loss_curve")


def _figure(size: tuple[int, int]) -> tuple[Any, Any]:
    """A matplotlib ``Figure`` of ``size`` pixels on its own Agg canvas (no pyplot state)."""
    dpi = 100
    fig = _matplotlib("figure").Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    return fig, _matplotlib("backends.backend_agg").FigureCanvasAgg(fig)


def _save(canvas: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.print_png(str(path))  # no timestamp in the file: the same chart gives the same bytes
    return path


def _blank_chart(path: Path, size: tuple[int, int], message: str, title: str) -> Path:
    """A chart with no axes that says "no data" and why."""
    fig, canvas = _figure(size)
    fig.text(0.5, 0.55, "no data", ha="center", va="center", fontsize=24, color="0.25")
    fig.text(0.5, 0.42, message, ha="center", va="center", fontsize=11, color="0.45")
    fig.suptitle(title)
    return _save(canvas, path)


def loss_curve(
    log: str | os.PathLike | Sequence[Mapping[str, Any]],
    path: str | os.PathLike,
    keys: Sequence[str] | None = None,
    smooth: int = 1,
    *,
    log_scale: bool | None = None,
    size: tuple[int, int] = (800, 480),
    title: str | None = None,
) -> Path:
    """Draw training curves from a JSONL log as a PNG line chart (matplotlib); returns ``path``.

    Args:
        log: a JSONL file (one JSON object per line, with ``"step"`` and numeric entries such as
            ``"g/gan": 0.69``) or the records themselves. Blank or unparsable lines (a line cut
            off by a crash) are skipped; a step logged twice (after a resume) keeps its last value.
        path: the PNG to write (parent folders are made).
        keys: the entries to draw, in legend order. Default: every numeric entry except ``step``
            and those under :data:`LOSS_CURVE_EXCLUDE` (``lr/*``, ``time/*``, ``epoch``, ...).
        smooth: trailing moving-average window in points; when > 1 the raw curve is drawn faint
            behind the smoothed one.
        log_scale: log y axis; default: on when every value is positive and they span more
            than two decades.
        size: ``(width, height)`` in pixels.
        title: the chart's title (default: the log's file name).

    NaN/inf values are skipped (and counted in a note); a single point is drawn as a dot; a log
    with nothing to draw gives a PNG that says "no data". Needs matplotlib (``[viz]`` extra).
    """
    path = Path(path)
    records, name = _read_log(log)
    series, dropped = _series(records, keys)
    title = title if title is not None else (name or "training log")
    if log_scale is None:
        values = np.concatenate([v for _, v in series.values()]) if series else np.zeros(0)
        log_scale = bool(values.size and (values > 0).all() and values.max() / values.min() > 100.0)
    nonpositive = 0
    if log_scale:
        for k, (s, v) in list(series.items()):
            ok = v > 0
            nonpositive += int((~ok).sum())
            series[k] = (s[ok], v[ok])
            if not ok.any():
                del series[k]
    if not series:
        return _blank_chart(path, size, _why_empty(records, keys), title)
    notes = []
    if dropped:
        notes.append(f"{dropped} NaN/inf value{'s' if dropped > 1 else ''} skipped")
    if nonpositive:
        notes.append(
            f"{nonpositive} value{'s' if nonpositive > 1 else ''} <= 0 not drawn on log scale"
        )
    smooth = max(1, int(smooth))
    return _draw_chart(path, series, size, title, smooth, log_scale, "; ".join(notes))


def _why_empty(records: list, keys: Sequence[str] | None) -> str:
    if not records:
        return "the log is empty"
    if keys is not None:
        return f"no finite values for {', '.join(keys)}"
    return "no numeric loss entries"


def _draw_chart(
    path: Path,
    series: dict[str, tuple[np.ndarray, np.ndarray]],
    size: tuple[int, int],
    title: str,
    smooth: int,
    log_scale: bool,
    note: str,
) -> Path:
    """One line per series (tab10 colours; raw values faint behind their moving average when
    ``smooth > 1``), legend with each series' last value, step on the x axis."""
    fig, canvas = _figure(size)
    ax = fig.add_subplot()
    tab10 = list(_matplotlib("colors").TABLEAU_COLORS.values())
    for i, (key, (steps, vals)) in enumerate(series.items()):
        color = tab10[i % len(tab10)]
        if smooth > 1:
            ax.plot(steps, vals, color=color, alpha=0.3, linewidth=1)
        ax.plot(
            steps,
            _moving_average(vals, smooth),
            color=color,
            linewidth=1.8,
            marker="o" if len(steps) <= 30 else None,  # few points: show where they are
            markersize=3.5,
            label=f"{key}  {vals[-1]:.4g}",
        )
    if log_scale:
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(_matplotlib("ticker").MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    ax.set_xlabel("step")
    ax.grid(True, color="0.9")
    ax.legend(loc="best", fontsize="small")
    head = title + ("  (log scale)" if log_scale else "")
    ax.set_title(head + (f"  (smoothed over {smooth})" if smooth > 1 else ""))
    if note:
        fig.text(0.01, 0.01, note, color=(0.75, 0.15, 0.15), fontsize=9)
    fig.tight_layout()
    return _save(canvas, path)


# --------------------------------------------------------------------------- disentanglement


def disentanglement_curve(
    values: Mapping[str, Sequence[float | None]] | Sequence[float | None],
    path: str | os.PathLike,
    *,
    x_labels: Sequence[str] | None = None,
    title: str = "multi-scale disentanglement",
    size: tuple[int, int] = (640, 420),
) -> Path:
    """Draw the disentanglement curve (nested-scale paper Fig. 8) as a PNG; returns ``path``.

    Args:
        values: per model, the LPIPS variation of the output when only scale k's code varies,
            one value per scale, coarsest first (``core.disentanglement_curve``'s ``"curve"``);
            a plain list is one unnamed model. ``None``/NaN values leave a gap.
        path: the PNG to write (parent folders are made).
        x_labels: tick labels of the scales (default ``0 .. K-1``; e.g. each level's size).
        title: the chart's title.
        size: ``(width, height)`` in pixels.

    Scale on x, variation on y (from 0), one line with markers per model (tab10 colours). A
    disentangled decoder's line falls monotonically. No values gives a PNG that says "no data".
    Needs matplotlib (``[viz]`` extra).
    """
    require("matplotlib", extra="viz", needed_by="synth.viz.disentanglement_curve")
    path = Path(path)
    series = dict(values) if isinstance(values, Mapping) else {"": list(values)}
    series = {
        k: np.array([np.nan if v is None else float(v) for v in vs]) for k, vs in series.items()
    }
    series = {k: v for k, v in series.items() if np.isfinite(v).any()}
    if not series:
        return _blank_chart(path, size, "no finite values to draw", title)
    fig, canvas = _figure(size)
    ax = fig.add_subplot()
    tab10 = list(_matplotlib("colors").TABLEAU_COLORS.values())
    for i, (name, v) in enumerate(series.items()):
        ax.plot(np.arange(v.size), v, color=tab10[i % len(tab10)], marker="o", label=name or None)
    k = max(v.size for v in series.values())
    ax.set_xticks(np.arange(k))
    if x_labels is not None:
        ax.set_xticklabels([str(t) for t in list(x_labels)[:k]])
    ax.set_xlabel("scale k whose code varies (coarse → fine)")
    ax.set_ylabel("LPIPS variation")
    ax.set_ylim(bottom=0)
    ax.grid(True, color="0.9")
    if any(series):
        ax.legend(loc="best", fontsize="small")
    ax.set_title(title)
    fig.tight_layout()
    return _save(canvas, path)


# --------------------------------------------------------------------------- comparison


def comparison_figure(
    samples: Mapping[str, Tensor],
    path: str | os.PathLike,
    *,
    inputs: Mapping[str, Tensor] | None = None,
    bars: Mapping[str, Mapping[str, Mapping[str, float | None]]] | None = None,
    title: str = "",
    cell: int = 96,
) -> Path:
    """Draw models side by side as one PNG (matplotlib): per model one row of its samples of
    the same input, above grouped bar charts of what was measured; returns ``path``.

    Args:
        samples: per model (the row's label, in row order), ``[k, 3, H, W]`` samples in
            ``[-1, 1]`` of one and the same input.
        path: the PNG to write (parent folders are made).
        inputs: pictures at the start of every row, by column title, each ``[3, H, W]`` in
            ``[-1, 1]`` (e.g. ``{"label map": tile, "photo": real}``).
        bars: per panel title, per series (legend entry), per model: a value. Each panel is a
            grouped bar chart with the models on x (those with a value in the panel) and each
            bar's value written on it; ``None``/NaN leaves the bar out and writes "n/a".
        title: the figure's title.
        cell: the side of one image cell in pixels.

    Needs matplotlib (``[viz]`` extra).
    """
    require("matplotlib", extra="viz", needed_by="synth.viz.comparison_figure")
    names = list(samples)
    if not names:
        raise ValueError("comparison_figure: no models to draw")
    inputs, bars = dict(inputs or {}), dict(bars or {})
    cols = len(inputs) + max(int(s.shape[0]) for s in samples.values())
    image_h, chart_h = cell * len(names), (320 if bars else 0)
    width = max(cols * cell + 180, 360 * len(bars))
    fig, canvas = _figure((width, image_h + chart_h + 60))
    fig.set_layout_engine("constrained")
    outer = fig.add_gridspec(
        2 if bars else 1, 1, height_ratios=[image_h, chart_h] if bars else None
    )
    _image_rows(fig, outer[0].subgridspec(len(names), cols), samples, inputs)
    if bars:
        panels = outer[1].subgridspec(1, len(bars))
        for i, (panel, series) in enumerate(bars.items()):
            _grouped_bars(fig.add_subplot(panels[0, i]), panel, series, names)
    if title:
        fig.suptitle(title)
    return _save(canvas, Path(path))


def _image_rows(
    fig: Any, grid: Any, samples: Mapping[str, Tensor], inputs: Mapping[str, Tensor]
) -> None:
    """One row per model: the ``inputs`` columns, then its samples, titled on the first row."""
    for r, (name, images) in enumerate(samples.items()):
        columns = [(t, image) for t, image in inputs.items()]
        columns += [(f"sample {j + 1}", image) for j, image in enumerate(images.unbind(0))]
        for c, (label, image) in enumerate(columns):
            ax = fig.add_subplot(grid[r, c])
            ax.imshow(to_uint8(image[None])[0], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(label, fontsize=9)
            if c == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)


def _grouped_bars(
    ax: Any, title: str, series: Mapping[str, Mapping[str, float | None]], names: list[str]
) -> None:
    """Bars of each series side by side per model that has a value in the panel (tab10
    colours), values written on them."""
    tab10 = list(_matplotlib("colors").TABLEAU_COLORS.values())
    names = [n for n in names if any(n in values for values in series.values())]
    x = np.arange(len(names))
    width = 0.8 / max(1, len(series))
    top = 0.0
    for j, (label, values) in enumerate(series.items()):
        heights = np.array([np.nan if values.get(n) is None else values[n] for n in names], float)
        offset = (j - (len(series) - 1) / 2) * width
        bars = ax.bar(x + offset, np.nan_to_num(heights), width, label=label, color=tab10[j % 10])
        texts = [f"{h:.3g}" if np.isfinite(h) else "n/a" for h in heights]
        ax.bar_label(bars, labels=texts, fontsize=7, padding=1)
        top = max(top, float(np.nanmax(heights, initial=0.0)))
    ax.set_xticks(x)
    ax.set_xticklabels([n.replace(".", ".\n", 1) for n in names], fontsize=8)
    legend = len(series) > 1 or bool(next(iter(series), ""))
    # headroom for the value labels and a legend row above the bars
    ax.set_ylim(0, (top or 1.0) * (1.35 if legend else 1.15))
    ax.grid(True, axis="y", color="0.9")
    ax.set_axisbelow(True)
    ax.set_title(title, fontsize=10)
    if legend:
        ax.legend(loc="upper center", ncols=min(len(series), 3), fontsize="small")
