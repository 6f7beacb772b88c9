"""cIMLE injectors: spatial SR codes (§5.1.1) and the noise encoder (§5.2.1).

Both separate *drawing raw codes* (``draw``) from *turning raw codes into the generator's
latents* (``from_codes``); ``prior = from_codes(draw(...))``. ``cimle.imle`` caches the raw
codes it selects and calls ``from_codes`` again in its update steps, so a trainable
injector (the noise encoder) is trained with the generator.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from synth import Condition, LatentInjector, Latents, PartConfig
from synth.nn.layers import LabelConv2d

from .generators import LayerNorm2d, stage_code_key

__all__ = ["NOISE_KEY", "NoiseEncoder", "SpatialCode"]

#: ``Latents.extras`` key of the noise encoder's raw low-dimensional noise ``z̃``.
NOISE_KEY = "cimle.noise"


class SpatialCode(LatentInjector):
    """Gaussian codes at the LR resolution for super-resolution (§5.1.1, Fig. 4).

    ``prior(cond)`` -> ``Latents(spatial=[B, channels, h, w])`` with ``(h, w)`` the size of
    ``cond.image`` (the LR input), or ``cond.size // downsample`` without an image.
    ``per_stage=True`` (hierarchical variant) instead fills
    ``extras["cimle.code.k"]: [B, channels, h·2^k, w·2^k]`` for ``k < num_stages`` (one code
    per ×2 stage, drawn coarse first). ``channels`` and ``num_stages`` are runtime arguments
    offered by the generator. No parameters, no posterior.
    """

    class Config(PartConfig):
        channels: int = Field(5, ge=1, description="code channels (runtime, from the generator)")
        num_stages: int = Field(1, ge=1, description="runtime, from the generator")
        per_stage: bool = False
        downsample: int = Field(1, ge=1, description="code size = size // downsample w/o image")
        std: float = Field(
            1.0, ge=0, description="0: zero codes (§5.1.1's pre-training with z = 0)"
        )

    provides: ClassVar[frozenset[str]] = frozenset({"spatial"})
    config: Config

    @classmethod
    def provided(cls, config: PartConfig | None = None) -> frozenset[str]:
        if config is not None and getattr(config, "per_stage", False):
            n = getattr(config, "num_stages", 1)
            return frozenset(stage_code_key(k) for k in range(n))
        return cls.provides

    def _base(self, cond: Condition) -> tuple[int, int]:
        if cond.image is not None:
            return int(cond.image.shape[-2]), int(cond.image.shape[-1])
        if cond.size is None:
            raise ValueError("cimle.spatial_code needs Condition.image (LR) or Condition.size")
        d = self.config.downsample
        return max(cond.size[0] // d, 1), max(cond.size[1] // d, 1)

    def draw(self, cond: Condition, generator: torch.Generator | None = None) -> Latents:
        """Raw codes (see the class docstring); the same as :meth:`prior`."""
        c = self.config
        h, w = self._base(cond)
        b, dev = cond.batch_size, cond.device
        if not c.per_stage:
            z = torch.randn(b, c.channels, h, w, generator=generator, device=dev) * c.std
            return Latents(spatial=z)
        extras = {
            stage_code_key(k): torch.randn(
                b, c.channels, h * 2**k, w * 2**k, generator=generator, device=dev
            )
            * c.std
            for k in range(c.num_stages)
        }
        return Latents(extras=extras)

    def from_codes(self, cond: Condition, codes: Latents) -> Latents:
        """Identity: the raw codes are the generator's latents."""
        return codes

    def prior(self, cond: Condition, generator: torch.Generator | None = None) -> Latents:
        return self.draw(cond, generator)


