"""What generators and discriminators return, and what losses receive."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from torch import Tensor

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
