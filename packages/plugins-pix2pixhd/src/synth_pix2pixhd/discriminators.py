"""pix2pixHD discriminators: the 70×70 PatchGAN and its multi-scale version (paper §3.2).

Official ``NLayerDiscriminator`` layout: 4×4 convolutions with padding ``ceil(3/2) = 2``,
LeakyReLU(0.2); the first layer has no norm; ``n_layers`` stride-2 convs (widths
``ndf·2^i``, at most 512), one stride-1 conv, and a stride-1 1-channel logit conv. Instance
norm (no affine; statistics in fp32). ``MultiscaleDiscriminator`` runs ``num_d`` copies on the
input average-pooled (3×3, stride 2, pad 1, ``count_include_pad=False``) between scales.

The conditional input is the official ``cat(one-hot label map, instance edges, image)``. At the
full-resolution scale the first conv reads the one-hot part by gathering
(:func:`synth.nn.layers.label_conv2d`, exact, ~K× fewer multiply-adds) and only the edges and image
densely; the weight keeps the dense conv's shape, so the official keys load unchanged.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from synth import Condition, Discriminator, DiscriminatorOutput, PartConfig
from synth.nn import ops
from synth.nn.layers import label_conv2d
from synth.nn.norms import instance_normalize

from .generators import instance_edges

__all__ = [
    "MultiscaleDiscriminator",
    "NLayerD",
    "PatchDiscriminator",
    "discriminator_input",
    "discriminator_parts",
    "label_first_conv",
]


def label_first_conv(conv: nn.Conv2d, labels: Tensor, rest: Tensor) -> Tensor:
    """``conv(cat(one_hot(labels), rest))`` with the one-hot part gathered, not convolved.

    ``conv.weight: [C_out, K + E, k, k]`` is the dense conv's weight, ``labels: LongTensor[B, H,
    W]`` ids in ``[0, K)``, ``rest: [B, E, H, W]`` the non-one-hot channels in their official
    order (instance edges if any, then the image). The slice ``weight[:, :K]`` is applied by
    :func:`synth.nn.layers.label_conv2d` (zero padding = "no class", exact), ``weight[:, K:]`` by
    a dense conv; the bias is added once. Returns ``[B, C_out, H', W']``.
    """
    w = conv.weight
    k = w.shape[1] - rest.shape[1]
    stride, padding = conv.stride[0], conv.padding[0]
    out = label_conv2d(labels, w[:, :k], conv.bias, stride=stride, padding=padding)
    dense = F.conv2d(rest.to(w.dtype), w[:, k:], None, stride=stride, padding=padding)
    return out + dense.to(out.dtype)


class _DLayer(nn.Module):
    """``conv 4×4 (pad 2) -> [instance norm] -> LeakyReLU(0.2)``.

    ``forward(x)`` convolves ``x`` densely; ``forward(rest, labels)`` reads
    ``cat(one_hot(labels), rest)`` with the one-hot part gathered (:func:`label_first_conv`).
    """

    def __init__(self, cin: int, cout: int, stride: int, norm: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 4, stride=stride, padding=2)
        self.norm = norm

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        x = self.conv(x) if labels is None else label_first_conv(self.conv, labels, x)
        if self.norm:
            x = instance_normalize(x).to(x.dtype)
        return F.leaky_relu(x, 0.2)


class NLayerD(nn.Module):
    """One scale: ``[B, C_in, H, W] -> (logits [B, 1, h, w], [n_layers + 1 activations])``.

    ``forward(x, labels)`` instead takes the label map ``[B, H, W]`` and ``x`` = the input
    without its one-hot channels (``[B, C_in - K, H, W]``): same result, the first conv gathers.
    """

    def __init__(self, in_channels: int, ndf: int, n_layers: int) -> None:
        super().__init__()
        layers = [_DLayer(in_channels, ndf, 2, norm=False)]
        nf = ndf
        for _ in range(1, n_layers):
            prev, nf = nf, min(nf * 2, 512)
            layers.append(_DLayer(prev, nf, 2, norm=True))
        prev, nf = nf, min(nf * 2, 512)
        layers.append(_DLayer(prev, nf, 1, norm=True))
        self.layers = nn.ModuleList(layers)
        self.logits = nn.Conv2d(nf, 1, 4, stride=1, padding=2)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> tuple[Tensor, list[Tensor]]:
        feats = []
        for i, layer in enumerate(self.layers):
            x = layer(x, labels) if i == 0 else layer(x)
            feats.append(x)
        return self.logits(x), feats


def discriminator_input(
    image: Tensor, cond: Condition, num_classes: int | None, use_instances: bool
) -> Tensor:
    """pix2pixHD's D input ``cat(one-hot [B, K, H, W], edges [B, 1, H, W], image [B, 3, H, W])``.

    The label and instance maps are nearest-resized to the image size; pieces are left out when
    ``num_classes`` is None / ``use_instances`` is False.
    """
    labels, rest = discriminator_parts(image, cond, num_classes, use_instances)
    if labels is None or num_classes is None:
        return rest
    return torch.cat([ops.one_hot(labels, num_classes, dtype=image.dtype), rest], dim=1)


def discriminator_parts(
    image: Tensor, cond: Condition, num_classes: int | None, use_instances: bool
) -> tuple[Tensor | None, Tensor]:
    """:func:`discriminator_input` split into ``(labels, rest)``: the label map nearest-resized
    to the image size (``LongTensor[B, H, W]``, None when ``num_classes`` is None) and the other
    channels ``cat(edges [B, 1, H, W], image [B, 3, H, W])`` (edges only with ``use_instances``).
    """
    size = tuple(image.shape[-2:])
    labels = None
    if num_classes is not None:
        if cond.label_map is None:
            raise ValueError(
                f"the discriminator is conditional (num_classes={num_classes}) and reads "
                "Condition.label_map, which is missing; set conditional: false to drop it"
            )
        labels = ops.resize_labels(cond.label_map, size)
    parts: list[Tensor] = []
    if use_instances:
        if cond.instance_map is None:
            raise ValueError(
                "the discriminator has use_instances: true and reads Condition.instance_map, "
                "which is missing; give the data an instance map or set use_instances: false"
            )
        inst = ops.resize_labels(cond.instance_map, size)
        parts.append(instance_edges(inst).to(image.dtype))
    return labels, (torch.cat([*parts, image], dim=1) if parts else image)


class PatchDiscriminator(Discriminator):
    """pix2pixHD's single-scale 70×70 PatchGAN with intermediate features.

    ``forward(image [B, 3, H, W], cond) -> DiscriminatorOutput(logits=[[B, 1, h, w]],
    features=[[n_layers + 1 activations]])``. Conditional on the one-hot label map (``num_classes``
    offered by the generator) and, with ``use_instances``, on the instance boundary map.
    """

    class Config(PartConfig):
        num_classes: int | None = Field(None, ge=1, description="K (runtime argument)")
        conditional: bool = Field(True, description="read the label map (and instance edges)")
        use_instances: bool = Field(False, description="concatenate the instance boundary map")
        ndf: int = Field(64, ge=1)
        n_layers: int = Field(3, ge=1, description="stride-2 layers (n_layers_D)")

    config: Any
    fixed_num_d: ClassVar[int | None] = 1

    @classmethod
    def requirements(cls, config: PartConfig | None = None) -> frozenset[str]:
        """``label_map`` when conditional on a known K; ``instance_map`` with use_instances."""
        out: set[str] = set()
        if config is not None and config.conditional:
            if config.num_classes is not None:
                out.add("label_map")
            if config.use_instances:
                out.add("instance_map")
        return frozenset(out)

    @property
    def num_d(self) -> int:
        return self.fixed_num_d or int(self.config.num_d)

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        cfg = self.config
        self.label_classes = cfg.num_classes if cfg.conditional else None
        self.reads_instances = bool(cfg.conditional and cfg.use_instances)
        cin = (self.label_classes or 0) + int(self.reads_instances) + self.image_channels
        self.in_channels = cin
        self.scales = nn.ModuleList(NLayerD(cin, cfg.ndf, cfg.n_layers) for _ in range(self.num_d))

    def forward(self, image: Tensor, cond: Condition) -> DiscriminatorOutput:
        """Per-scale logits and features, finest scale first.

        Scale 0 reads the one-hot label map by gathering (its first conv is
        :func:`label_first_conv`). The coarser scales see the official input average-pooled,
        where the pooled one-hot map is fractional at class borders (no longer one-hot), so they
        keep the dense conv of ``cat(pooled one-hot, pooled edges, pooled image)``.
        """
        labels, rest = discriminator_parts(image, cond, self.label_classes, self.reads_instances)
        logits: list[Tensor] = []
        features: list[list[Tensor]] = []
        x = rest
        for i, net in enumerate(self.scales):
            if i == 0:  # full resolution: the one-hot part by gathering
                out, feats = net(rest, labels)
            else:
                # The official code avg-pools cat(one-hot, edges, image): the pooled one-hot map
                # is fractional at class borders, no longer one-hot, so no gather here (dense).
                k = self.label_classes
                if i == 1 and labels is not None and k is not None:  # official input, to pool
                    x = torch.cat([ops.one_hot(labels, k, dtype=image.dtype), rest], dim=1)
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
                out, feats = net(x)
            logits.append(out)
            features.append(feats)
        return DiscriminatorOutput(logits=logits, features=features)


class MultiscaleDiscriminator(PatchDiscriminator):
    """pix2pixHD's multi-scale discriminator D1…D_num_d (paper §3.2, eq. 3).

    Scale ``s`` (0 = finest) sees the conditional input average-pooled ``s`` times (3×3,
    stride 2, pad 1, ``count_include_pad=False``); each scale is a :class:`NLayerD`.
    ``forward(image, cond) -> DiscriminatorOutput`` with ``num_d`` logits ``[B, 1, h_s, w_s]``
    and feature lists (finest first; the official code's ``scale{num_D-1}`` is our scale 0).
    """

    class Config(PatchDiscriminator.Config):
        num_d: int = Field(2, ge=1, description="number of scales (num_D)")

    fixed_num_d: ClassVar[int | None] = None
