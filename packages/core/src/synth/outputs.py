"""What generators and discriminators return, and what losses receive."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor
from torchvision.transforms.functional import to_pil_image
from torchvision.utils import make_grid

if TYPE_CHECKING:
    from PIL.Image import Image

from .condition import Condition
from .latents import Latents

__all__ = ["DiscriminatorOutput", "LossInputs", "Phase", "SynthesisOutput"]

Phase = Literal["generator", "discriminator", "encoder"]


@dataclass
class SynthesisOutput:
    """A generator's (or sampler's) output.

    Fields:
        image: ``[B, C, H, W]`` in ``[-1, 1]``. Samplers return ``n`` samples per input as
            ``[B·n, C, H, W]`` ordered ``(b n)``: ``rearrange(image, "(b n) c h w -> b n c h w")``.
        features: one ``[B, C_i, H_i, W_i]`` per stage when asked (``return_features=True``).
        pyramid: per-scale RGB ``[B, C, H_i, W_i]``, coarsest first, for generators with
            per-scale heads; the last level is ``image`` itself and level i is the output size
            over the generator's ``pyramid_scales[i]``.
        latents: the codes that produced ``image`` (samplers fill it so results can be re-made).
        extras: sampler-specific results, e.g. best-of-n's per-input ``"distance"`` ``[B]``.
    """

    image: Tensor
    features: list[Tensor] | None = None
    pyramid: list[Tensor] | None = None
    latents: Latents | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)

    def to_pil(self) -> list[Image]:
        """One PIL image per row of ``image [B, C, H, W]`` (RGB for C = 3, "L" for C = 1).

        ``[-1, 1]`` maps to ``0..255`` rounded to the nearest level (out-of-range values are
        clamped, NaN drawn mid-grey), the same bytes as the Trainer's sample grids.
        """
        return [to_pil_image(im) for im in _uint8(self.image)]

    def save(self, path: str | os.PathLike, nrow: int = 8, padding: int = 2) -> list[Path]:
        """Write the images as PNG (or the format the suffix names); returns the files written.

        ``path`` with an ``{i}`` field (``"out/sample_{i:02d}.png"``) writes one file per image,
        numbered in batch order (``(b n)`` for samplers: ``i = b·n + j``). Otherwise one grid
        (:func:`torchvision.utils.make_grid`, ``nrow`` images a row, ``padding`` white pixels
        between them) goes to ``path``: for ``model.sample(cond, n)`` pass ``nrow=n`` to get
        one row per input. Parent folders are made.
        """
        images = _uint8(self.image)
        text = os.fspath(path)
        if "{i" in text:
            paths = [Path(text.format(i=i)) for i in range(images.shape[0])]
        else:
            grid = make_grid(images, nrow=nrow, padding=padding, pad_value=255)
            images, paths = grid[None], [Path(text)]
        for im, p in zip(images, paths, strict=True):
            p.parent.mkdir(parents=True, exist_ok=True)
            to_pil_image(im).save(p)
        return paths


def _uint8(images: Tensor) -> Tensor:
    """``[B, C, H, W]`` in ``[-1, 1]`` → ``uint8`` ``[B, C, H, W]`` on the CPU."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"SynthesisOutput.image has shape {tuple(images.shape)}: to_pil/save need "
            "[B, 3, H, W] or [B, 1, H, W]"
        )
    t = torch.nan_to_num(images.detach().float().cpu(), nan=0.0).clamp(-1, 1)
    return ((t + 1) * 127.5).round().to(torch.uint8)


@dataclass
class DiscriminatorOutput:
    """Per-scale logits and per-scale lists of intermediate features.

    Fields:
        logits: one ``[B, 1, h_s, w_s]`` (or ``[B, 1]``) per scale, finest first.
        features: per scale, the intermediate feature maps (for feature matching).
    """

    logits: list[Tensor]
    features: list[list[Tensor]] = field(default_factory=list)


@dataclass
class LossInputs:
    """Everything a loss may read in one phase of one training step.

    Fields:
        phase: which network is being updated ("generator", "discriminator", "encoder").
        cond: the batch's Condition.
        real: ``[B, C, H, W]`` ground-truth images in ``[-1, 1]``.
        fake: the generator's output for the batch.
        latents: the codes used (``kl`` set when they came from a posterior).
        disc_real / disc_fake: discriminator outputs on real and generated images.
        samples: ``[B, N, C, H, W]`` several samples per input (diversity losses).
        sample_latents: the codes of ``samples``, batch ``[B·N]`` ordered ``(b n)``.
        sample_output: the generator's output for the ``B·N`` samples (its ``pyramid`` and
            ``extras``, e.g. per-scale codes), for losses that read more than final images.
    """

    phase: Phase
    cond: Condition
    real: Tensor | None = None
    fake: SynthesisOutput | None = None
    latents: Latents | None = None
    disc_real: DiscriminatorOutput | None = None
    disc_fake: DiscriminatorOutput | None = None
    samples: Tensor | None = None
    sample_latents: Latents | None = None
    sample_output: SynthesisOutput | None = None