class NoiseEncoder(LatentInjector):
    """Noise encoder (§5.2.1): ``z' = E(one_hot(x) ⊕ z̃)``, a 3-layer conv net.

    ``z̃: [B, noise_dim, H/d, W/d]`` (``d = noise_downsample``; nearest-upsampled to H×W) is
    the low-dimensional noise; ``E`` = 3x3 conv ``hidden`` -> LayerNorm -> LeakyReLU 0.2 ->
    3x3 conv ``hidden`` -> LayerNorm -> LeakyReLU 0.2 -> 1x1 conv ``channels`` (paper: 100
    hidden, 10 channels, z̃ of 10 channels at full resolution).

    ``prior(cond)`` -> ``Latents(spatial=z' [B, channels, H, W], extras={"cimle.noise": z̃})``.
    ``num_classes`` and ``channels`` are runtime arguments offered by the generator.
    """

    class Config(PartConfig):
        num_classes: int = Field(20, ge=1, description="runtime, from the generator")
        channels: int = Field(10, ge=1, description="output noise channels (runtime)")
        noise_dim: int = Field(10, ge=1)
        noise_downsample: int = Field(1, ge=1)
        hidden: int = Field(100, ge=1)

    provides: ClassVar[frozenset[str]] = frozenset({"spatial"})
    requires: ClassVar[frozenset[str]] = frozenset({"label_map"})
    config: Config

    def __init__(self, config: Config | dict | None = None, **kwargs) -> None:
        super().__init__(config, **kwargs)
        c = self.config
        # reads cat(one_hot, noise): the one-hot part by gathering (DESIGN §7)
        self.conv1 = LabelConv2d(c.num_classes, c.hidden, 3, padding=1, extra_channels=c.noise_dim)
        self.norm1 = LayerNorm2d(c.hidden)
        self.conv2 = nn.Conv2d(c.hidden, c.hidden, 3, padding=1)
        self.norm2 = LayerNorm2d(c.hidden)
        self.conv3 = nn.Conv2d(c.hidden, c.channels, 1)

    def draw(self, cond: Condition, generator: torch.Generator | None = None) -> Latents:
        """``Latents(extras={"cimle.noise": z̃ [B, noise_dim, H/d, W/d]})``."""
        if cond.size is None:
            raise ValueError("cimle.noise_encoder needs Condition.size (give a label_map)")
        c = self.config
        h, w = (max(s // c.noise_downsample, 1) for s in cond.size)
        z = torch.randn(cond.batch_size, c.noise_dim, h, w, generator=generator, device=cond.device)
        return Latents(extras={NOISE_KEY: z})

    def encode_noise(self, cond: Condition, noise: Tensor) -> Tensor:
        """``E(one_hot ⊕ upsample(z̃))``: ``[B, noise_dim, h, w] -> [B, channels, H, W]``."""
        if cond.label_map is None or cond.size is None:
            raise ValueError("cimle.noise_encoder reads Condition.label_map, which is missing")
        if cond.num_classes != self.config.num_classes:
            raise ValueError(
                f"cimle.noise_encoder has num_classes={self.config.num_classes} but the "
                f"Condition has num_classes={cond.num_classes}"
            )
        dtype = self.conv1.weight.dtype
        if tuple(noise.shape[-2:]) != tuple(cond.size):
            noise = F.interpolate(noise, size=cond.size, mode="nearest")
        x = F.leaky_relu(self.norm1(self.conv1(cond.label_map, noise.to(dtype))), 0.2)
        x = F.leaky_relu(self.norm2(self.conv2(x)), 0.2)
        return self.conv3(x)

    def from_codes(self, cond: Condition, codes: Latents) -> Latents:
        """Raw ``z̃`` (``extras["cimle.noise"]``) -> latents with ``spatial = E(x ⊕ z̃)``."""
        noise = codes.extras.get(NOISE_KEY)
        if noise is None:
            raise ValueError(f"cimle.noise_encoder.from_codes needs extras[{NOISE_KEY!r}]")
        return Latents(spatial=self.encode_noise(cond, noise), extras={NOISE_KEY: noise})

    def prior(self, cond: Condition, generator: torch.Generator | None = None) -> Latents:
        return self.from_codes(cond, self.draw(cond, generator))
