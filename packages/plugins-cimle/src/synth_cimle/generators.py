"""cIMLE generators: the RRDB super-resolution network (§5.1.1) and the CRN (§5.2.1).

``cimle.rrdb_generator``
    ESRGAN's residual-in-residual dense network (Wang et al. 2018) with code channels
    concatenated to the low-resolution input before the first conv, ×2 upsampling blocks
    (nearest or bilinear, then conv + LeakyReLU 0.2), an HR conv and a last conv followed by
    ``tanh`` (§5.1.1: "we add a tanh activation"). The official code maps ``tanh`` to
    ``[0, 1]``; synth images live in ``[-1, 1]``, so the ``tanh`` output *is* the image
    (``official = (ours + 1) / 2``). With ``hierarchical=True`` it is a cascade of ×2 RRDB
    networks, each with its own code (the coarse-to-fine variant), and returns a ``pyramid``.
``cimle.crn_generator``
    Cascaded refinement network (Chen & Koltun 2017) with noise channels: levels from a base
    size up to the output, each ``concat(upsampled previous, one-hot label, noise) -> 2 × (3x3
    conv -> layer norm -> LeakyReLU 0.2)``; a final 1x1 conv to RGB (``tanh``, synth's range).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from synth import Condition, Context, Generator, Latents, PartConfig, SynthesisOutput

__all__ = ["CRNGenerator", "LayerNorm2d", "RRDBGenerator", "stage_code_key"]


def stage_code_key(stage: int) -> str:
    """``Latents.extras`` key of the code of ×2 stage ``stage`` (hierarchical variant)."""
    return f"cimle.code.{stage}"


# --------------------------------------------------------------------------- RRDB blocks


class ResidualDenseBlock(nn.Module):
    """ESRGAN RDB: five 3x3 convs with dense connections, ``x + 0.2 · conv5(...)``.

    ``x: [B, nf, h, w] -> [B, nf, h, w]``; convs 1–4 output ``gc`` channels + LeakyReLU 0.2.
    """

    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            [nn.Conv2d(nf + i * gc, gc if i < 4 else nf, 3, padding=1) for i in range(5)]
        )

    def forward(self, x: Tensor) -> Tensor:
        feats = [x]
        for i, conv in enumerate(self.convs):
            out = conv(torch.cat(feats, dim=1))
            if i < 4:
                feats.append(F.leaky_relu(out, 0.2))
        return x + 0.2 * out


class RRDB(nn.Module):
    """Residual in residual dense block: three RDBs, ``x + 0.2 · RDB3(RDB2(RDB1(x)))``."""

    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.rdbs = nn.Sequential(*(ResidualDenseBlock(nf, gc) for _ in range(3)))

    def forward(self, x: Tensor) -> Tensor:
        return x + 0.2 * self.rdbs(x)


class RRDBTrunk(nn.Module):
    """``nb`` RRDBs then a 3x3 conv, with a long skip: ``x + conv(RRDBs(x))`` (LR features)."""

    def __init__(self, nf: int, nb: int, gc: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(RRDB(nf, gc) for _ in range(nb)))
        self.conv = nn.Conv2d(nf, nf, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(self.blocks(x))


class Upsample2x(nn.Module):
    """``interpolate ×2 (nearest|bilinear) -> 3x3 conv -> LeakyReLU 0.2``: ``[B,nf,h,w] -> [B,nf,2h,2w]``."""

    def __init__(self, nf: int, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.conv = nn.Conv2d(nf, nf, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        kw: dict[str, Any] = {} if self.mode == "nearest" else {"align_corners": False}
        x = F.interpolate(x, scale_factor=2, mode=self.mode, **kw)
        return F.leaky_relu(self.conv(x), 0.2)


class RRDBNet(nn.Module):
    """One IMRRDBNet: ``[B, 3 + c, h, w] -> [B, 3, h·s, w·s]`` pre-``tanh`` (s = 2^n_up).

    ``conv_first -> trunk -> n_up × Upsample2x -> hr_conv + LeakyReLU -> conv_last``.
    """

    def __init__(self, in_channels: int, nf: int, nb: int, gc: int, n_up: int, mode: str) -> None:
        super().__init__()
        self.conv_first = nn.Conv2d(in_channels, nf, 3, padding=1)
        self.trunk = RRDBTrunk(nf, nb, gc)
        self.ups = nn.ModuleList([Upsample2x(nf, mode) for _ in range(n_up)])
        self.hr_conv = nn.Conv2d(nf, nf, 3, padding=1)
        self.conv_last = nn.Conv2d(nf, 3, 3, padding=1)

    def forward(self, x: Tensor, features: list[Tensor] | None = None) -> Tensor:
        h = self.trunk(self.conv_first(x))
        if features is not None:
            features.append(h)
        for up in self.ups:
            h = up(h)
            if features is not None:
                features.append(h)
        return self.conv_last(F.leaky_relu(self.hr_conv(h), 0.2))


class _RRDBStage(nn.Module):
    """A stage of :class:`RRDBGenerator` (for hooks): wraps one module, same forward."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.body = module

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class RRDBGenerator(Generator):
    """RRDB super-resolution generator with a code concatenated to the LR input (§5.1.1, Fig. 4).

    Reads ``cond.image: [B, 3, h, w]`` (LR, in ``[-1, 1]``) and the code
    ``latents.spatial: [B, code_channels, h, w]`` (``cimle.spatial_code``); returns
    ``image: [B, 3, h·scale, w·scale] = tanh(net(concat(lr, code)))``.
    The LR input is fed to the first conv in ``input_range`` (``"[0,1]"`` as the official
    code, so converted weights give the same output). ``code_channels = 0`` is the
    deterministic pre-training model (§5.1.1: "pretrain the network with z set to zero" is
    also available by passing a zero code).

    Stages (``features``): the LR trunk output, then each ×2 upsampling block's output.

    ``hierarchical=True`` (coarse-to-fine variant): ``log2(scale)`` ×2 RRDB networks in cascade;
    stage k reads the previous RGB (the LR image for k = 0) and its own code
    ``latents.extras["cimle.code.k"]: [B, code_channels, h·2^k, w·2^k]``; the per-stage RGB
    outputs form ``pyramid`` (coarse to fine), its last entry is ``image``.
    """

    class Config(PartConfig):
        scale: Literal[2, 4, 8, 16] = 4
        nf: int = Field(64, ge=1, description="trunk width")
        nb: int = Field(23, ge=1, description="RRDBs per network")
        gc: int = Field(32, ge=1, description="growth channels of the dense blocks")
        code_channels: int = Field(5, ge=0, description="code channels at LR resolution")
        upsample: Literal["nearest", "bilinear"] = "nearest"
        input_range: Literal["[0,1]", "[-1,1]"] = "[0,1]"
        hierarchical: bool = False
        residual: Literal["none", "bicubic"] = "none"
        """``"bicubic"`` (a synth extension, not in the paper): ``image = tanh(net(...) +
        atanh(bicubic(lr)))`` with the last conv zero-initialised, so an untrained network
        starts at bicubic upsampling."""

    config: Config
    #: the output carries ``pyramid``: one RGB per ×2 stage (hierarchical), else ``[image]``
    has_pyramid: ClassVar[bool] = True
    requires: ClassVar[frozenset[str]] = frozenset({"image", "spatial"})

    @classmethod
    def requirements(cls, config: PartConfig | None = None) -> frozenset[str]:
        """``image`` always; ``spatial`` with codes (``cimle.code.k`` extras when hierarchical)."""
        if config is None:
            return cls.requires
        if getattr(config, "code_channels", 0) == 0:
            return frozenset({"image"})
        if getattr(config, "hierarchical", False):
            return frozenset({"image"})
        return cls.requires

    def __init__(self, config: Config | dict | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        c = self.config
        n_up = int(math.log2(c.scale))
        self.size_multiple = c.scale
        if c.hierarchical:
            nets = [
                RRDBNet(3 + c.code_channels, c.nf, c.nb, c.gc, 1, c.upsample) for _ in range(n_up)
            ]
            self.stages = nn.ModuleList(_RRDBStage(n) for n in nets)
            self.stage_channels = [3] * n_up
            self.stage_scales = [2 ** (n_up - 1 - i) for i in range(n_up)]
        else:
            net = RRDBNet(3 + c.code_channels, c.nf, c.nb, c.gc, n_up, c.upsample)
            self.conv_first = net.conv_first
            # stages (for hooks/feature taps): the LR trunk and each upsampling block
            self.stages = nn.ModuleList([net.trunk, *net.ups])
            self.hr_conv, self.conv_last = net.hr_conv, net.conv_last
            self.stage_channels = [c.nf] * (n_up + 1)
            self.stage_scales = [c.scale // 2**i for i in range(n_up + 1)]
        if c.residual == "bicubic":  # start exactly at bicubic upsampling
            lasts = (
                [self.conv_last]
                if not c.hierarchical
                else [st.body.conv_last for st in self.stages]
            )
            for conv in lasts:
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)

    def runtime_args(self) -> dict[str, Any]:
        """Offers ``channels = code_channels`` and ``num_stages`` (×2 stages when hierarchical)."""
        out = super().runtime_args()
        out["channels"] = self.config.code_channels
        return out

    def example_inputs(
        self, *, batch_size: int, size: tuple[int, int], generator: torch.Generator
    ) -> dict[str, Any]:
        """Conformance-kit inputs: an LR image ``[B, 3, H/s, W/s]``, ``size=(H, W)``, codes."""
        s = self.config.scale
        h, w = size[0] // s, size[1] // s
        lr = torch.tanh(torch.randn(batch_size, 3, h, w, generator=generator))
        cond = Condition(image=lr, size=(h * s, w * s))
        c = self.config.code_channels
        if c == 0:
            return {"cond": cond, "latents": None}
        if self.config.hierarchical:
            extras = {
                stage_code_key(k): torch.randn(
                    batch_size, c, h * 2**k, w * 2**k, generator=generator
                )
                for k in range(len(self.stages))
            }
            return {"cond": cond, "latents": Latents(extras=extras)}
        return {
            "cond": cond,
            "latents": Latents(spatial=torch.randn(batch_size, c, h, w, generator=generator)),
        }

    def output_size(self, input_size: tuple[int, int]) -> tuple[int, int]:
        """``input size × scale``: the LR image fixes the output size."""
        return (input_size[0] * self.config.scale, input_size[1] * self.config.scale)

    def check_condition(self, cond: Condition) -> None:
        """The LR image must be given and ``size == image size × scale``."""
        if cond.image is None:
            raise ValueError(
                "cimle.rrdb_generator needs the low-resolution image, Condition.image, which is "
                "missing: use a super-resolution dataset (synth.data.SuperResolution)"
            )
        h, w = cond.image.shape[-2:]
        want = self.output_size((h, w))
        if cond.size is not None and tuple(cond.size) != want:
            raise ValueError(
                f"cimle.rrdb_generator (scale {self.config.scale}) makes {want} from an LR image "
                f"of {(h, w)}, but Condition.size is {cond.size}; set size={want}"
            )

    def _code(self, latents: Latents, key: str | None, like: Tensor) -> Tensor | None:
        c = self.config.code_channels
        if c == 0:
            return None
        code = latents.spatial if key is None else latents.extras.get(key)
        if code is None:
            where = "latents.spatial" if key is None else f"latents.extras[{key!r}]"
            raise ValueError(
                f"cimle.rrdb_generator has code_channels={c} and reads {where}, which is "
                "missing: compose it with the cimle.spatial_code injector (per_stage=True for "
                "the hierarchical variant) or pass the codes"
            )
        want = (like.shape[0], c, *like.shape[-2:])
        if tuple(code.shape) != want:
            raise ValueError(
                f"cimle.rrdb_generator: code {key or 'spatial'} has shape {tuple(code.shape)}, "
                f"expected {want} (code channels at the resolution of the stage input)"
            )
        return code.to(like.dtype)

    def _base(self, rgb: Tensor, scale: int) -> Tensor | float:
        """``atanh(bicubic ×scale of rgb)`` with ``residual="bicubic"``, else 0."""
        if self.config.residual == "none":
            return 0.0
        up = F.interpolate(rgb.float(), scale_factor=scale, mode="bicubic", align_corners=False)
        return torch.atanh(up.clamp(-0.99, 0.99)).to(rgb.dtype)

    def _input(self, rgb: Tensor, code: Tensor | None) -> Tensor:
        if self.config.input_range == "[0,1]":
            rgb = (rgb + 1) * 0.5
        return rgb if code is None else torch.cat([rgb, code], dim=1)

    def forward(
        self, cond: Condition, latents: Latents | None = None, *, return_features: bool = False
    ) -> SynthesisOutput:
        """LR ``cond.image [B,3,h,w]`` + codes -> ``image [B, 3, h·scale, w·scale]`` in [-1, 1]."""
        self.check_condition(cond)
        assert cond.image is not None
        latents = latents if latents is not None else Latents()
        lr = cond.image
        if not self.config.hierarchical:
            lr = lr.to(self.conv_first.weight.dtype)
            x = self._input(lr, self._code(latents, None, lr))
            nhwc = x.device.type == "cpu" and x.dtype == torch.float32
            if nhwc and not torch.is_autocast_enabled("cpu"):
                # oneDNN's native layout: the convs follow the input's (~1/3 less time on CPU)
                x = x.contiguous(memory_format=torch.channels_last)
            h = self.conv_first(x)
            feats: list[Tensor] = []
            for stage in self.stages:
                h = stage(h)
                feats.append(h)
            out = self.conv_last(F.leaky_relu(self.hr_conv(h), 0.2))
            image = torch.tanh(out + self._base(lr, self.config.scale)).contiguous()
            return SynthesisOutput(
                image=image, features=feats if return_features else None, pyramid=[image]
            )
        pyramid: list[Tensor] = []
        x = lr.to(self.stages[0].body.conv_first.weight.dtype)
        for k, stage in enumerate(self.stages):
            code = self._code(latents, stage_code_key(k), x)
            x = torch.tanh(stage(self._input(x, code)) + self._base(x, 2))
            pyramid.append(x)
        return SynthesisOutput(
            image=x, features=list(pyramid) if return_features else None, pyramid=pyramid
        )


# --------------------------------------------------------------------------- CRN


class LayerNorm2d(nn.Module):
    """Layer norm over ``(C, H, W)`` per sample (TF-slim ``layer_norm``), per-channel affine:
    ``F.group_norm`` with one group.

    Statistics in fp32 (autocast-safe); ``x: [B, C, H, W] -> same``.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def reset_parameters(self) -> None:
        """Scale 1, shift 0 (as constructed)."""
        nn.init.ones_(self.weight)
        nn.init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        # one group = the statistics of the whole sample, with a per-channel affine
        w, b = self.weight.float(), self.bias.float()
        return F.group_norm(x.float(), 1, w, b, self.eps).to(x.dtype)


class CRNLevel(nn.Module):
    """One refinement level: ``2 × (3x3 conv -> LayerNorm2d -> LeakyReLU 0.2)``."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.norm1 = LayerNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2 = LayerNorm2d(channels)

    def forward(self, x: Tensor) -> Tensor:
        x = F.leaky_relu(self.norm1(self.conv1(x)), 0.2)
        return F.leaky_relu(self.norm2(self.conv2(x)), 0.2)


class CRNGenerator(Generator):
    """Cascaded refinement network with noise channels (§5.2.1; Chen & Koltun 2017).

    ``num_levels`` levels at ``size / 2^(num_levels-1-i)``; level i reads
    ``concat(level i-1 upsampled bilinearly (none for i = 0), label [B,K,h_i,w_i], noise
    [B, noise_channels, h_i, w_i] (latents.spatial resized))``. A final 1x1 conv maps the last
    level to RGB; ``tanh`` puts it in synth's ``[-1, 1]``.

    Resizing follows the official code (CRN's ``recursive_generator``) by default: the label
    one-hot is area-averaged (``label_resize="area"``: soft one-hot, TF ``resize_area``), the
    noise is resized bilinearly (``noise_resize``), the previous level is upsampled with
    ``align_corners=True`` (TF1 ``resize_bilinear(..., align_corners=True)``). TF1's legacy
    bilinear *down*-sampling of the noise samples other positions than PyTorch's half-pixel
    ``align_corners=False`` used here. ``"nearest"`` labels, ``"area"`` noise and
    ``align_corners=False`` are the older synth choices.
    Paper (GTA-5, 256×512): base 4×8, 7 levels, 10 noise channels from the noise encoder;
    official widths ``512 if height >= 128 else 1024`` (the recipe's ``channels``).
    Widths: ``channels`` per level (default ``min(max_channels, ngf·2^(L-1-i))``).
    """

    class Config(PartConfig):
        num_classes: int = Field(20, ge=1)
        num_levels: int = Field(7, ge=1, description="levels from the base size up")
        ngf: int = Field(64, ge=1, description="width of the finest level")
        max_channels: int = Field(1024, ge=1)
        channels: list[int] | None = Field(None, description="explicit width per level")
        noise_channels: int = Field(10, ge=0)
        label_resize: Literal["area", "nearest"] = "area"
        noise_resize: Literal["bilinear", "area"] = "bilinear"
        align_corners: bool = Field(True, description="bilinear upsampling of the previous level")

        @model_validator(mode="after")
        def _widths(self) -> CRNGenerator.Config:
            if self.channels is not None and len(self.channels) != self.num_levels:
                raise ValueError(
                    f"channels has {len(self.channels)} entries for num_levels="
                    f"{self.num_levels}; give one width per level"
                )
            return self

    config: Config
    requires: ClassVar[frozenset[str]] = frozenset({"label_map", "spatial"})

    @classmethod
    def requirements(cls, config: PartConfig | None = None) -> frozenset[str]:
        if config is not None and getattr(config, "noise_channels", 1) == 0:
            return frozenset({"label_map"})
        return cls.requires

    def __init__(self, config: Config | dict | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        c = self.config
        n = c.num_levels
        widths = c.channels or [min(c.max_channels, c.ngf * 2 ** (n - 1 - i)) for i in range(n)]
        self.size_multiple = 2 ** (n - 1)
        extra = c.num_classes + c.noise_channels
        self.stages = nn.ModuleList(
            CRNLevel(extra + (widths[i - 1] if i else 0), widths[i]) for i in range(n)
        )
        self.stage_channels = list(widths)
        self.stage_scales = [2 ** (n - 1 - i) for i in range(n)]
        self.to_rgb = nn.Conv2d(widths[-1], 3, 1)

    def runtime_args(self) -> dict[str, Any]:
        """Offers ``channels = noise_channels`` and ``num_classes`` to the injector."""
        out = super().runtime_args()
        out["channels"] = self.config.noise_channels
        return out

    def check_condition(self, cond: Condition) -> None:
        if cond.label_map is None or cond.size is None:
            raise ValueError("cimle.crn_generator needs Condition.label_map (and its size)")
        super().check_condition(cond)

    def _labels(self, ctx: Context, size: tuple[int, int], full: tuple[int, int]) -> Tensor:
        """``[B, K, h, w]`` label input of a level: the one-hot area-averaged from full size
        (soft at class borders) or nearest-resized (``label_resize``)."""
        if self.config.label_resize == "nearest" or size == full:
            return ctx.one_hot(size)
        return F.adaptive_avg_pool2d(ctx.one_hot(full).float(), size)

    @staticmethod
    def _resize(t: Tensor, size: tuple[int, int], mode: str) -> Tensor:
        """``t [B, C, h, w]`` to ``size``: bilinear (half-pixel) or area average."""
        if tuple(t.shape[-2:]) == size:
            return t
        if mode == "area":
            return F.adaptive_avg_pool2d(t.float(), size)
        return F.interpolate(t.float(), size=size, mode="bilinear", align_corners=False)

    def forward(
        self, cond: Condition, latents: Latents | None = None, *, return_features: bool = False
    ) -> SynthesisOutput:
        """``label_map [B,H,W]`` + ``spatial [B,noise_channels,h,w]`` -> ``image [B,3,H,W]``."""
        self.check_condition(cond)
        ctx = Context(cond, latents)
        assert cond.size is not None
        c = self.config
        dtype = self.to_rgb.weight.dtype
        noise = ctx.latents.spatial
        if c.noise_channels and (noise is None or noise.shape[1] != c.noise_channels):
            got = None if noise is None else tuple(noise.shape)
            raise ValueError(
                f"cimle.crn_generator reads latents.spatial [B, {c.noise_channels}, h, w], got "
                f"{got}: compose it with cimle.noise_encoder or core.spatial_noise"
            )
        feats: list[Tensor] = []
        x: Tensor | None = None
        H, W = cond.size
        for i, level in enumerate(self.stages):
            s = self.stage_scales[i]
            size = (H // s, W // s)
            parts = [self._labels(ctx, size, (H, W)).to(dtype)]
            if c.noise_channels:
                assert noise is not None
                parts.append(self._resize(noise, size, c.noise_resize).to(dtype))
            if x is not None:
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=c.align_corners)
                parts.insert(0, x)
            x = level(torch.cat(parts, dim=1))
            feats.append(x)
        assert x is not None
        image = torch.tanh(self.to_rgb(x))
        return SynthesisOutput(image=image, features=feats if return_features else None)
