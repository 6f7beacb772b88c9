"""Core conditioning blocks: instance norm, batch norm and AdaIN.

Every block here computes its normalisation statistics in fp32, also under bf16/fp16 autocast
(through :mod:`synth.nn.norms`: the input is upcast, normalised, modulated, and cast back to
``x.dtype``), so low-precision training does not lose the mean/variance of large activations.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from einops import rearrange
from pydantic import Field
from torch import Tensor, nn

from ..config import PartConfig
from ..context import Context
from ..nn.norms import batch_normalize, instance_normalize, modulate
from .base import ConditioningBlock

__all__ = ["AdaIN", "BatchNorm", "InstanceNorm"]


class InstanceNorm(ConditioningBlock):
    """Instance normalisation (Ulyanov et al. 2016), parameter-free unless ``affine``.

    ``x: [B, C, H, W] -> [B, C, H, W]``: each sample's channel is normalised over ``H, W``
    (statistics in fp32), then, with ``affine``, scaled and shifted by a learned per-channel
    ``weight`` (init 1) and ``bias`` (init 0). Reads nothing from the context.
    """

    class Config(PartConfig):
        channels: int = Field(ge=1, description="C (runtime argument, set by the host)")
        affine: bool = False
        eps: float = Field(1e-5, gt=0)

    requires: ClassVar[frozenset[str]] = frozenset()
    config: Config

    def __init__(self, config: Config | dict | None = None, **kwargs) -> None:
        super().__init__(config, **kwargs)
        c = self.config.channels
        if self.config.affine:
            self.weight = nn.Parameter(torch.ones(c))
            self.bias = nn.Parameter(torch.zeros(c))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Tensor, ctx: Context | None = None) -> Tensor:
        """``x: [B, C, H, W] -> [B, C, H, W]`` (``ctx`` is not read)."""
        out = instance_normalize(x, self.config.eps)
        if self.weight is not None:
            out = out * rearrange(self.weight.float(), "c -> c 1 1") + rearrange(
                self.bias.float(), "c -> c 1 1"
            )
        return out.to(x.dtype)


class BatchNorm(ConditioningBlock):
    """Batch normalisation (Ioffe & Szegedy 2015) with running statistics for eval.

    ``x: [B, C, H, W] -> [B, C, H, W]``: normalised over ``B, H, W`` per channel with the batch
    statistics in training (updating the running ones with ``momentum``) and the running
    statistics in eval. An ``nn.BatchNorm2d`` (``self.bn``) holds the running statistics and,
    with ``affine``, the learned per-channel scale and shift; the normalisation itself runs on
    ``x.float()`` with fp32 statistics, also under autocast or when the module was cast to
    bf16. Reads nothing from the context.
    """

    class Config(PartConfig):
        channels: int = Field(ge=1, description="C (runtime argument, set by the host)")
        affine: bool = False
        momentum: float = Field(0.1, ge=0, le=1)
        eps: float = Field(1e-5, gt=0)

    requires: ClassVar[frozenset[str]] = frozenset()
    config: Config

    def __init__(self, config: Config | dict | None = None, **kwargs) -> None:
        super().__init__(config, **kwargs)
        cfg = self.config
        self.bn = nn.BatchNorm2d(
            cfg.channels, eps=cfg.eps, momentum=cfg.momentum, affine=cfg.affine
        )

    def forward(self, x: Tensor, ctx: Context | None = None) -> Tensor:
        """``x: [B, C, H, W] -> [B, C, H, W]`` (``ctx`` is not read)."""
        return batch_normalize(x, self.bn).to(x.dtype)


class AdaIN(ConditioningBlock):
    """Adaptive instance normalisation (Huang & Belongie 2017, "Arbitrary Style Transfer in
    Real-time with Adaptive Instance Normalization").

    ``x: [B, C, H, W] -> [B, C, H, W]``: reads this stage's style code
    ``s = ctx.latents.styles[ctx.stage]: [B, style_dim]``, maps it with a linear layer to
    per-channel ``(gamma, beta): [B, C]`` and returns
    ``instance_norm(x) * (1 + gamma) + beta`` (statistics in fp32). Needs an injector that
    provides ``styles`` (e.g. ``core.gaussian``) and a host generator with ``style_dim > 0``.
    """

    class Config(PartConfig):
        channels: int = Field(ge=1, description="C (runtime argument, set by the host)")
        stage: int = Field(ge=0, description="stage index (runtime argument)")
        style_dim: int = Field(description="S, size of each style code (runtime argument)")
        eps: float = Field(1e-5, gt=0)

    requires: ClassVar[frozenset[str]] = frozenset({"styles"})
    config: Config

    def __init__(self, config: Config | dict | None = None, **kwargs) -> None:
        super().__init__(config, **kwargs)
        cfg = self.config
        if cfg.style_dim < 1:
            raise ValueError(
                "core.adain needs style_dim > 0: set style_dim on the generator that hosts it "
                f"(got style_dim={cfg.style_dim})"
            )
        self.affine = nn.Linear(cfg.style_dim, 2 * cfg.channels)

    def forward(self, x: Tensor, ctx: Context) -> Tensor:
        """``x: [B, C, H, W]`` modulated by ``ctx.latents.styles[ctx.stage]: [B, style_dim]``."""
        styles = ctx.latents.styles
        if styles is None:
            raise ValueError(
                "core.adain reads latents.styles, which are missing: compose the model with an "
                "injector that provides 'styles', e.g. core.gaussian, or pass "
                "latents=synth.Latents(styles=[...]) with one [B, style_dim] code per stage"
            )
        if ctx.stage >= len(styles):
            raise ValueError(
                f"core.adain at stage {ctx.stage} needs latents.styles[{ctx.stage}], but only "
                f"{len(styles)} style code(s) were given: give one [B, style_dim] code per stage"
            )
        gamma, beta = rearrange(self.affine(styles[ctx.stage]), "b (two c) -> two b c 1 1", two=2)
        return modulate(instance_normalize(x, self.config.eps), gamma, beta).to(x.dtype)
