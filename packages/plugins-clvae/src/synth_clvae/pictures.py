"""Pictures only class-wise codes can make: one class's codes resampled, every other code kept.

:func:`class_resample` draws them (one batched generator call); :func:`demo_pictures` is what
the plugin offers ``synth demo`` through the ``synth_demo_pictures`` hook: the per-class
resampling grid ``class_resample.png`` for models whose prior gives ``Latents.class_codes``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from einops import rearrange
from torch import Tensor

import synth
from synth.registry import DemoPicture

__all__ = ["class_resample", "class_resample_grid", "demo_pictures", "largest_class"]

#: Shown in place of the grid for label-map models without class codes.
NO_CLASS_CODES = (
    "no class_resample.png: this model has no per-class codes (try "
    "`synth demo --recipe clvae.ade20k`, whose CLVAE encoder gives them)"
)


def class_resample(
    model: Any, cond: synth.Condition, classes: Tensor, n: int, generator: torch.Generator
) -> tuple[Tensor, Tensor] | None:
    """One class's codes resampled, every other code kept (CLVAE §4.4.2 object editing).

    Args:
        cond: ``B`` label-map inputs; ``classes [B]``: the class to resample in each.
        n: resamples per input.

    Returns ``(base [B, 3, H, W], resampled [B, n, 3, H, W])``, or ``None`` when the model's
    prior has no per-class codes (``Latents.class_codes``). Batched: one generator call.
    """
    if model.injector is None or model.injector.prior(cond[:1], generator).class_codes is None:
        return None
    # per input n + 1 images: the first keeps the drawn codes, the others resample one class
    m = n + 1
    cond_m = cond.repeat_interleave(m)
    base = model.injector.prior(cond, generator).map(lambda t: t.repeat_interleave(m, 0))
    fresh = model.injector.prior(cond_m, generator)
    k = base.class_codes[0].shape[1]
    chosen = torch.nn.functional.one_hot(classes, k).bool()  # [B, K]
    later = torch.arange(m, device=chosen.device) > 0  # [m]: not the first of the group
    mask = rearrange(chosen[:, None, :] & later[None, :, None], "b m k -> (b m) k 1")
    base.class_codes = [
        torch.where(mask, f, o) for f, o in zip(fresh.class_codes, base.class_codes, strict=True)
    ]
    image = rearrange(model.generator(cond_m, base).image, "(b m) c h w -> b m c h w", m=m)
    return image[:, 0], image[:, 1:]


def largest_class(label_map: Tensor, k: int) -> Tensor:
    """The class covering most pixels of each map: ``[B, H, W] -> [B]``."""
    counts = torch.zeros(label_map.shape[0], k, dtype=torch.long, device=label_map.device)
    counts.scatter_add_(1, label_map.flatten(1), torch.ones_like(label_map.flatten(1)))
    return counts.argmax(1)


def class_resample_grid(
    base: Tensor,
    resampled: Tensor,
    shown: synth.Condition,
    classes: Tensor,
    real: Tensor,
    palette: Tensor | None = None,
) -> Tensor:
    """One row per input: the chosen class in its colour on light grey (where the change may
    happen) | photo | sample | the ``n`` resamples. ``base [B, 3, H, W]``, ``resampled
    [B, n, 3, H, W]``, ``classes [B]``; returns the grid ``[3, H', W']``."""
    from synth.viz import condition_tiles, image_grid

    tiles = (condition_tiles(shown, palette) + 1) / 2
    chosen = (shown.label_map == classes[:, None, None]).unsqueeze(1).cpu()
    tiles = torch.where(chosen, tiles, torch.full_like(tiles, 0.85)) * 2 - 1
    rows = [
        [tiles[i], real[i].cpu(), base[i].cpu(), *resampled[i].cpu().unbind(0)]
        for i in range(base.shape[0])
    ]
    n = resampled.shape[1]
    labels = ["class", "real", "sample", *[f"resample {j + 1}" for j in range(n)]]
    return image_grid(rows, labels=labels)


def demo_pictures(
    model: Any,
    cond: synth.Condition,
    shown: synth.Condition,
    real: Tensor,
    palette: Tensor | None,
    num_samples: int,
    generator: torch.Generator,
) -> list[DemoPicture]:
    """``class_resample.png`` for label-map models with class codes (the largest class of each
    photo resampled); a note for label-map models without them; nothing for other inputs."""
    if cond.label_map is None:
        return []
    classes = largest_class(cond.label_map, int(cond.num_classes))
    got = class_resample(model, cond, classes, num_samples, generator)
    if got is None:
        return [DemoPicture("class_resample", note=NO_CLASS_CODES)]
    grid = class_resample_grid(*got, shown, classes, real, palette)

    def write(path: Path) -> None:
        from synth.viz import save_image

        save_image(grid, path)

    return [DemoPicture("class_resample", write)]
