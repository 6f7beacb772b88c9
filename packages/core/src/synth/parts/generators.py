"""``core.simple_generator``: a small, readable reference generator.

It exercises every slot mechanism a plugin generator uses, so plugin authors can copy it:

- requirements that depend on the config (:meth:`SimpleGenerator.requirements`);
- a conditional-norm slot (``norm``) built once per stage with :meth:`Generator.build_slot`,
  offered ``channels``, ``num_classes``, ``stage``, ``num_stages`` and ``style_dim``;
- one :class:`synth.Context` per forward, handed to stage ``i`` as ``ctx.at(i)``;
- stages in ``self.stages: nn.ModuleList`` (stage ``i``'s output is ``features[i]``), so
  feature taps and rewrites attach with forward hooks;
- latents from an injector: a global code ``z`` and a spatial noise map, with runtime
  arguments offered to the injector (:meth:`SimpleGenerator.runtime_args`);
- a size check at the boundary (:meth:`SimpleGenerator.check_condition`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from einops import repeat
from pydantic import Field
from torch import Tensor, nn

from ..condition import Condition
from ..config import PartConfig, PartSpec
from ..context import Context
from ..latents import Latents
from ..outputs import SynthesisOutput
from .base import ConditioningBlock, Generator

__all__ = ["SimpleBlock", "SimpleGenerator"]


class SimpleBlock(nn.Module):
    """One stage: ``upsample x2 (nearest) -> conv3x3 -> norm(x, ctx) -> LeakyReLU(0.2)``.

    ``x: [B, C_in, h, w] -> [B, C_out, 2h, 2w]``.
    """

    def __init__(self, in_channels: int, out_channels: int, norm: ConditioningBlock) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm = norm

    def forward(self, x: Tensor, ctx: Context) -> Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.norm(self.conv(x), ctx)
        return F.leaky_relu(x, 0.2)


class SimpleGenerator(Generator):
    """A small slot-driven generator (reference implementation for plugin authors).

    Input at the base size ``(H / 2**num_stages, W / 2**num_stages)``: the concatenation of
    the one-hot label map ``[B, K, h, w]`` (when ``num_classes`` is set), the noise map
    ``latents.spatial`` resized to the base size (when ``noise_channels > 0``) and ``z: [B, Z]``
    broadcast to ``[B, Z, h, w]`` (when ``z_dim > 0``), mapped by a 3x3 conv to the stage-0
    width. With none of these it starts from a learned constant ``[1, C_0, 4, 4]``, resized to
    the base size and expanded to the batch. Then ``num_stages`` :class:`SimpleBlock` stages (each
    doubles the resolution; stage ``i`` has ``ngf * 2**(num_stages-1-i)`` channels and its norm
    is built from the ``norm`` slot), and a 3x3 conv to RGB with ``tanh``:
    ``image: [B, 3, H, W]`` in ``[-1, 1]``.

    Reads ``label_map`` (with ``num_classes``), ``z`` (with ``z_dim > 0``) and ``spatial`` (with
    ``noise_channels > 0``); the norm slot may read more (e.g. ``core.adain`` reads ``styles``,
    which needs ``style_dim > 0``).
    """

    class Config(PartConfig):
        num_classes: int | None = Field(None, ge=1, description="K; reads the label map if set")
        ngf: int = Field(16, ge=1, description="width of the last stage")
        num_stages: int = Field(3, ge=1, description="number of x2 upsampling stages")
        z_dim: int = Field(0, ge=0, description="global code size (reads latents.z if > 0)")
        style_dim: int = Field(0, ge=0, description="style code size, offered to the norm slot")
        noise_channels: int = Field(0, ge=0, description="reads latents.spatial if > 0")
        norm: PartSpec = Field(
            default_factory=lambda: {"type": "core.instance_norm"},
            description="conditioning block after each stage's conv",
        )

    requires: ClassVar[frozenset[str]] = frozenset()
    #: Side of the learned constant input used when nothing else feeds the first conv.
    const_size: ClassVar[int] = 4
    config: Config

    @classmethod
    def requirements(cls, config: PartConfig | None = None) -> frozenset[str]:
        """``label_map`` / ``z`` / ``spatial`` as the config asks (none without a config)."""
        if config is None:
            return cls.requires
        out = set()
        if getattr(config, "num_classes", None) is not None:
            out.add("label_map")
        if getattr(config, "z_dim", 0) > 0:
            out.add("z")
        if getattr(config, "noise_channels", 0) > 0:
            out.add("spatial")
        return frozenset(out)

    def __init__(self, config: Config | dict | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        cfg = self.config
        s = cfg.num_stages
        self.size_multiple = 2**s  # each stage doubles the base resolution
        self.stage_channels = [max(cfg.ngf, cfg.ngf * 2 ** (s - 1 - i)) for i in range(s)]
        self.stage_scales = [2 ** (s - 1 - i) for i in range(s)]
        self.in_channels = (cfg.num_classes or 0) + cfg.noise_channels + cfg.z_dim
        c0 = self.stage_channels[0]
        if self.in_channels > 0:
            self.head: nn.Conv2d | None = nn.Conv2d(self.in_channels, c0, 3, padding=1)
            self.register_parameter("const", None)
        else:
            self.head = None
            self.const = nn.Parameter(torch.randn(1, c0, self.const_size, self.const_size))
        blocks = []
        for i, c in enumerate(self.stage_channels):
            norm = self.build_slot(
                cfg.norm,
                channels=c,
                num_classes=cfg.num_classes,
                stage=i,
                num_stages=s,
                style_dim=cfg.style_dim,
            )
            blocks.append(SimpleBlock(self.stage_channels[i - 1] if i else c0, c, norm))
        self.stages = nn.ModuleList(blocks)
        self.to_rgb = nn.Conv2d(self.stage_channels[-1], self.image_channels, 3, padding=1)

    # ------------------------------------------------------------------ boundary checks
    def check_condition(self, cond: Condition) -> None:
        """Raise ``ValueError`` unless ``cond.size`` is given and a multiple of ``2**num_stages``."""
        if cond.size is None:
            raise ValueError(
                f"{type(self).__name__} needs the output size, but Condition.size is None: give "
                "the Condition a spatial map (label_map, mask, ...) or set size=(H, W)"
            )
        super().check_condition(cond)

    def runtime_args(self) -> dict[str, Any]:
        """The base class's offers plus ``channels = noise_channels`` for a spatial injector."""
        out = super().runtime_args()
        out["channels"] = self.config.noise_channels
        return out

    # ------------------------------------------------------------------ forward
    def _input(self, cond: Condition, latents: Latents, ctx: Context) -> Tensor:
        """The base-size input ``[B, C_0, h, w]`` (after the head conv or the constant)."""
        cfg = self.config
        assert cond.size is not None
        base = (cond.size[0] // self.size_multiple, cond.size[1] // self.size_multiple)
        if self.head is None:
            const = self.const
            if tuple(const.shape[-2:]) != base:
                const = F.interpolate(const, size=base, mode="bilinear", align_corners=False)
            return const.expand(cond.batch_size, -1, -1, -1)
        dtype = self.head.weight.dtype
        parts: list[Tensor] = []
        if cfg.num_classes is not None:
            parts.append(ctx.one_hot(base).to(dtype))
        if cfg.noise_channels > 0:
            noise = latents.spatial
            if noise is None:
                raise ValueError(
                    f"{type(self).__name__} has noise_channels={cfg.noise_channels} and reads "
                    "latents.spatial, which is missing: compose the model with an injector that "
                    "provides 'spatial', e.g. core.spatial_noise, or pass "
                    "latents=synth.Latents(spatial=...)"
                )
            if noise.shape[1] != cfg.noise_channels:
                raise ValueError(
                    f"latents.spatial has {noise.shape[1]} channels but the generator has "
                    f"noise_channels={cfg.noise_channels}; give a [B, {cfg.noise_channels}, h, w] "
                    "noise map"
                )
            if tuple(noise.shape[-2:]) != base:
                noise = F.interpolate(noise, size=base, mode="nearest")
            parts.append(noise.to(dtype))
        if cfg.z_dim > 0:
            z = latents.z
            if z is None:
                raise ValueError(
                    f"{type(self).__name__} has z_dim={cfg.z_dim} and reads latents.z, which is "
                    "missing: compose the model with an injector that provides 'z', e.g. "
                    "core.gaussian, or pass latents=synth.Latents(z=...)"
                )
            if z.shape[-1] != cfg.z_dim:
                raise ValueError(
                    f"latents.z has shape {tuple(z.shape)} but the generator has "
                    f"z_dim={cfg.z_dim}; give a [B, {cfg.z_dim}] code"
                )
            parts.append(repeat(z.to(dtype), "b z -> b z h w", h=base[0], w=base[1]))
        return self.head(torch.cat(parts, dim=1))

    def forward(
        self, cond: Condition, latents: Latents | None = None, *, return_features: bool = False
    ) -> SynthesisOutput:
        """``cond`` (+ ``latents``) -> ``image: [B, 3, H, W]`` in ``[-1, 1]``.

        With ``return_features``, ``features[i]: [B, stage_channels[i], H / stage_scales[i],
        W / stage_scales[i]]`` is stage ``i``'s output.
        """
        ctx = Context(cond, latents)
        x = self._input(cond, ctx.latents, ctx)
        features: list[Tensor] = []
        for i, stage in enumerate(self.stages):
            x = stage(x, ctx.at(i))
            features.append(x)
        image = torch.tanh(self.to_rgb(x))
        return SynthesisOutput(image=image, features=features if return_features else None)
