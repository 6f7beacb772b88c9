"""``pix2pixhd.feature_matching``: core's feature matching with the official weighting."""

from __future__ import annotations

from typing import ClassVar, Literal

from synth.parts.losses import FeatureMatching as _CoreFeatureMatching
from synth.parts.losses import FeatureMatchingConfig

__all__ = ["FeatureMatching"]


class _Config(FeatureMatchingConfig):
    weighting: Literal["pix2pixhd", "spade"] = "pix2pixhd"


class FeatureMatching(_CoreFeatureMatching):
    """Discriminator feature-matching loss (pix2pixHD eq. 4) with the official weights.

    ``Σ_s Σ_l 4/(n_layers_D + 1) · 1/num_D · mean|D_s^l(fake) − D_s^l(real).detach()|``
    over the ``n_layers_D + 1`` intermediate activations of each of the ``num_D`` scales
    (the logits excluded), as the official ``lambda_feat``-scaled term before ``lambda_feat``.
    A thin subclass of ``core.feature_matching`` defaulting to ``weighting="pix2pixhd"``.
    """

    Config: ClassVar[type[FeatureMatchingConfig]] = _Config
