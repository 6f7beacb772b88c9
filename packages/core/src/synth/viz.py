"""Pictures people would rather look at than read: label maps, sample grids, loss curves.

Everything here draws with PIL only (no matplotlib) and works on CPU tensors; inputs on other
devices or in other float dtypes are moved and cast first. Images are ``float`` tensors in
``[-1, 1]`` (the library's convention) until they are written.

>>> import synth.viz as sv
>>> tiles = sv.condition_tiles(cond)                                  # doctest: +SKIP
>>> sv.sample_grid(cond, samples, real=batch.real, path="grid.png")  # doctest: +SKIP
>>> sv.loss_curve("runs/x/log.jsonl", "runs/x/loss.png", smooth=20)  # doctest: +SKIP
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

from .condition import Condition
from .nn import ops

__all__ = [
    "CITYSCAPES_COLORS",
    "LOSS_CURVE_EXCLUDE",
    "colorize_labels",
    "condition_tiles",
    "image_grid",
    "loss_curve",
    "palette",
    "sample_grid",
    "save_image",
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

#: Line colours of :func:`loss_curve` (the "tab10" colours).
_LINE_COLORS = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)
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


def _to_pil(image: Tensor) -> Image.Image:
    return Image.fromarray(to_uint8(image)[0], "RGB")


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
    _to_pil(single).save(path)
    return path


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """PIL's default font at ``size`` px (the bitmap default on Pillow < 10.1)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, AttributeError, OSError):  # pragma: no cover - old Pillow / no FreeType
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """``text``, cut with an ellipsis so it is at most ``width`` px wide."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…" if text else ""


def image_grid(
    rows: Sequence[Sequence[Tensor]],
    pad: int = 2,
    pad_value: float = 1.0,
    labels: Sequence[str] | None = None,
) -> Tensor:
    """Images laid out in a grid: ``[3, H', W']`` in ``[-1, 1]``.

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
    cells = [[_rgb(im)[0] for im in row] for row in rows]
    flat = [c for row in cells for c in row]
    if not flat:
        raise ValueError("image_grid: no images; give a list of rows of [3, H, W] tensors")
    cell_h = max(c.shape[1] for c in flat)
    cell_w = max(c.shape[2] for c in flat)
    n_rows = len(cells)
    n_cols = max(len(row) for row in cells)
    if labels is not None and len(labels) > n_cols:
        raise ValueError(
            f"image_grid: {len(labels)} labels for {n_cols} columns; give one label per column"
        )
    height = n_rows * cell_h + (n_rows + 1) * pad
    width = n_cols * cell_w + (n_cols + 1) * pad
    canvas = torch.full((3, height, width), float(pad_value))
    for i, row in enumerate(cells):
        for j, c in enumerate(row):
            y = pad + i * (cell_h + pad) + (cell_h - c.shape[1]) // 2
            x = pad + j * (cell_w + pad) + (cell_w - c.shape[2]) // 2
            canvas[:, y : y + c.shape[1], x : x + c.shape[2]] = c
    if not labels:
        return canvas
    return torch.cat([_header(labels, cell_w, width, pad, pad_value), canvas], dim=1)


def _header(labels: Sequence[str], cell_w: int, width: int, pad: int, pad_value: float) -> Tensor:
    font = _font(int(min(22, max(11, cell_w / 6))))
    bg = round((min(max(float(pad_value), -1.0), 1.0) + 1) * 127.5)
    fg = (0, 0, 0) if bg >= 128 else (255, 255, 255)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    _, text_h = _text_size(probe, "Hg", font)
    strip = Image.new("RGB", (width, text_h + 2 * max(pad, 3) + 2), (bg, bg, bg))
    draw = ImageDraw.Draw(strip)
    for j, text in enumerate(labels):
        text = _fit(draw, str(text), font, cell_w)
        if not text:
            continue
        x = pad + j * (cell_w + pad) + cell_w / 2
        draw.text((x, strip.height - max(pad, 3)), text, fill=fg, font=font, anchor="md")
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


def _nice_step(span: float, target: int) -> float:
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag  # pragma: no cover


