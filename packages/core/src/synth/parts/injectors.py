"""Core latent injectors: Gaussian codes and spatial noise maps (prior only, no encoder).

Both draw with ``torch.randn(..., generator=generator, device=cond.device)``. A
``torch.Generator`` lives on one device and can only seed draws on that device: pass
``torch.Generator(device=cond.device)`` (a CPU generator for CPU conditions, a
``torch.Generator("cuda")`` for CUDA ones), or ``None`` for the global RNG.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field

from ..condition import Condition
from ..config import PartConfig
from ..latents import Latents
from .base import LatentInjector

__all__ = ["Gaussian", "SpatialNoise"]


class Gaussian(LatentInjector):
    """Standard Gaussian prior over a global code ``z`` and per-stage style codes.

    ``prior(cond, generator)`` returns ``Latents`` with
        - ``z: [B, z_dim]`` drawn from ``N(0, std² I)`` (``None`` when ``z_dim == 0``);
        - ``styles``: ``num_stages`` codes ``[B, style_dim]`` from ``N(0, std² I)`` (``None``
          when ``style_dim == 0``): the same code for every stage when ``shared_styles``,
          independent draws per stage otherwise.

    ``z_dim``, ``style_dim`` and ``num_stages`` are runtime arguments offered by the generator.
    Draw order (for reproducibility under a seeded ``generator``): ``z``, then the styles.
    The generator must be on ``cond.device`` (see the module docstring). No posterior.
    """

    class Config(PartConfig):
        z_dim: int = Field(0, ge=0, description="Z (runtime argument, from the generator)")
        style_dim: int = Field(0, ge=0, description="S (runtime argument, from the generator)")
        num_stages: int = Field(1, ge=1, description="runtime argument, from the generator")
        shared_styles: bool = True
        std: float = Field(1.0, gt=0)

    provides: ClassVar[frozenset[str]] = frozenset({"z", "styles"})
    config: Config

    @classmethod
    def provided(cls, config: PartConfig | None = None) -> frozenset[str]:
        """``z`` when ``z_dim > 0`` and ``styles`` when ``style_dim > 0`` (both without config)."""
        if config is None:
            return cls.provides
        out = set()
        if getattr(config, "z_dim", 0) > 0:
            out.add("z")
        if getattr(config, "style_dim", 0) > 0:
            out.add("styles")
        return frozenset(out)

    def prior(self, cond: Condition, generator: torch.Generator | None = None) -> Latents:
        """``Latents(z=[B, z_dim] | None, styles=[[B, style_dim]] * num_stages | None)``."""
        cfg = self.config
        b, device = cond.batch_size, cond.device
        z = None
        if cfg.z_dim > 0:
            z = torch.randn(b, cfg.z_dim, generator=generator, device=device) * cfg.std
        styles = None
        if cfg.style_dim > 0:
            if cfg.shared_styles:
                s = torch.randn(b, cfg.style_dim, generator=generator, device=device) * cfg.std
                styles = [s] * cfg.num_stages
            else:
                draws = torch.randn(
                    cfg.num_stages, b, cfg.style_dim, generator=generator, device=device
                )
                styles = list((draws * cfg.std).unbind(0))
        return Latents(z=z, styles=styles)


class SpatialNoise(LatentInjector):
    """Per-pixel Gaussian noise maps, ``N(0, I)``, for generators that take a noise input.

    ``prior(cond, generator)`` returns ``Latents(spatial=[B, channels, H // scale, W // scale])``
    where ``(H, W) = cond.size``. ``channels`` is a runtime argument: the host generator offers
    its number of noise channels (e.g. ``noise_channels`` of ``core.simple_generator``).
    The generator must be on ``cond.device`` (see the module docstring). No posterior.
    """

    class Config(PartConfig):
        channels: int = Field(description="noise channels (runtime argument, from the generator)")
        scale: int = Field(1, ge=1, description="the noise map is at output size // scale")

    provides: ClassVar[frozenset[str]] = frozenset({"spatial"})
    config: Config

    def __init__(self, config: Config | dict | None = None, **kwargs) -> None:
        super().__init__(config, **kwargs)
        if self.config.channels < 1:
            raise ValueError(
                f"core.spatial_noise got channels={self.config.channels}: its generator takes no "
                "noise map; set noise_channels > 0 on the generator (e.g. noise_channels: 4) or "
                "drop the injector"
            )

    def prior(self, cond: Condition, generator: torch.Generator | None = None) -> Latents:
        """``Latents(spatial=[B, channels, H // scale, W // scale])``."""
        if cond.size is None:
            raise ValueError(
                "core.spatial_noise needs the output size, but Condition.size is None: give the "
                "Condition a spatial map (label_map, mask, ...) or set size=(H, W)"
            )
        h, w = cond.size
        s = self.config.scale
        noise = torch.randn(
            cond.batch_size,
            self.config.channels,
            max(h // s, 1),
            max(w // s, 1),
            generator=generator,
            device=cond.device,
        )
        return Latents(spatial=noise)
