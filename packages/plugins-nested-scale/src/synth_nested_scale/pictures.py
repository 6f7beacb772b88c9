"""Pictures only per-scale codes can make: one pyramid level's code redrawn, every other kept.

:func:`scale_edits` draws them (``nested_scale.scale_edit``, one generator call per edited
level), :func:`scale_edit_grid` lays them out, and :func:`demo_pictures` is what the plugin
offers ``synth demo`` through the ``synth_demo_pictures`` hook: ``scale_edit.png`` for models
with per-scale codes (a generator with an RGB pyramid, e.g. any generator in
``nested_scale.pyramid``, and a prior that draws one ``Latents.styles`` code per level), a
note for every other model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from einops import rearrange
from torch import Tensor

import synth
from synth.registry import DemoPicture

__all__ = [
    "NO_SCALE_CODES",
    "demo_pictures",
    "edited_levels",
    "scale_edit_grid",
    "scale_edits",
]

#: Shown in place of the grid for models without per-scale codes.
NO_SCALE_CODES = (
    "no scale_edit.png: this model has no per-scale codes (an RGB pyramid and one "
    "Latents.styles code per level); wrap its generator in nested_scale.pyramid with "
    "core.gaussian, or try `synth demo --recipe nested_scale.spade`"
)

#: Redraws of each edited level in the demo's picture (at most ``-n``).
DRAWS = 3

#: Column names of the edited levels, coarsest first.
_NAMES = ("coarse", "middle", "fine")


def edited_levels(num_levels: int) -> list[int]:
    """The levels the picture edits: the coarsest, a middle one and the finest (fewer when the
    pyramid has fewer than three levels), coarsest first."""
    return sorted({0, num_levels // 2, num_levels - 1})


def scale_edits(
    model: Any, cond: synth.Condition, levels: Sequence[int], n: int, generator: torch.Generator
) -> tuple[Tensor, Tensor] | None:
    """The reference sample and ``n`` redraws of each level in ``levels`` alone.

    One prior draw per input is the reference; for each level ``k``, ``nested_scale.scale_edit``
    redraws ``styles[k]`` ``n`` times and keeps every other code, so the levels coarser than
    ``k`` stay the reference's exactly.

    Returns ``(reference [B, 3, H, W], edits [B, L, n, 3, H, W])`` with ``L = len(levels)``, or
    ``None`` when the model has no per-scale codes (no pyramid, no injector, or a prior whose
    ``styles`` are not one code per pyramid level).
    """
    if model.injector is None or not getattr(model.generator, "has_pyramid", False):
        return None
    reference = model.injector.prior(cond, generator)
    if not reference.styles or len(reference.styles) != len(model.generator.pyramid_scales):
        return None
    base = model.generator(cond, reference).image
    edits = [
        model.sample(
            cond, n, "nested_scale.scale_edit", generator, scales=[k], reference=reference
        ).image
        for k in levels
    ]
    stacked = rearrange(torch.stack(edits), "l (b n) c h w -> b l n c h w", n=n)
    return base, stacked


def scale_edit_grid(
    reference: Tensor,
    edits: Tensor,
    shown: synth.Condition,
    real: Tensor,
    labels: Sequence[str],
    palette: Tensor | None = None,
) -> Tensor:
    """One row per input: condition | photo | reference | the redraws of each edited level.

    ``reference [B, 3, H, W]``, ``edits [B, L, n, 3, H, W]``, ``labels``: one name per edited
    level (the column headers number its redraws). Cells are magnified (nearest) to at least
    64 px so the headers fit. Returns the grid ``[3, H', W']`` in ``[-1, 1]``.
    """
    from synth.viz import condition_tiles, image_grid

    size = tuple(int(s) for s in reference.shape[-2:])
    tiles = torch.nn.functional.interpolate(condition_tiles(shown, palette), size=size)
    photos = torch.nn.functional.interpolate(
        real.float().cpu(), size=size, mode="bilinear", antialias=True
    )
    redraws = rearrange(edits.float().cpu(), "b l n c h w -> b (l n) c h w")
    columns = [tiles, photos, reference.float().cpu(), *redraws.unbind(1)]
    scale = max(1, math.ceil(64 / min(size)))
    columns = [c.repeat_interleave(scale, -2).repeat_interleave(scale, -1) for c in columns]
    n = edits.shape[2]
    headers = ["condition", "real", "reference"]
    headers += [f"{name} {i + 1}" for name in labels for i in range(n)]
    rows = [[c[b] for c in columns] for b in range(reference.shape[0])]
    return image_grid(rows, labels=headers)


def _level_names(levels: list[int], num_levels: int) -> list[str]:
    """``coarse`` for level 0, ``fine`` for the last level, ``middle`` for any other."""
    return [
        _NAMES[0] if k == 0 else _NAMES[2] if k == num_levels - 1 else _NAMES[1] for k in levels
    ]


def demo_pictures(
    model: Any,
    cond: synth.Condition,
    shown: synth.Condition,
    real: Tensor,
    palette: Tensor | None,
    num_samples: int,
    generator: torch.Generator,
) -> list[DemoPicture]:
    """``scale_edit.png`` for models with per-scale codes: per photo the reference sample, then
    redraws of only the coarsest, only a middle and only the finest level's code; a note for
    models without per-scale codes."""
    num_levels = len(getattr(model.generator, "pyramid_scales", None) or [])
    levels = edited_levels(num_levels) if num_levels else []
    got = scale_edits(model, cond, levels, min(DRAWS, num_samples), generator) if levels else None
    if got is None:
        return [DemoPicture("scale_edit", note=NO_SCALE_CODES)]
    names = _level_names(levels, num_levels)
    grid = scale_edit_grid(*got, shown, real, names, palette)
    h, w = (int(s) for s in got[0].shape[-2:])
    scales = [model.generator.pyramid_scales[k] for k in levels]
    what = ", ".join(f"{name} ({h // s}×{w // s})" for name, s in zip(names, scales))
    note = f"scale_edit.png: per photo the reference sample, then only the {what} code redrawn"

    def write(path: Path) -> None:
        from synth.viz import save_image

        save_image(grid, path)

    return [DemoPicture("scale_edit", write, note=note)]