def _linear_ticks(
    lo: float, hi: float, target: int = 6, min_step: float = 0.0
) -> tuple[list[float], float]:
    step = max(_nice_step(hi - lo, target), min_step)
    first = math.ceil(lo / step - 1e-9)
    ticks = [k * step for k in range(first, math.floor(hi / step + 1e-9) + 1)]
    return ticks, step


def _fmt_number(v: float, step: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        return f"{v:.2g}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 3
    if step > 0 and round(step / 10 ** math.floor(math.log10(step)), 6) == 2.5:
        decimals += 1
    return f"{v:.{decimals}f}"


def _fmt_step(v: float) -> str:
    def trim(x: float) -> str:
        return f"{x:.2f}".rstrip("0").rstrip(".")

    if abs(v) >= 1e6:
        return trim(v / 1e6) + "M"
    if abs(v) >= 1e4:
        return trim(v / 1e3) + "k"
    return str(int(v)) if v == int(v) else f"{v:.3g}"


def _fmt_value(v: float) -> str:
    return f"{v:.4g}"


def _log_ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    """Ticks for a log10 axis spanning ``[lo, hi]`` (in log10 units)."""
    decades = range(math.floor(lo), math.ceil(hi) + 1)
    mults = (1, 2, 5) if hi - lo <= 3 else (1,)
    out = []
    for p in decades:
        for m in mults:
            e = p + math.log10(m)
            if lo - 1e-9 <= e <= hi + 1e-9:
                v = m * 10.0**p
                text = f"{m}e{p}" if abs(p) >= 4 else f"{v:g}"
                out.append((e, text))
    if len(out) > 12:  # too dense: every other decade
        out = [t for t in out if round(t[0]) % 2 == 0 and abs(t[0] - round(t[0])) < 1e-9]
    return out


def _blank_chart(path: Path, size: tuple[int, int], message: str, title: str) -> Path:
    ss = 2
    img = Image.new("RGB", (size[0] * ss, size[1] * ss), "white")
    draw = ImageDraw.Draw(img)
    cx, cy = img.width / 2, img.height / 2
    draw.text((cx, cy), "no data", fill=(60, 60, 60), font=_font(28 * ss), anchor="mm")
    draw.text((cx, cy + 30 * ss), message, fill=(120, 120, 120), font=_font(13 * ss), anchor="mm")
    if title:
        draw.text((cx, 12 * ss), title, fill=(0, 0, 0), font=_font(15 * ss), anchor="mt")
    path.parent.mkdir(parents=True, exist_ok=True)
    img.resize(size, Image.LANCZOS).save(path)
    return path


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
    """Draw training curves from a JSONL log as a PNG line chart; returns ``path``.

    Args:
        log: a JSONL file (one JSON object per line, with ``"step"`` and numeric entries such as
            ``"g/gan": 0.69``) or the records themselves. Blank or unparsable lines (a line cut
            off by a crash) are skipped; a step logged twice (after a resume) keeps its last value.
        path: the PNG to write (parent folders are made).
        keys: the entries to draw, in legend order. Default: every numeric entry except ``step``
            and those under :data:`LOSS_CURVE_EXCLUDE` (``lr/*``, ``time/*``, ``epoch``, ...).
        smooth: trailing moving-average window in points; when > 1 the raw curve is drawn faint
            behind the smoothed one.
        log_scale: log10 y axis; default: on when every value is positive and they span more
            than two decades.
        size: ``(width, height)`` in pixels.
        title: the chart's title (default: the log's file name).

    NaN/inf values are skipped (and counted in a note); a single point is drawn as a dot; a log
    with nothing to draw gives a PNG that says "no data".
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
        for k in list(series):
            s, v = series[k]
            ok = v > 0
            nonpositive += int((~ok).sum())
            series[k] = (s[ok], np.log10(v[ok]))
            if not ok.any():
                del series[k]
    if not series:
        if not records:
            why = "the log is empty"
        elif keys is not None:
            why = f"no finite values for {', '.join(keys)}"
        else:
            why = "no numeric loss entries"
        return _blank_chart(path, size, why, title)
    smooth = max(1, int(smooth))
    notes = []
    if dropped:
        notes.append(f"{dropped} NaN/inf value{'s' if dropped > 1 else ''} skipped")
    if nonpositive:
        notes.append(
            f"{nonpositive} value{'s' if nonpositive > 1 else ''} <= 0 not drawn on log scale"
        )
    return _draw_chart(path, series, size, title, smooth, log_scale, "; ".join(notes))


def _draw_chart(
    path: Path,
    series: dict[str, tuple[np.ndarray, np.ndarray]],
    size: tuple[int, int],
    title: str,
    smooth: int,
    log_scale: bool,
    note: str,
) -> Path:
    ss = 2  # drawn at twice the size and downsampled: smooth lines
    W, H = size[0] * ss, size[1] * ss
    img = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(img)
    f_tick, f_title, f_legend = _font(11 * ss), _font(14 * ss), _font(11 * ss)

    xs = np.concatenate([s for s, _ in series.values()])
    ys = np.concatenate([v for _, v in series.values()])
    x0, x1 = float(xs.min()), float(xs.max())
    if x1 - x0 < 1e-12:
        x0, x1 = x0 - 1, x1 + 1
    y0, y1 = float(ys.min()), float(ys.max())
    if y1 - y0 < 1e-12:
        half = 0.5 if log_scale else max(abs(y0) * 0.1, 1e-3)
        y0, y1 = y0 - half, y1 + half
    else:
        y0, y1 = y0 - 0.05 * (y1 - y0), y1 + 0.05 * (y1 - y0)

    if log_scale:
        yticks = _log_ticks(y0, y1)
        if len(yticks) < 2:
            lin, st = _linear_ticks(10**y0, 10**y1, 5)
            yticks = [(math.log10(t), _fmt_number(t, st)) for t in lin if t > 0]
    else:
        lin, st = _linear_ticks(y0, y1, 6)
        yticks = [(t, _fmt_number(t, st)) for t in lin]
    integer_steps = bool(np.all(xs == np.round(xs)))
    xlin, _ = _linear_ticks(x0, x1, 7, min_step=1.0 if integer_steps else 0.0)
    xticks = [(t, _fmt_step(t)) for t in xlin]

    label_w = max((_text_size(draw, t, f_tick)[0] for _, t in yticks), default=0)
    _, tick_h = _text_size(draw, "0123456789", f_tick)
    left = label_w + 18 * ss
    right = W - 22 * ss
    top = 36 * ss
    bottom = H - (tick_h + 34 * ss)

    def px(x: np.ndarray | float) -> np.ndarray | float:
        return left + (np.asarray(x) - x0) / (x1 - x0) * (right - left)

    def py(y: np.ndarray | float) -> np.ndarray | float:
        return bottom - (np.asarray(y) - y0) / (y1 - y0) * (bottom - top)

    # grid, ticks and their numbers
    grid_c, axis_c, text_c = (228, 228, 228), (40, 40, 40), (50, 50, 50)
    for t, text in yticks:
        y = float(py(t))
        draw.line([(left, y), (right, y)], fill=grid_c, width=ss)
        draw.line([(left - 5 * ss, y), (left, y)], fill=axis_c, width=ss)
        draw.text((left - 8 * ss, y), text, fill=text_c, font=f_tick, anchor="rm")
    for t, text in xticks:
        x = float(px(t))
        draw.line([(x, top), (x, bottom)], fill=grid_c, width=ss)
        draw.line([(x, bottom), (x, bottom + 5 * ss)], fill=axis_c, width=ss)
        draw.text((x, bottom + 8 * ss), text, fill=text_c, font=f_tick, anchor="mt")
    draw.line([(left, top), (left, bottom), (right, bottom)], fill=axis_c, width=ss)
    draw.text(((left + right) / 2, H - 6 * ss), "step", fill=text_c, font=f_tick, anchor="mb")
    head = title + ("  (log scale)" if log_scale else "")
    if smooth > 1:
        head += f"  (smoothed over {smooth})"
    draw.text(((left + right) / 2, 12 * ss), head, fill=(0, 0, 0), font=f_title, anchor="mt")
    if note:
        draw.text((left, H - 6 * ss), note, fill=(190, 40, 40), font=f_tick, anchor="lb")

    # lines (also drawn on an occupancy mask, so that the legend can avoid them)
    occupied = Image.new("L", (W, H), 0)
    targets = (draw, ImageDraw.Draw(occupied))
    legend = []
    for i, (key, (steps, vals)) in enumerate(series.items()):
        color = _LINE_COLORS[i % len(_LINE_COLORS)]
        faint = tuple(round(c + (255 - c) * 0.7) for c in color)
        sm = _moving_average(vals, smooth)
        layers = [(vals, faint, ss), (sm, color, 2 * ss)] if smooth > 1 else [(vals, color, 2 * ss)]
        for v, c, width in layers:
            pts = _decimate(np.asarray(px(steps)), np.asarray(py(v)), right - left)
            for d, fill in zip(targets, (c, 255)):
                if len(pts) == 1 or len(steps) <= 30:
                    r = 2.5 * ss if len(pts) > 1 else 4 * ss
                    for x, y in pts:
                        d.ellipse([x - r, y - r, x + r, y + r], fill=fill)
                if len(pts) > 1:
                    d.line([tuple(p) for p in pts], fill=fill, width=width, joint="curve")
        last = vals[-1] if not log_scale else 10 ** vals[-1]
        legend.append((f"{key}  {_fmt_value(float(last))}", color))

    box = (left, top, right, bottom)
    _draw_legend(draw, legend, f_legend, box, np.asarray(occupied) > 0, ss)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.resize(size, Image.LANCZOS).save(path)
    return path


def _decimate(x: np.ndarray, y: np.ndarray, width_px: float) -> np.ndarray:
    """Points ``[N, 2]``; when there are many more points than pixel columns, each column keeps
    its min and max, so spikes stay visible."""
    pts = np.stack([x, y], axis=1)
    cols = max(int(width_px), 1)
    if len(x) <= 2 * cols:
        return pts
    bucket = np.clip(
        ((x - x.min()) / max(x.max() - x.min(), 1e-12) * (cols - 1)).astype(int), 0, None
    )
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    lo = np.minimum.reduceat(y, starts)
    hi = np.maximum.reduceat(y, starts)
    xb = x[starts]
    return np.stack([np.repeat(xb, 2), np.stack([lo, hi], 1).reshape(-1)], axis=1)


def _draw_legend(draw, entries, font, box, occupied: np.ndarray, ss: int) -> None:
    """A legend where it hides the least of the lines (``occupied``: bool ``[H, W]``), a corner
    of the plot when one is as good as any other place."""
    pad, swatch, gap = 6 * ss, 18 * ss, 5 * ss
    sizes = [_text_size(draw, text, font) for text, _ in entries]
    line_h = max(h for _, h in sizes) + gap
    w = max(tw for tw, _ in sizes) + swatch + 3 * pad
    h = line_h * len(entries) + 2 * pad - gap
    left, top, right, bottom = box
    m = 8 * ss
    # candidate places: the corners first (top right preferred), then the edges' middles
    xs = (right - m - w, left + m, (left + right - w) / 2)
    ys = (top + m, bottom - m - h, (top + bottom - h) / 2)
    places = [(x, y) for y in ys for x in xs]
    places.sort(key=lambda p: (p[0] == xs[2]) + (p[1] == ys[2]))  # stable: corners first
    summed = np.pad(occupied.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))

    def covered(place: tuple[float, float]) -> int:
        x0 = int(min(max(place[0], 0), occupied.shape[1]))
        y0 = int(min(max(place[1], 0), occupied.shape[0]))
        x1 = int(min(x0 + w, occupied.shape[1]))
        y1 = int(min(y0 + h, occupied.shape[0]))
        return int(summed[y1, x1] - summed[y0, x1] - summed[y1, x0] + summed[y0, x0])

    x, y = min(places, key=covered)
    draw.rectangle([x, y, x + w, y + h], fill=(255, 255, 255), outline=(170, 170, 170), width=ss)
    for i, (text, color) in enumerate(entries):
        cy = y + pad + i * line_h + (line_h - gap) / 2
        draw.line([(x + pad, cy), (x + pad + swatch, cy)], fill=color, width=3 * ss)
        draw.text((x + 2 * pad + swatch, cy), text, fill=(30, 30, 30), font=font, anchor="lm")
