"""SPADE's multi-scale PatchGAN discriminator (Park et al. 2019; Wang et al. 2018).

A configuration of core's PatchGAN family (:mod:`synth.parts.discriminators`) that keeps the
official SPADE module names, so its state dict is the official one (up to the spectral-norm
parametrisation, mapped by :mod:`synth_clvae.convert`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field
from torch import nn

import synth
from synth.nn import InitScheme, init_weights
from synth.nn.norms import InstanceNorm2d
from synth.parts.discriminators import PatchDiscriminator, PatchGAN, PatchLayer

__all__ = ["InstanceNorm", "MultiscaleDiscriminator", "NLayerDiscriminator"]

#: Parameter-free instance norm with fp32 statistics (SPADE's ``InstanceNorm2d(affine=False)``).
InstanceNorm = InstanceNorm2d


class NLayerDiscriminator(PatchGAN):
    """One scale with SPADE's module names: ``model0 = (conv4x4/2, LReLU)``, ``model1..n-1 =
    (norm(conv4x4), LReLU)`` (stride 2, the last one stride 1; widths ×2 up to 512),
    ``model_n = (conv4x4 -> 1)``.

    ``norm(conv)`` is ``(conv, InstanceNorm)`` with instance norm (the conv then has no bias),
    else the conv alone (official ``get_nonspade_norm_layer``); spectral norm wraps the middle
    convs only. ``forward(x, labels=None) -> (logits, [n activations])`` as :class:`PatchGAN`.
    """

    def _layer(self, conv: nn.Module, norm: nn.Module | None) -> PatchLayer:
        return PatchLayer(conv if norm is None else nn.Sequential(conv, norm), nn.LeakyReLU(0.2))

    def _assemble(self, layers: list[PatchLayer], logits: nn.Module) -> None:
        self.n_layers = len(layers)
        for n, module in enumerate([*layers, nn.Sequential(logits)]):
            self.add_module(f"model{n}", module)

    def hidden_layers(self) -> list[nn.Module]:
        return [getattr(self, f"model{n}") for n in range(self.n_layers)]

    def logit_layer(self) -> nn.Module:
        return getattr(self, f"model{self.n_layers}")


class MultiscaleDiscriminator(PatchDiscriminator):
    """SPADE's discriminator: ``num_d`` PatchGANs on the image pyramid.

    Input ``cat(one_hot(label_map), image)`` (``[B, K + 3, H, W]``, the official order), or with
    ``use_instances`` ``cat(one_hot, instance_edges(instance_map), image)`` (``K + 4``; SPADE's
    Cityscapes models, official ``no_instance=False``); scale
    ``s + 1`` sees ``avg_pool2d(3, stride 2, pad 1, count_include_pad=False)`` of scale ``s``.
    Returns ``DiscriminatorOutput(logits=[B, 1, h_s, w_s] per scale (finest first),
    features=the intermediate maps of each scale)``. Defaults: num_d 2, n_layers 4, ndf 64,
    spectral instance norm. At the finest scale the first conv (stride 2) reads the one-hot map
    by gathering; the coarser scales convolve the pooled input densely (pooling makes the
    one-hot map fractional).
    """

    class Config(synth.PartConfig):
        num_classes: int = Field(ge=1, description="K (runtime argument, from the generator)")
        ndf: int = Field(64, ge=1)
        n_layers: int = Field(4, ge=1)
        num_d: int = Field(2, ge=1)
        norm: Literal["spectralinstance", "instance", "spectral", "none"] = "spectralinstance"
        use_label: bool = Field(True, description="condition on the one-hot label map")
        use_instances: bool = Field(
            False, description="add the instance-edge channel (requires instance_map)"
        )
        init: InitScheme = Field(
            "default",
            description="weight initialisation (synth.nn.init); the recipes use 'xavier', the "
            "official init_weights: xavier-normal gain 0.02, biases 0",
        )

    requires: ClassVar[frozenset[str]] = frozenset({"label_map"})
    scales_name: ClassVar[str] = "discriminators"
    label_switch: ClassVar[str] = "use_label"

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        init_weights(self, self.config.init)

    @classmethod
    def reads(cls, config: Any) -> tuple[int | None, bool]:
        """The label map unless ``use_label`` is off; instance edges with ``use_instances``."""
        return (config.num_classes if config.use_label else None), bool(config.use_instances)

    @property
    def num_scales(self) -> int:
        return int(self.config.num_d)

    def layout_options(self) -> dict[str, Any]:
        """SPADE's ``norm_D``: ``spectral`` on the middle convs, then ``instance`` (bias-free)."""
        norm = self.config.norm
        return dict(
            ndf=self.config.ndf,
            depth=self.config.n_layers,
            norm="instance" if norm.endswith("instance") else "none",
            spectral_norm="middle" if norm.startswith("spectral") else "none",
            norm_bias=False,
        )

    def make_scale(self, layout: Any) -> PatchGAN:
        return NLayerDiscriminator(layout)
