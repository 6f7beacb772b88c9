"""The PatchGAN family: ``core.patch_discriminator`` and the blocks plugin discriminators configure.

PatchGAN (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial
Networks") classifies overlapping patches; pix2pixHD (Wang et al. 2018, §3.2, eq. 3) runs
copies of it on an image pyramid; SPADE (Park et al. 2019) is the same network with spectral
norm on its middle convolutions. One scale (:class:`PatchGAN`, its geometry a
:class:`PatchLayout`) is ``depth`` layers ``conv k×k -> [norm] -> LeakyReLU(0.2)`` (stride 2,
the last of two or more stride 1; widths ``ndf·2^j`` up to a cap; no norm on the first), then
a stride-1 one-channel logit conv. :class:`PatchDiscriminator` runs ``num_scales`` of them,
scale ``s`` on the input average-pooled ``s`` times (:func:`synth.nn.ops.pyramid_down`).

The conditional input is the official ``cat(one_hot(labels) [K], instance edges [0/1], image)``.
At full resolution the first conv reads the one-hot part by gathering
(:class:`synth.nn.layers.LabelConv2d`: exact, ~K× fewer multiply-adds) and only the edges
and the image densely; its weight keeps the dense conv's shape, so official keys load
unchanged. Plugins keep their official state-dict layouts by overriding how layers are
wrapped and named (:meth:`PatchGAN._layer`, :meth:`PatchGAN._assemble`,
:attr:`PatchDiscriminator.scales_name`); the computation stays here.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from ..condition import Condition
from ..config import PartConfig
from ..context import Context
from ..nn import ops
from ..nn.layers import LabelConv2d
from ..nn.norms import InstanceNorm2d
from ..outputs import DiscriminatorOutput
from .base import Discriminator

__all__ = [
    "PatchDiscriminator",
    "PatchGAN",
    "PatchLayer",
    "PatchLayout",
    "discriminator_input",
    "discriminator_parts",
]


@dataclass(frozen=True)
class PatchLayout:
    """The geometry of one PatchGAN scale.

    ``in_channels`` counts the dense input ``cat(one-hot [num_classes], extra, image)``;
    with ``num_classes > 0`` the first conv can read the one-hot part by gathering. ``depth``
    conv layers precede the logit conv (pix2pixHD's ``n_layers_D + 1``, SPADE's
    ``n_layers_D``). ``padding`` None is ``ceil((kernel_size - 1) / 2)``. ``spectral_norm``:
    on no conv, on the ``"middle"`` ones (all but the first and the logit conv, SPADE), or on
    ``"all"``. ``norm_bias``: whether a conv followed by a norm keeps its (redundant) bias.
    """

    in_channels: int
    num_classes: int = 0
    ndf: int = 64
    depth: int = 4
    kernel_size: int = 4
    padding: int | None = None
    max_width: int = 512
    norm: Literal["instance", "none"] = "instance"
    spectral_norm: Literal["none", "middle", "all"] = "none"
    norm_bias: bool = True

    @property
    def pad(self) -> int:
        return math.ceil((self.kernel_size - 1) / 2) if self.padding is None else self.padding

    def widths(self) -> list[int]:
        """Output channels of the ``depth`` layers: ``ndf``, then ``ndf·2^j`` up to the cap."""
        return [self.ndf] + [min(self.ndf * 2**j, self.max_width) for j in range(1, self.depth)]

    def conv(self, j: int, cin: int, cout: int) -> nn.Module:
        """Layer ``j``'s conv (``j == depth``: the logit conv), spectral-normed as configured."""
        k, normed = self.kernel_size, 0 < j < self.depth and self.norm != "none"
        stride = 2 if j == 0 or j < self.depth - 1 else 1
        if j == 0 and self.num_classes:
            conv: nn.Module = LabelConv2d(
                self.num_classes,
                cout,
                k,
                stride=stride,
                padding=self.pad,
                extra_channels=cin - self.num_classes,
            )
        else:
            bias = not normed or self.norm_bias
            conv = nn.Conv2d(cin, cout, k, stride=stride, padding=self.pad, bias=bias)
        inner = 0 < j < self.depth
        if self.spectral_norm == "all" or (self.spectral_norm == "middle" and inner):
            conv = _spectral_norm(conv)
        return conv


