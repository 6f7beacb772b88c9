"""``core.patch_discriminator``: a PatchGAN discriminator, optionally multi-scale.

PatchGAN (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial
Networks") classifies overlapping patches; pix2pixHD (Wang et al. 2018) runs copies of it on an
image pyramid. Layer layout follows pix2pixHD's ``NLayerDiscriminator``: 4x4 convolutions with
padding 2, stride 2 for the first ``n_layers`` and stride 1 for the last two, instance norm
(fp32 statistics) on all but the first and the logit layer, LeakyReLU(0.2).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from ..condition import Condition
from ..config import PartConfig
from ..nn import ops
from ..nn.norms import instance_normalize
from ..outputs import DiscriminatorOutput
from .base import Discriminator

__all__ = ["PatchDiscriminator"]


class _Layer(nn.Module):
    """``conv4x4 -> [instance norm] -> LeakyReLU(0.2)``: ``[B, C_in, h, w] -> [B, C_out, h', w']``."""

    def __init__(self, conv: nn.Conv2d, norm: bool) -> None:
        super().__init__()
        self.conv = conv
        self.norm = norm

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.norm:
            x = instance_normalize(x).to(x.dtype)
        return F.leaky_relu(x, 0.2)


class _NLayer(nn.Module):
    """One scale's PatchGAN: ``[B, C_in, H, W] -> logits [B, 1, h, w]`` plus the activations."""

    def __init__(self, in_channels: int, ndf: int, n_layers: int, sn: bool) -> None:
        super().__init__()

        def conv(cin: int, cout: int, stride: int) -> nn.Conv2d:
            c = nn.Conv2d(cin, cout, 4, stride=stride, padding=2)
            return _spectral_norm(c) if sn else c

        layers = [_Layer(conv(in_channels, ndf, 2), norm=False)]
        nf = ndf
        for _ in range(1, n_layers):
            prev, nf = nf, min(nf * 2, 512)
            layers.append(_Layer(conv(prev, nf, 2), norm=True))
        prev, nf = nf, min(nf * 2, 512)
        layers.append(_Layer(conv(prev, nf, 1), norm=True))
        self.layers = nn.ModuleList(layers)
        self.logits = conv(nf, 1, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return self.logits(x), feats


class PatchDiscriminator(Discriminator):
    """PatchGAN discriminator at ``num_scales`` scales (pix2pixHD's multi-scale layout).

    ``forward(image: [B, 3, H, W], cond)``: when ``num_classes`` is set and ``conditional``,
    the one-hot label map ``[B, K, H, W]`` (nearest-resized to the image size) is concatenated
    to the image. Scale ``s`` sees the input average-pooled ``s`` times (3x3, stride 2,
    padding 1, ``count_include_pad=False``) and has its own network of ``n_layers`` stride-2
    layers plus one stride-1 layer (widths ``ndf * 2**i``, at most 512) and a 1-channel logit
    conv. Returns ``DiscriminatorOutput(logits=[[B, 1, h_s, w_s] per scale, finest first],
    features=[[each layer's activation] per scale])``; the logits are not in ``features``.
    """

    class Config(PartConfig):
        num_classes: int | None = Field(
            None, ge=1, description="K (runtime argument, from the generator)"
        )
        conditional: bool = Field(True, description="concatenate the one-hot label map")
        ndf: int = Field(16, ge=1)
        n_layers: int = Field(3, ge=1)
        num_scales: int = Field(1, ge=1)
        spectral_norm: bool = False

    config: Config

    @classmethod
    def requirements(cls, config: PartConfig | None = None) -> frozenset[str]:
        """``label_map`` when conditional on a known ``num_classes``."""
        if config is not None and config.conditional and config.num_classes is not None:
            return frozenset({"label_map"})
        return cls.requires

    def __init__(self, config: Config | dict | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        cfg = self.config
        self.reads_labels = cfg.conditional and cfg.num_classes is not None
        cin = self.image_channels + (cfg.num_classes if self.reads_labels else 0)
        self.scales = nn.ModuleList(
            _NLayer(cin, cfg.ndf, cfg.n_layers, cfg.spectral_norm) for _ in range(cfg.num_scales)
        )

    def forward(self, image: Tensor, cond: Condition) -> DiscriminatorOutput:
        """``image: [B, 3, H, W]`` -> per-scale logits and features (finest first)."""
        x = image
        if self.reads_labels:
            if cond.label_map is None:
                raise ValueError(
                    "core.patch_discriminator is conditional (num_classes="
                    f"{self.config.num_classes}) and reads Condition.label_map, which is "
                    "missing: give the Condition a label_map, or set conditional: false on the "
                    "discriminator"
                )
            labels = ops.resize_labels(cond.label_map, tuple(image.shape[-2:]))
            onehot = ops.one_hot(labels, self.config.num_classes, dtype=image.dtype)
            x = torch.cat([image, onehot], dim=1)
        logits: list[Tensor] = []
        features: list[list[Tensor]] = []
        for i, net in enumerate(self.scales):
            if i > 0:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out, feats = net(x)
            logits.append(out)
            features.append(feats)
        return DiscriminatorOutput(logits=logits, features=features)
