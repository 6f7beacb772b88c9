"""The SPADE (GauGAN) generator and CLVAE's generator with CSE blocks.

Stages (``self.stages``, official names in brackets) for ``upsampling="normal"``:
``0 [head_0]``, ``1 [G_middle_0]``, ``2 [G_middle_1]``, ``3..6 [up_0..up_3]`` (+ ``7 [up_4]``
for ``"most"``), each a :class:`SPADEResBlock`; a nearest x2 upsampling runs before stages 1,
3, 4, 5, 6 (and 2 for ``"more"``/``"most"``, 7 for ``"most"``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import Field
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

import synth
from synth.config import normalize_spec
from synth.nn import InitScheme, init_weights, spectral_conv2d
from synth.nn.layers import LabelConv2d
from synth.registry import get_registry

__all__ = ["CLVAEGenerator", "SPADEGenerator", "SPADEResBlock", "num_up_layers"]

UPSAMPLING_LAYERS = {"normal": 5, "more": 6, "most": 7}


def num_up_layers(mode: str) -> int:
    """Number of x2 upsamplings of the SPADE generator for ``mode`` (normal 5, more 6, most 7)."""
    return UPSAMPLING_LAYERS[mode]


def _spec_uses_instances(spec: Any) -> bool:
    """Whether a slot spec sets ``use_instances: true`` itself."""
    return isinstance(spec, dict) and bool(spec.get("use_instances", False))


def _sn(conv: nn.Conv2d, on: bool) -> nn.Module:
    return spectral_norm(conv) if on else conv


#: On CPU, stages whose maps have at least this many pixels run channels-last (below it the
#: weights outweigh the maps: oneDNN would reorder each weight at every call, bench/clvae.py).
CHANNELS_LAST_MIN_PIXELS = 32 * 32


def _cpu_layout(x: Tensor) -> Tensor:
    """``x`` in the memory layout oneDNN's convs run fastest for its size, on CPU: channels-last
    for large maps (the gathered label convs give NHWC γ/β there too), contiguous NCHW for small
    ones. Unchanged elsewhere."""
    if x.device.type != "cpu":
        return x
    big = x.shape[-2] * x.shape[-1] >= CHANNELS_LAST_MIN_PIXELS
    return x.contiguous(memory_format=torch.channels_last if big else torch.contiguous_format)


class SPADEResBlock(nn.Module):
    """SPADE residual block: ``x_s + conv_1(act(norm_1(conv_0(act(norm_0(x))))))``.

    ``act`` is LeakyReLU(0.2); the shortcut is ``x`` when ``fin == fout``, else the learned
    ``conv_s(norm_s(x))`` (1x1, no bias, no activation). ``fmiddle = min(fin, fout)``.
    Convs carry spectral norm (torch's parametrization) when ``spectral``. ``make_norm(c)``
    builds a conditioning block for ``c`` channels. ``x: [B, fin, H, W] -> [B, fout, H, W]``.
    """

    def __init__(
        self, fin: int, fout: int, make_norm: Callable[[int], nn.Module], spectral: bool = True
    ) -> None:
        super().__init__()
        self.learned_shortcut = fin != fout
        fmid = min(fin, fout)
        self.conv_0 = _sn(nn.Conv2d(fin, fmid, 3, padding=1), spectral)
        self.conv_1 = _sn(nn.Conv2d(fmid, fout, 3, padding=1), spectral)
        self.norm_0 = make_norm(fin)
        self.norm_1 = make_norm(fmid)
        if self.learned_shortcut:
            self.conv_s = _sn(nn.Conv2d(fin, fout, 1, bias=False), spectral)
            self.norm_s = make_norm(fin)

    def forward(self, x: Tensor, ctx: synth.Context) -> Tensor:
        conv = spectral_conv2d  # = module(x), dividing the output by σ where that is cheaper
        x_s = conv(self.conv_s, self.norm_s(x, ctx)) if self.learned_shortcut else x
        dx = conv(self.conv_0, F.leaky_relu(self.norm_0(x, ctx), 0.2))
        dx = conv(self.conv_1, F.leaky_relu(self.norm_1(dx, ctx), 0.2))
        return x_s + dx


class SPADEGenerator(synth.Generator):
    """GauGAN generator (Park et al. 2019, §3 and appendix A): SPADE residual blocks.

    Input at the base size ``(H, W) / 2**n`` (``n`` = 5, 6, 7 for ``upsampling`` normal, more,
    most):

    - ``z_dim == 0``: ``fc`` = 3x3 conv of the one-hot label map at the base size (computed by
      gathering, :class:`synth.nn.layers.LabelConv2d`), any size that is a multiple of ``2**n``;
    - ``z_dim > 0`` (GauGAN-VAE): ``fc = Linear(z_dim, 16·ngf·sh·sw)`` of ``latents.z`` reshaped
      to ``[B, 16·ngf, sh, sw]`` with ``sw = crop_size / 2**n``, ``sh = round(sw /
      aspect_ratio)``: the output is then exactly ``(sh·2**n, sw·2**n)``.

    Then the stages (channels 16,16,16,8,4,2,1 (,½) × ngf), LeakyReLU(0.2), ``conv_img`` (3x3 to
    RGB) and tanh: ``image [B, 3, H, W]`` in ``[-1, 1]``; ``features[i]`` is stage i's output.

    The conditional norm of every block is the **slot** ``norm`` (default ``clvae.spade``),
    built once per use and offered ``channels``, ``num_classes``, ``stage``, ``num_stages``,
    ``style_dim`` and ``code_dim``: any conditioning block whose requirements the data and the
    injector meet can be swapped in (e.g. ``core.adain`` with ``style_dim > 0`` and
    ``core.gaussian``).

    ``use_instances`` (SPADE's Cityscapes models, official ``no_instance=False``) adds the
    instance boundary map of ``Condition.instance_map`` as one more channel after the one-hot
    map: the label ``fc`` reads ``cat(one_hot, edges)`` at the base size (``K + 1`` input
    channels; not used with ``z_dim > 0``), and when the ``norm`` slot's Config declares
    ``use_instances`` (``clvae.spade`` does) the generator sets it to true in the slot's spec
    (``use_instances`` is not a runtime argument, so it travels in the spec; a slot spec that
    says ``use_instances: false`` is an error). A block without the field (e.g. ``core.adain``)
    is built as is. Requires ``instance_map`` then.
    """

    class Config(synth.PartConfig):
        num_classes: int = Field(ge=1, description="K, classes of the label map")
        ngf: int = Field(64, ge=1, description="width multiplier")
        z_dim: int = Field(0, ge=0, description="> 0: GauGAN-VAE, the input is fc(z)")
        style_dim: int = Field(0, ge=0, description="offered to the norm slot and the injector")
        upsampling: Literal["normal", "more", "most"] = "normal"
        crop_size: int = Field(256, ge=1, description="output width with z_dim > 0")
        aspect_ratio: float = Field(1.0, gt=0, description="width / height with z_dim > 0")
        spectral_norm: bool = True
        use_instances: bool = Field(
            False, description="add the instance-edge channel to fc and the norm slot"
        )
        norm: synth.PartSpec = Field(
            default_factory=lambda: {"type": "clvae.spade"},
            description="conditioning block of every residual block (slot)",
        )
        init: InitScheme = Field(
            "default",
            description="weight initialisation (synth.nn.init); the recipes use 'xavier', the "
            "official init_weights: xavier-normal gain 0.02, biases 0",
        )

    size_multiple: ClassVar[int] = 32
    config: Config

    @classmethod
    def requirements(cls, config: synth.PartConfig | None = None) -> frozenset[str]:
        """``label_map``, plus ``z`` with ``z_dim > 0`` and ``instance_map`` with
        ``use_instances`` (also when only the ``norm`` spec sets it)."""
        out = {"label_map"}
        if config is not None and getattr(config, "z_dim", 0) > 0:
            out.add("z")
        if config is not None and (
            getattr(config, "use_instances", False)
            or _spec_uses_instances(getattr(config, "norm", None))
        ):
            out.add("instance_map")
        return frozenset(out)

    def __init__(self, config: Config | dict | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        cfg = self.config
        n = num_up_layers(cfg.upsampling)
        self.size_multiple = 2**n
        nf = cfg.ngf
        mults = [16, 16, 16, 8, 4, 2, 1]
        ups = [False, True, cfg.upsampling != "normal", True, True, True, True]
        chans = [(16 * nf, m * nf) for m in mults[:1]] + [
            (mults[i - 1] * nf, mults[i] * nf) for i in range(1, len(mults))
        ]
        if cfg.upsampling == "most":
            chans.append((nf, nf // 2))
            ups.append(True)
        self._up_before = ups
        self.sw = cfg.crop_size // 2**n
        self.sh = round(self.sw / cfg.aspect_ratio)
        if cfg.z_dim > 0:
            if self.sw < 1 or self.sh < 1:
                raise ValueError(
                    f"crop_size={cfg.crop_size} is too small for upsampling={cfg.upsampling!r}: "
                    f"it must be at least {2**n}"
                )
            self.fc: nn.Module = nn.Linear(cfg.z_dim, 16 * nf * self.sw * self.sh)
        else:
            self.fc = LabelConv2d(
                cfg.num_classes, 16 * nf, 3, padding=1, extra_channels=int(cfg.use_instances)
            )
        self.stage_channels = [fout for _, fout in chans]
        scales, s = [], 1
        for up in reversed(ups):
            scales.append(s)
            s *= 2 if up else 1
        self.stage_scales = scales[::-1]
        num_stages = len(chans)
        self.stages = nn.ModuleList(
            SPADEResBlock(fin, fout, self._norm_factory(i, num_stages), cfg.spectral_norm)
            for i, (fin, fout) in enumerate(chans)
        )
        self.conv_img = nn.Conv2d(self.stage_channels[-1], 3, 3, padding=1)
        init_weights(self, cfg.init)

    def _norm_factory(self, stage: int, num_stages: int) -> Callable[[int], nn.Module]:
        """Builds the norm slot for ``stage`` given a channel count."""
        cfg = self.config
        spec = self._norm_spec()

        def make(channels: int) -> nn.Module:
            return self.build_slot(
                spec,
                channels=channels,
                num_classes=cfg.num_classes,
                stage=stage,
                num_stages=num_stages,
                style_dim=cfg.style_dim,
            )

        return make

    def _norm_spec(self) -> dict[str, Any]:
        """The ``norm`` slot's spec, with ``use_instances: true`` when the generator uses
        instances and the slot's Config declares the field."""
        spec = normalize_spec(self.config.norm)
        if not self.config.use_instances:
            return spec
        cls = get_registry().resolve(spec["type"])
        if "use_instances" in cls.Config.model_fields:
            if spec.get("use_instances", True) is False:
                raise ValueError(
                    f"{type(self).__name__} has use_instances=true but its norm slot "
                    f"{spec['type']!r} says use_instances: false; drop it from the slot spec"
                )
            spec["use_instances"] = True
        return spec

    # ------------------------------------------------------------------ boundary
    def check_condition(self, cond: synth.Condition) -> None:
        """Size must be a multiple of ``2**n``; with ``z_dim > 0`` exactly ``(sh, sw)·2**n``."""
        if cond.size is None:
            raise ValueError(
                f"{type(self).__name__} needs the output size: give the Condition a label_map"
            )
        super().check_condition(cond)
        if self.config.z_dim > 0:
            want = (self.sh * self.size_multiple, self.sw * self.size_multiple)
            if tuple(cond.size) != want:
                raise ValueError(
                    f"{type(self).__name__} with z_dim > 0 makes {want} images (crop_size="
                    f"{self.config.crop_size}, aspect_ratio={self.config.aspect_ratio}) but the "
                    f"Condition has size {tuple(cond.size)}; resize the label map or set "
                    "crop_size/aspect_ratio"
                )

    # ------------------------------------------------------------------ forward
    def _input(self, cond: synth.Condition, ctx: synth.Context) -> Tensor:
        """``[B, 16·ngf, h0, w0]``: fc of the label map at the base size, or of ``z``."""
        cfg = self.config
        if cfg.z_dim > 0:
            z = ctx.latents.z
            if z is None or z.shape[-1] != cfg.z_dim:
                got = None if z is None else tuple(z.shape)
                raise ValueError(
                    f"{type(self).__name__} has z_dim={cfg.z_dim} and reads latents.z "
                    f"[B, {cfg.z_dim}] (got {got}): compose it with an injector that provides "
                    "'z' (clvae.conv_encoder) or pass latents=synth.Latents(z=...)"
                )
            x = self.fc(z.to(self.fc.weight.dtype))
            return rearrange(x, "b (c h w) -> b c h w", h=self.sh, w=self.sw)
        assert cond.size is not None
        m = self.size_multiple
        size = (cond.size[0] // m, cond.size[1] // m)
        edges = ctx.instance_edges(size) if cfg.use_instances else None
        return self.fc(ctx.labels(size), edges)

    def _context(self, cond: synth.Condition, latents: synth.Latents | None) -> synth.Context:
        return synth.Context(cond, latents)

    def forward(
        self,
        cond: synth.Condition,
        latents: synth.Latents | None = None,
        *,
        return_features: bool = False,
    ) -> synth.SynthesisOutput:
        """``cond`` (+ ``latents``) -> ``image: [B, 3, H, W]`` in ``[-1, 1]``.

        ``features[i]: [B, stage_channels[i], H / stage_scales[i], W / stage_scales[i]]``.
        """
        ctx = self._context(cond, latents)
        x = self._input(cond, ctx)
        features: list[Tensor] = []
        for i, stage in enumerate(self.stages):
            if self._up_before[i]:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = stage(_cpu_layout(x), ctx.at(i))
            features.append(x)
        image = torch.tanh(self.conv_img(F.leaky_relu(x, 0.2))).contiguous()
        return synth.SynthesisOutput(image=image, features=features if return_features else None)


class CLVAEGenerator(SPADEGenerator):
    """CLVAE generator (Endo & Kanamori 2021, §3.2.1, eq. 10): SPADE generator with CSE blocks.

    ``fc = Linear(z_dim, 16·ngf·sh·sw)`` reads the global code ``z_1 = latents.z``; stage ``i <
    len(code_layers)`` uses the ``cse`` slot (default ``clvae.cse``) reading
    ``latents.class_codes[i]: [B, K, code_dim]`` and the label map at ``cond.size /
    2**(code_layers[i] + 1)`` (the resolution of the encoder layer the codes come from); the
    later stages use the ``norm`` slot (plain SPADE on the one-hot map). The default
    ``code_layers = [4, 3, 3, 2, 1, 0]`` is the official choice for the K > L missing latents
    (§3.2.1): ``G_middle_1`` reuses ``G_middle_0``'s codes and ``up_3`` (and ``up_4``) read
    the one-hot map.

    One class embedding ``W = embedding.weight: [K, code_dim]`` is shared by all CSE stages
    (as in the official code); the generator adds it to the codes before the blocks read them,
    so eq. 12's ``W·T(M) + z_l·T(M)`` becomes one gather of ``(W + z_l)`` by label.
    """

    class Config(SPADEGenerator.Config):
        z_dim: int = Field(256, ge=1, description="N_1, size of the global code z_1")
        code_dim: int | None = Field(
            None, ge=1, description="N, size of each class code (None: num_classes, the paper's)"
        )
        code_layers: list[int] = Field(
            default_factory=lambda: [4, 3, 3, 2, 1, 0],
            description="encoder layer whose codes stage i reads (first len() stages use CSE)",
        )
        cse: synth.PartSpec = Field(
            default_factory=lambda: {"type": "clvae.cse"},
            description="conditioning block of the CSE stages (slot)",
        )

    config: Config

    @classmethod
    def requirements(cls, config: synth.PartConfig | None = None) -> frozenset[str]:
        """``label_map``, ``z`` and ``class_codes`` (+ ``instance_map`` when the ``norm``
        spec sets ``use_instances`` itself)."""
        out = {"label_map", "z", "class_codes"}
        if config is not None and _spec_uses_instances(getattr(config, "norm", None)):
            out.add("instance_map")
        return frozenset(out)

    def __init__(self, config: Config | dict | None = None, **kwargs: Any) -> None:
        if self.coerce_config(config, **kwargs).use_instances:  # type: ignore[attr-defined]
            raise ValueError(
                "clvae.clvae_generator does not take instance edges (use_instances): the "
                "official CLVAE models use none; use clvae.spade_generator"
            )
        super().__init__(config, **kwargs)
        cfg = self.config
        if len(cfg.code_layers) > len(self.stages):
            raise ValueError(
                f"code_layers has {len(cfg.code_layers)} entries but the generator has "
                f"{len(self.stages)} stages; give at most one per stage"
            )
        self.embedding = nn.Embedding(cfg.num_classes, self.code_dim)

    @property
    def code_dim(self) -> int:
        return self.config.code_dim or self.config.num_classes

    def runtime_args(self) -> dict[str, Any]:
        """The base offers, with ``code_dim`` resolved (``num_classes`` when not set)."""
        out = super().runtime_args()
        out["code_dim"] = self.code_dim
        return out

    def _norm_factory(self, stage: int, num_stages: int) -> Callable[[int], nn.Module]:
        cfg = self.config
        if stage >= len(cfg.code_layers):
            return super()._norm_factory(stage, num_stages)

        def make(channels: int) -> nn.Module:
            return self.build_slot(
                cfg.cse,
                channels=channels,
                num_classes=cfg.num_classes,
                stage=stage,
                num_stages=num_stages,
                style_dim=cfg.style_dim,
                code_dim=self.code_dim,
                embedding=False,
                label_scale=2 ** (cfg.code_layers[stage] + 1),
            )

        return make

    def _context(self, cond: synth.Condition, latents: synth.Latents | None) -> synth.Context:
        """Adds the shared class embedding ``W`` to every CSE stage's codes (eq. 12)."""
        if latents is None or latents.class_codes is None:
            raise ValueError(
                "clvae.clvae_generator reads latents.class_codes (one [B, K, code_dim] per CSE "
                "stage): compose it with clvae.class_layer_encoder or pass synth.Latents(...)"
            )
        n = len(self.config.code_layers)
        if len(latents.class_codes) < n:
            raise ValueError(
                f"clvae.clvae_generator has {n} CSE stages but latents.class_codes has "
                f"{len(latents.class_codes)} entries; give one [B, K, code_dim] per CSE stage"
            )
        w = rearrange(self.embedding.weight, "k d -> 1 k d")
        codes = [c.to(w.dtype) + w for c in latents.class_codes[:n]]
        return synth.Context(cond, dataclasses.replace(latents, class_codes=codes))
