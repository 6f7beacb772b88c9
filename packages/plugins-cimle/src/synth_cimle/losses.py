"""``cimle.distance``: eq. (1) and its rarity-masked form (§5.2.4).

``L(ỹ, y) = Σ_i λ_i ‖M̂_i ∘ (Φ_i(ỹ) − Φ_i(y))‖`` where ``Φ_0`` may be the raw pixels and the
others are backbone feature maps (core's :class:`synth.nn.backbones.FeatureExtractor`), the
norms are per-element means (ℓ1 or squared ℓ2), and ``M̂_i`` is the optional normalised
rarity mask resized (area average) to the size of ``Φ_i``.

Presets (the official code's features; the layer weights λ_i are tuned for them):

``sr`` (niopeng/SRIM-pytorch ``SRIM_model.py``, ``define_F``)
    pixel L1 × 1e-2 on ``[0, 1]`` images + L1 of VGG19 ``conv5_4`` (before its ReLU, torchvision
    max-pooling VGG on ImageNet-normalised ``[0, 1]`` input). The paper (§5.1.1) names the ℓ2
    distance of raw pixels and of ``relu5_4`` instead, without weights; the recipes keep the
    official L1 at ``conv5_4`` (its code and checkpoints use it); the paper's form is
    ``criterion="l2", pixel_criterion="l2", layers=["relu5_4"]``.
``layout`` (zth667/Diverse-Image-Synthesis-from-Semantic-Layout ``build_vgg19``, after CRN)
    L1 of the VGG19 input and of ``relu1_2``, ``relu2_2``, ``relu3_2``, ``relu4_2``, ``relu5_2``
    with weights 1, 1/1.4, 1/1.8, 1/1.3, 1/2.2, 10/0.62, rarity-masked when a rarity model is
    given. As in the official code the network sees ``0–255`` RGB minus the ImageNet mean
    (``normalize="caffe"``) and pools by averaging (``pool="avg"``); the paper's "conv1_2 …
    conv5_2" are the official code's names for these ReLU outputs (its ``build_net('conv')``
    includes the ReLU). The official weights are MatConvNet's VGG19 (``imagenet-vgg-verydeep-19``,
    the Oxford model, RGB): give them converted to ``features.*`` keys as ``weights`` for the
    official balance of the terms; torchvision's VGG19 expects ImageNet-normalised input, so
    with it the terms are not balanced as tuned.

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
from torch import Tensor, nn

from synth import Condition, Loss, LossConfig, LossInputs

__all__ = ["CAFFE_MEAN", "PRESETS", "Distance", "Preset", "Target"]

#: MatConvNet/Caffe VGG input mean (RGB, 0–255) subtracted by the official layout code
CAFFE_MEAN = (123.68, 116.779, 103.939)


@dataclass(frozen=True)
class Preset:
    """A distance preset: pixel weight, backbone layers and weights, backbone input
    convention (``normalize``) and pooling."""

    pixel_weight: float
    layers: tuple[str | int, ...]
    layer_weights: tuple[float, ...]
    normalize: Literal["imagenet", "caffe", "none"] = "imagenet"
    pool: Literal["max", "avg"] = "max"


PRESETS: dict[str, Preset] = {
    "sr": Preset(1e-2, ("conv5_4",), (1.0,)),
    "layout": Preset(
        0.0,
        ("input", "relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2"),
        (1.0, 1 / 1.4, 1 / 1.8, 1 / 1.3, 1 / 2.2, 10 / 0.62),
        normalize="caffe",
        pool="avg",
    ),
    "none": Preset(0.0, (), ()),
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
        pixel_range: Literal["[0,1]", "[-1,1]"] = "[0,1]"
        """range the pixel term sees (official SRIM: ``[0, 1]`` images)"""
        backbone: str = "vgg19"
        layers: list[str | int] | None = None
        layer_weights: list[float] | None = None
        criterion: Literal["l1", "l2"] = "l1"
        weights: str = "imagenet"
        normalize: Literal["imagenet", "caffe", "none"] | None = None
        """backbone input: ``imagenet`` = ``[0, 1]`` with ImageNet mean/std, ``caffe`` =
        ``0–255`` RGB minus :data:`CAFFE_MEAN` (official layout code), ``none`` = synth's
        ``[-1, 1]``; None: the preset's"""
        pool: Literal["max", "avg"] | None = None
        """VGG pooling: ``avg`` replaces the max-pools (official layout code); None: the
        preset's"""
        rarity: str | None = None
        """path of a rarity file written by :func:`synth_cimle.rarity_scores` (loss rebalancing)"""
        channels_last: bool = True
        """run the backbone in ``channels_last`` on CPU (oneDNN's native layout: VGG19 at
        128² is ~30% faster; the features agree to float rounding); other devices unchanged"""

    config: Config
    state_in_checkpoint: ClassVar[bool] = False

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        c = self.config
        preset = PRESETS[c.preset]
        self.pixel_weight = float(
            c.pixel_weight if c.pixel_weight is not None else preset.pixel_weight
        )
        layers = list(c.layers if c.layers is not None else preset.layers)
        lw = list(c.layer_weights if c.layer_weights is not None else preset.layer_weights)
        if len(lw) != len(layers):
            raise ValueError(
                f"cimle.distance: {len(layers)} layers but {len(lw)} layer_weights; give one "
                "weight per layer"
            )
        if not layers and self.pixel_weight == 0:
            raise ValueError("cimle.distance has no term: set layers or pixel_weight")
        self.layer_weights = [float(w) for w in lw]
        self.normalize = c.normalize if c.normalize is not None else preset.normalize
        self.pool = c.pool if c.pool is not None else preset.pool
        self.register_buffer(
            "caffe_mean", torch.tensor(CAFFE_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.extractor = None
        if layers:
            from synth.nn.backbones import FeatureExtractor

            self.extractor = FeatureExtractor(
                backbone=c.backbone,
                layers=layers,
                weights=c.weights,
                # the caffe convention is applied here (core knows imagenet and none)
                normalize="imagenet" if self.normalize == "imagenet" else "none",
            )
            if self.pool == "avg":
                _average_pooling(self.extractor, c.backbone)
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
        """``Φ_i(x)`` for every backbone layer (empty without layers); ``x [B,3,H,W]`` in
        ``[-1, 1]``. With ``normalize="caffe"`` the backbone (and the ``input`` layer) sees
        ``127.5·(x + 1) − CAFFE_MEAN``, the official layout code's input."""
        if self.extractor is None:
            return []
        if self.normalize == "caffe":
            x = (x + 1) * 127.5 - self.caffe_mean.to(x.dtype)
        if self.config.channels_last and x.device.type == "cpu":
            self._to_channels_last()
            x = x.contiguous(memory_format=torch.channels_last)
        return self.extractor(x)

    def _to_channels_last(self) -> None:
        """Keep the (frozen) backbone's conv weights in ``channels_last`` on CPU: oneDNN would
        otherwise reorder them on every call. Checked per call, since ``.to(device)`` or a
        checkpoint load may hand back contiguous weights."""
        assert self.extractor is not None
        for m in self.extractor.modules():
            w = getattr(m, "weight", None)
            if (
                isinstance(m, nn.Conv2d)
                and w is not None
                and not w.is_contiguous(memory_format=torch.channels_last)
            ):
                m.to(memory_format=torch.channels_last)

    def _pixels(self, x: Tensor) -> Tensor:
        """The images the pixel term compares (``pixel_range``)."""
        return (x + 1) * 0.5 if self.config.pixel_range == "[0,1]" else x

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

    def terms_to(self, x: Tensor, target: Target) -> Tensor:
        """The weighted terms ``λ_i ‖M̂ ∘ (Φ_i(x) − Φ_i(y))‖`` of ``x: [B·n, 3, H, W]`` (ordered
        ``(b n)``) against a prepared target: ``[B, n, T]``, T = pixel term (when its weight is
        non-zero) then one per layer. Their sum is :meth:`distance_to`."""
        b = target.image.shape[0]
        if x.shape[0] % b:
            raise ValueError(f"{x.shape[0]} candidates for {b} targets: need n per target")
        n = x.shape[0] // b
        terms = []
        if self.pixel_weight:
            crit = self.config.pixel_criterion
            px, py = self._pixels(x), self._pixels(target.image)
            terms.append(self.pixel_weight * self._term(px, py, target.mask, crit, n))
        if self.extractor is not None:
            for w, fx, fy in zip(self.layer_weights, self.features(x), target.features):
                terms.append(w * self._term(fx, fy, target.mask, self.config.criterion, n))
        return torch.stack(terms, dim=-1)

    def distance_to(self, x: Tensor, target: Target) -> Tensor:
        """Distances of ``x: [B·n, 3, H, W]`` (ordered ``(b n)``) to a prepared target ``[B]``.

        Returns ``[B, n]``. The target's features are broadcast, never recomputed.
        """
        return self.terms_to(x, target).sum(-1)

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


def _average_pooling(extractor: Any, backbone: str) -> None:
    """Replace the VGG max-pools of ``extractor.features`` by 2×2 average pools (stride 2),
    as the official layout code (CRN's ``build_net('pool')``: ``tf.nn.avg_pool``)."""
    if not getattr(extractor, "is_vgg", False):
        raise ValueError(
            f"cimle.distance: pool='avg' replaces VGG max-pools; backbone {backbone!r} is not "
            "a VGG: use pool='max' or a vgg backbone"
        )
    for i, m in enumerate(extractor.features):
        if isinstance(m, nn.MaxPool2d):
            extractor.features[i] = nn.AvgPool2d(m.kernel_size, m.stride)