class PatchLayer(nn.Sequential):
    """``conv -> [norm] -> LeakyReLU(0.2)`` (a sequence whose first module is the conv).

    ``forward(x)`` runs the sequence on the dense input; ``forward(rest, labels)`` reads
    ``cat(one_hot(labels), rest)`` with the one-hot part gathered (the first module is then a
    :class:`~synth.nn.layers.LabelConv2d`). ``[B, C_in, H, W] -> [B, C_out, H', W']``.
    """

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if labels is None:
            return super().forward(x)
        conv, *rest = self
        x = conv(labels, x)
        for module in rest:
            x = module(x)
        return x


class PatchGAN(nn.Module):
    """One scale: ``forward(x, labels=None) -> (logits [B, 1, h, w], [depth activations])``.

    ``x`` is the dense input ``[B, C_in, H, W]``, or, with ``labels: LongTensor[B, H, W]``,
    the input without its one-hot channels (``[B, C_in - K, H, W]``): the same result, the
    first conv gathering. Module names ``layers.{j}.conv``, ``logits`` (pix2pixHD's layout in
    :mod:`synth_pix2pixhd.convert`); subclasses rename them with :meth:`_layer`,
    :meth:`_assemble`, :meth:`hidden_layers` and :meth:`logit_layer`.
    """

    def __init__(self, layout: PatchLayout) -> None:
        super().__init__()
        self.layout = layout
        layers, cin = [], layout.in_channels
        for j, width in enumerate(layout.widths()):
            norm = InstanceNorm2d() if j and layout.norm == "instance" else None
            layers.append(self._layer(layout.conv(j, cin, width), norm))
            cin = width
        self._assemble(layers, layout.conv(layout.depth, cin, 1))

    def _layer(self, conv: nn.Module, norm: nn.Module | None) -> PatchLayer:
        """One layer: ``conv``, ``norm`` (None: none) and the activation, named."""
        parts = [("conv", conv), ("norm", norm), ("act", nn.LeakyReLU(0.2))]
        return PatchLayer(OrderedDict((n, m) for n, m in parts if m is not None))

    def _assemble(self, layers: list[PatchLayer], logits: nn.Module) -> None:
        self.layers = nn.ModuleList(layers)
        self.logits = logits

    def hidden_layers(self) -> Sequence[nn.Module]:
        return self.layers

    def logit_layer(self) -> nn.Module:
        return self.logits

    def forward(self, x: Tensor, labels: Tensor | None = None) -> tuple[Tensor, list[Tensor]]:
        feats = []
        for j, layer in enumerate(self.hidden_layers()):
            x = layer(x, labels) if j == 0 else layer(x)
            feats.append(x)
        return self.logit_layer()(x), feats


def discriminator_parts(
    image: Tensor,
    cond: Condition,
    num_classes: int | None,
    use_instances: bool,
    *,
    switch: str = "conditional",
) -> tuple[Tensor | None, Tensor]:
    """A conditional discriminator's input, split: ``(labels, rest)``.

    ``labels``: the label map nearest-resized to the image size (``LongTensor[B, H, W]``; None
    when ``num_classes`` is None); ``rest``: ``cat(edges [B, 1, H, W], image [B, 3, H, W])``
    (the instance boundaries of :meth:`synth.Context.instance_edges`, only with
    ``use_instances``). ``switch`` names the config field that turns the labels off, for the
    error message.
    """
    size = tuple(image.shape[-2:])
    labels = None
    if num_classes is not None:
        if cond.label_map is None:
            raise ValueError(
                f"the discriminator is conditional (num_classes={num_classes}) and reads "
                "Condition.label_map, which is missing: give the Condition a label_map, or set "
                f"{switch}: false on the discriminator"
            )
        if cond.num_classes is not None and cond.num_classes != num_classes:
            raise ValueError(
                f"the discriminator has num_classes={num_classes} but the condition has "
                f"num_classes={cond.num_classes}"
            )
        labels = ops.resize_labels(cond.label_map, size)
    if not use_instances:
        return labels, image
    if cond.instance_map is None:
        raise ValueError(
            "the discriminator has use_instances: true and reads Condition.instance_map, which "
            "is missing: give the data an instance map or set use_instances: false"
        )
    edges = Context(cond).instance_edges(size).to(image.dtype)
    return labels, torch.cat([edges, image], dim=1)


