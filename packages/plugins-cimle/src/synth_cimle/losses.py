"""``cimle.distance``: eq. (1) and its rarity-masked form (§5.2.4).

``L(ỹ, y) = Σ_i λ_i ‖M̂_i ∘ (Φ_i(ỹ) − Φ_i(y))‖`` where ``Φ_0`` may be the raw pixels and the
others are backbone feature maps (core's :class:`synth.nn.backbones.FeatureExtractor`), the
norms are per-element means (ℓ1 or squared ℓ2), and ``M̂_i`` is the optional normalised
rarity mask resized (area average) to the size of ``Φ_i``.

Presets: ``sr`` (official SRIM: pixel L1 × 1e-2 + VGG19 conv5_4 ImageNet-normalised L1) and
``layout`` (VGG19 input, conv1_2, conv2_2, conv3_2, conv4_2, conv5_2 with weights 1, 1/1.4,
1/1.8, 1/1.3, 1/2.2, 10/0.62, L1, rarity-masked when a rarity model is given).

For code selection the target's features are computed once per input
(:meth:`Distance.prepare`) and compared with many candidates
(:meth:`Distance.distance_to`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from synth import Condition, Loss, LossConfig, LossInputs

__all__ = ["PRESETS", "Distance", "Target"]

#: name -> (pixel weight, layers, layer weights)
PRESETS: dict[str, tuple[float, list[str | int], list[float]]] = {
    "sr": (1e-2, ["conv5_4"], [1.0]),
    "layout": (
        0.0,
        ["input", "conv1_2", "conv2_2", "conv3_2", "conv4_2", "conv5_2"],
        [1.0, 1 / 1.4, 1 / 1.8, 1 / 1.3, 1 / 2.2, 10 / 0.62],
    ),
}


@dataclass
class Target:
    """A prepared target: ``image [B,3,H,W]``, ``features`` (one per layer), ``mask`` or None."""

    image: Tensor
    features: list[Tensor]
    mask: Tensor | None

    def index(self, idx: Tensor) -> Target:
        """Rows ``idx`` (``LongTensor[N]``) of every tensor."""
        return Target(
            self.image[idx],
            [f[idx] for f in self.features],
            None if self.mask is None else self.mask[idx],
        )


class Distance(Loss):
    """Weighted pixel + backbone-feature distance, eq. (1) (§3.7, §5.1.1, §5.2.1, §5.2.4).

    ``distance(x, y, mask=None) -> [B]``; ``forward(batch)`` is its batch mean (the inner-loop
    loss of Algorithm 1, ``Σ_{i∈S̃} L / |S̃|``), with the rarity mask computed from
    ``batch.cond.label_map`` and ``batch.real`` when ``rarity`` names a fitted rarity file.
    ``layers``/``layer_weights``/``pixel_weight`` override the preset.
    """

    class Config(LossConfig):
        preset: Literal["sr", "layout", "none"] = "sr"
        pixel_weight: float | None = None
        pixel_criterion: Literal["l1", "l2"] = "l1"
        backbone: str = "vgg19"
        layers: list[str | int] | None = None
        layer_weights: list[float] | None = None
        criterion: Literal["l1", "l2"] = "l1"
        weights: str = "imagenet"
        normalize: Literal["imagenet", "none"] = "imagenet"
        rarity: str | None = None
        """path of a rarity file written by :func:`synth_cimle.rarity_scores` (loss rebalancing)"""

    config: Config
    state_in_checkpoint: ClassVar[bool] = False

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        c = self.config
        pw, layers, lw = PRESETS.get(c.preset, (0.0, [], []))
        self.pixel_weight = float(c.pixel_weight if c.pixel_weight is not None else pw)
        layers = list(c.layers if c.layers is not None else layers)
        lw = list(c.layer_weights if c.layer_weights is not None else lw)
        if len(lw) != len(layers):
            raise ValueError(
                f"cimle.distance: {len(layers)} layers but {len(lw)} layer_weights; give one "
                "weight per layer"
            )
        if not layers and self.pixel_weight == 0:
            raise ValueError("cimle.distance has no term: set layers or pixel_weight")
        self.layer_weights = [float(w) for w in lw]
        self.extractor = None
        if layers:
            from synth.nn.backbones import FeatureExtractor

            self.extractor = FeatureExtractor(
                backbone=c.backbone, layers=layers, weights=c.weights, normalize=c.normalize
            )
        self.rarity_model = None
        if c.rarity is not None:
            from .rebalance import RarityModel

            self.rarity_model = RarityModel.load(c.rarity)

    def train(self, mode: bool = True) -> Distance:
        super().train(mode)
        if self.extractor is not None:
            self.extractor.train(False)
        return self

    # ------------------------------------------------------------------ pieces
    def mask_for(self, real: Tensor, cond: Condition | None) -> Tensor | None:
        """The normalised rarity mask ``[B, 1, H, W]`` (§5.2.4), or None without a rarity model."""
        if self.rarity_model is None or cond is None or cond.label_map is None:
            return None
        return self.rarity_model.mask(real, cond.label_map)

    def features(self, x: Tensor) -> list[Tensor]:
        """``Φ_i(x)`` for every backbone layer (empty without layers)."""
        return [] if self.extractor is None else self.extractor(x)

    def prepare(self, y: Tensor, mask: Tensor | None = None) -> Target:
        """Target features computed once, without gradients: ``y [B,3,H,W]`` -> :class:`Target`."""
        with torch.no_grad():
            return Target(y, [f.detach() for f in self.features(y)], mask)

    @staticmethod
    def _term(a: Tensor, b: Tensor, mask: Tensor | None, crit: str, n: int) -> Tensor:
        """Per-candidate mean of ``M ∘ |a − b|`` (or squared); ``a: [B·n, ...]``, ``b: [B, ...]``."""
        a = rearrange(a.float(), "(b n) c h w -> b n c h w", n=n)
        d = a - b.float()[:, None]
        d = d.abs() if crit == "l1" else d.square()
        if mask is not None:
            m = mask.float()
            if tuple(m.shape[-2:]) != tuple(d.shape[-2:]):
                m = F.adaptive_avg_pool2d(m, d.shape[-2:])
            d = d * m[:, None]
        return d.flatten(2).mean(2)

    def distance_to(self, x: Tensor, target: Target) -> Tensor:
        """Distances of ``x: [B·n, 3, H, W]`` (ordered ``(b n)``) to a prepared target ``[B]``.

        Returns ``[B, n]``. The target's features are broadcast, never recomputed.
        """
        b = target.image.shape[0]
        if x.shape[0] % b:
            raise ValueError(f"{x.shape[0]} candidates for {b} targets: need n per target")
        n = x.shape[0] // b
        total = x.new_zeros(b, n, dtype=torch.float32)
        if self.pixel_weight:
            crit = self.config.pixel_criterion
            total = total + self.pixel_weight * self._term(x, target.image, target.mask, crit, n)
        if self.extractor is not None:
            for w, fx, fy in zip(self.layer_weights, self.features(x), target.features):
                total = total + w * self._term(fx, fy, target.mask, self.config.criterion, n)
        return total

    # ------------------------------------------------------------------ Loss API
    def distance(self, x: Tensor, y: Tensor, mask: Tensor | None = None) -> Tensor:
        """``L(x_b, y_b)`` per sample, ``[B]`` (target features without gradients)."""
        if x.ndim != 4 or x.shape != y.shape:
            raise ValueError(
                f"cimle.distance expects two image batches of one shape [B, C, H, W], got "
                f"{tuple(x.shape)} and {tuple(y.shape)}"
            )
        return self.distance_to(x, self.prepare(y, mask))[:, 0]

    def forward(self, batch: LossInputs) -> Tensor:
        if batch.fake is None or batch.real is None:
            raise ValueError("cimle.distance needs batch.fake and batch.real")
        mask = self.mask_for(batch.real, batch.cond)
        return self.distance(batch.fake.image, batch.real, mask).mean()
