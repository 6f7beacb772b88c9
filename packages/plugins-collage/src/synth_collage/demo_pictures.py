"""``synth demo``'s label-collage picture (the ``synth_demo_pictures`` hook).

For a model whose norm slot holds spatial class-conditional norms (``collage.scbn``,
``collage.spatial_adain``) and that reads label maps (``synth demo --recipe collage.tiny``):
per demo photo, its label map's right half repainted with the class that covers most of the
left half, rendered from one code at intensities α = 0, ½, 1 (eq. 2 with
``W = (1 - α)·W_photo + α·W_painted`` on every layer, Fig. 9). Other models get no picture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

import synth
from synth.registry import DemoPicture
from synth.viz import colorize_labels, condition_tiles, image_grid, save_image

from .norms import spatial_norms

__all__ = ["INTENSITIES", "demo_pictures", "painted_label_maps"]

#: The intensities α drawn, one column each.
INTENSITIES = (0.0, 0.5, 1.0)


def painted_label_maps(labels: Tensor, num_classes: int) -> Tensor:
    """``labels [B, H, W]`` with the right half set to the class covering most of the left
    half (per image): ``[B, H, W]``."""
    w = labels.shape[-1]
    left = rearrange(F.one_hot(labels[..., : w // 2], num_classes), "b h w k -> b k (h w)")
    majority = left.sum(-1).argmax(1)  # [B]
    out = labels.clone()
    out[..., w // 2 :] = majority[:, None, None]
    return out


def demo_pictures(
    model: Any,
    cond: synth.Condition,
    shown: synth.Condition,
    real: Tensor,
    palette: Tensor | None,
    num_samples: int,
    generator: torch.Generator,
) -> list[DemoPicture]:
    """``label_collage.png``: per photo its label map, the painted map, then one code's
    samples at α = 0, ½, 1; ``[]`` for models without spatial norms or label maps."""
    norms = spatial_norms(model.generator)
    if not norms or cond.label_map is None:
        return []
    k = norms[0].config.num_classes
    painted = painted_label_maps(cond.label_map, k)
    weights = rearrange(F.one_hot(painted, k).float(), "b h w k -> b k h w")
    latents = model.injector.prior(cond, generator)
    columns = [
        model.sample(
            cond,
            1,
            sampler="collage.label_collage",
            class_weights=weights,
            intensity=alpha,
            latents=latents,
        ).image.cpu()
        for alpha in INTENSITIES
    ]
    tiles = condition_tiles(shown.to("cpu"), palette)
    painted_tiles = colorize_labels(painted.cpu(), k, palette)
    rows = [[tiles[i], painted_tiles[i], *(c[i] for c in columns)] for i in range(cond.batch_size)]
    # plain ASCII: the default PIL font has no Greek letters
    labels = ["label map", "painted", *(f"a = {a:g}" for a in INTENSITIES)]
    note = (
        "label_collage.png: per photo the label map, its right half repainted with the left "
        "half's main class, and one code rendered at α = 0, ½, 1 (sCBN, eq. 2)"
    )

    def write(path: Path) -> None:
        save_image(image_grid(rows, labels=labels), path)

    return [DemoPicture("label_collage", write, note=note)]
