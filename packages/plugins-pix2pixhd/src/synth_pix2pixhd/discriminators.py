"""pix2pixHD discriminators: the 70×70 PatchGAN and its multi-scale version (paper §3.2).

Both are configurations of core's PatchGAN family (:mod:`synth.parts.discriminators`) with the
official ``NLayerDiscriminator`` geometry: 4×4 convolutions with padding ``ceil(3/2) = 2``,
LeakyReLU(0.2); the first layer has no norm; ``n_layers`` stride-2 convs (widths
``ndf·2^i``, at most 512), one stride-1 conv, and a stride-1 1-channel logit conv; instance
norm (no affine; statistics in fp32); every conv keeps its bias. ``MultiscaleDiscriminator``
runs ``num_d`` copies on the input average-pooled (3×3, stride 2, pad 1,
``count_include_pad=False``) between scales.

The conditional input is the official ``cat(one-hot label map, instance edges, image)``. At
the full-resolution scale the first conv reads the one-hot part by gathering
(:class:`synth.nn.layers.LabelConv2d`, exact, ~K× fewer multiply-adds) and only the edges and
image densely; the weight keeps the dense conv's shape, so the official keys load unchanged
(module names ``scales.{s}.layers.{j}.conv``, ``scales.{s}.logits``: core's, mapped to the
official ones by :mod:`synth_pix2pixhd.convert`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from synth import PartConfig
from synth.nn import InitScheme, init_weights
from synth.parts.discriminators import PatchDiscriminator as PatchGANFamily
from synth.parts.discriminators import PatchGAN, discriminator_input, discriminator_parts

__all__ = [
    "MultiscaleDiscriminator",
    "NLayerD",
    "PatchDiscriminator",
    "discriminator_input",
    "discriminator_parts",
]

#: One scale of pix2pixHD's discriminator (the official ``NLayerDiscriminator``).
NLayerD = PatchGAN


class PatchDiscriminator(PatchGANFamily):
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
        init: InitScheme = Field(
            "default",
            description="weight initialisation (synth.nn.init); the recipes use 'normal' "
            "(official weights_init: conv weights N(0, 0.02))",
        )

    fixed_num_d: ClassVar[int | None] = 1

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        init_weights(self, self.config.init)

    @property
    def num_d(self) -> int:
        return self.fixed_num_d or int(self.config.num_d)

    @property
    def num_scales(self) -> int:
        return self.num_d

    def layout_options(self) -> dict[str, Any]:
        """The official geometry: only ``ndf`` and ``n_layers`` are options."""
        return dict(ndf=self.config.ndf, depth=self.config.n_layers + 1)


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