def discriminator_input(
    image: Tensor, cond: Condition, num_classes: int | None, use_instances: bool
) -> Tensor:
    """The official dense input ``cat(one-hot [B, K, H, W], edges [B, 1, H, W], image)`` (pieces
    left out as in :func:`discriminator_parts`)."""
    labels, rest = discriminator_parts(image, cond, num_classes, use_instances)
    return rest if labels is None else _dense(labels, rest, num_classes)


def _dense(labels: Tensor, rest: Tensor, num_classes: int | None) -> Tensor:
    assert num_classes is not None
    return torch.cat([ops.one_hot(labels, num_classes, dtype=rest.dtype), rest], dim=1)


class PatchDiscriminator(Discriminator):
    """PatchGAN discriminator at ``num_scales`` scales (pix2pixHD's multi-scale layout).

    ``forward(image: [B, 3, H, W], cond)``: conditional on the one-hot label map (when
    ``num_classes`` is set and ``conditional``; nearest-resized to the image size) and, with
    ``use_instances``, on the instance boundary map: the input is
    ``cat(one_hot [K], edges [1], image [3])``. Scale ``s`` sees that input average-pooled
    ``s`` times (3×3, stride 2, padding 1, ``count_include_pad=False``) and has its own
    :class:`PatchGAN` of ``n_layers`` stride-2 layers plus one stride-1 layer (widths
    ``ndf·2^i``, at most ``max_width``; instance norm with fp32 statistics on all but the
    first) and a 1-channel logit conv. Returns ``DiscriminatorOutput(logits=[[B, 1, h_s, w_s]
    per scale, finest first], features=[[each layer's activation] per scale])``; the logits
    are not in ``features``.

    The full-resolution scale reads the one-hot part by gathering; the coarser scales see the
    pooled one-hot map, fractional at class borders (no longer one-hot), through the same
    conv's dense path. Subclasses configure the family: :meth:`reads` (which inputs),
    :meth:`layout_options` (the geometry), :attr:`num_scales`, :meth:`make_scale` (a scale
    with the official module names) and :attr:`scales_name`.
    """

    class Config(PartConfig):
        num_classes: int | None = Field(
            None, ge=1, description="K (runtime argument, from the generator)"
        )
        conditional: bool = Field(True, description="read the label map (and instance edges)")
        use_instances: bool = Field(
            False, description="add the instance-edge channel (reads instance_map)"
        )
        ndf: int = Field(16, ge=1, description="width of the first layer")
        n_layers: int = Field(3, ge=1, description="stride-2 layers (n_layers_D)")
        num_scales: int = Field(1, ge=1, description="scales of the image pyramid (num_D)")
        kernel_size: int = Field(4, ge=1)
        padding: int | None = Field(None, ge=0, description="None: ceil((kernel_size - 1) / 2)")
        max_width: int = Field(512, ge=1, description="cap on the layer widths")
        norm: Literal["instance", "none"] = "instance"
        spectral_norm: bool | Literal["middle"] = Field(
            False, description="on every conv (true) or on the normalised middle ones ('middle')"
        )
        use_image: bool = Field(
            False,
            description="also read Condition.image (the occluded or low-resolution input), "
            "resized bilinearly to the scored image: D(x | c) for image-conditioned tasks",
        )
        use_mask: bool = Field(False, description="also read Condition.mask, resized likewise")

    config: Any
    #: attribute holding the per-scale networks (its state-dict prefix)
    scales_name: ClassVar[str] = "scales"
    #: the config field that turns the label input off (named in errors)
    label_switch: ClassVar[str] = "conditional"

    @classmethod
    def reads(cls, config: Any) -> tuple[int | None, bool]:
        """``(K of the one-hot input or None, whether the instance-edge channel is read)``."""
        if not config.conditional:
            return None, False
        return config.num_classes, bool(config.use_instances)

    @classmethod
    def requirements(cls, config: PartConfig | None = None) -> frozenset[str]:
        """``label_map`` when it reads the labels, ``instance_map`` with instance edges."""
        if config is None:
            return cls.requires
        k, instances = cls.reads(config)
        inputs = (
            ("label_map", k),
            ("instance_map", instances),
            ("image", getattr(config, "use_image", False)),
            ("mask", getattr(config, "use_mask", False)),
        )
        return frozenset(name for name, on in inputs if on)

    def layout_options(self) -> dict[str, Any]:
        """The :class:`PatchLayout` fields other than the input channels, from the config."""
        c = self.config
        sn = {True: "all", False: "none"}.get(c.spectral_norm, c.spectral_norm)
        return dict(
            ndf=c.ndf,
            depth=c.n_layers + 1,
            kernel_size=c.kernel_size,
            padding=c.padding,
            max_width=c.max_width,
            norm=c.norm,
            spectral_norm=sn,
        )

    @property
    def num_scales(self) -> int:
        return int(self.config.num_scales)

    def make_scale(self, layout: PatchLayout) -> PatchGAN:
        return PatchGAN(layout)

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.label_classes, self.reads_instances = self.reads(self.config)
        self.reads_image = bool(getattr(self.config, "use_image", False))
        self.reads_mask = bool(getattr(self.config, "use_mask", False))
        k = self.label_classes or 0
        extra = 3 * self.reads_image + int(self.reads_mask) + int(self.reads_instances)
        self.in_channels = k + extra + self.image_channels
        layout = PatchLayout(in_channels=self.in_channels, num_classes=k, **self.layout_options())
        nets = nn.ModuleList(self.make_scale(layout) for _ in range(self.num_scales))
        self.add_module(self.scales_name, nets)

    def forward(self, image: Tensor, cond: Condition) -> DiscriminatorOutput:
        """``image: [B, 3, H, W]`` -> per-scale logits and features (finest first)."""
        k = self.label_classes
        labels, rest = discriminator_parts(
            image, cond, k, self.reads_instances, switch=self.label_switch
        )
        rest = self._with_condition_image(rest, cond)
        logits: list[Tensor] = []
        features: list[list[Tensor]] = []
        x = rest
        for i, net in enumerate(getattr(self, self.scales_name)):
            if i == 0:  # full resolution: the one-hot part by gathering
                out, feats = net(rest, labels)
            else:
                if i == 1 and labels is not None:
                    # the official input pooled, one-hot and rest apart (pooling is per
                    # channel): the backward then runs over the image channels only
                    assert k is not None
                    hot = ops.pyramid_down(ops.one_hot(labels, k, dtype=rest.dtype))
                    x = torch.cat([hot, ops.pyramid_down(rest)], dim=1)
                else:
                    x = ops.pyramid_down(x)
                out, feats = net(x)
            logits.append(out)
            features.append(feats)
        return DiscriminatorOutput(logits=logits, features=features)

    def _with_condition_image(self, rest: Tensor, cond: Condition) -> Tensor:
        """``cat(cond image [3], mask [1], rest)`` for the inputs the config reads, each resized
        bilinearly to the scored image (a mask becomes fractional at its border)."""
        extras = []
        for name, on in (("image", self.reads_image), ("mask", self.reads_mask)):
            if not on:
                continue
            t = getattr(cond, name)
            if t is None:
                raise ValueError(
                    f"the discriminator has use_{name}: true and reads Condition.{name}, which "
                    f"is missing: give the data a {name} or set use_{name}: false"
                )
            if t.shape[-2:] != rest.shape[-2:]:
                t = F.interpolate(t.float(), size=rest.shape[-2:], mode="bilinear", antialias=True)
            extras.append(t.to(rest.dtype))
        return torch.cat([*extras, rest], dim=1) if extras else rest
