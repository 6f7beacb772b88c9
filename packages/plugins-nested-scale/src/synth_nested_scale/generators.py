"""Nested-scale generators: the pyramid decoder (Fig. 3, eqs. 2–3) and the pyramid adapter.

``nested_scale.pyramid_decoder`` (:class:`PyramidDecoder`)
    The paper's decoder: a conditional code ``c`` from the Table 4 encoder, one base latent
    ``Z0`` through shared MLP layers, a per-scale affine ``A_k`` feeding AdaIN at scale ``k``,
    and one convolution to RGB at every scale. Returns the RGB pyramid, coarsest first.
``nested_scale.pyramid`` (:class:`Pyramid`)
    The adapter of DESIGN §3: gives any registered generator an RGB pyramid (one RGB conv per
    distinct stage scale) and per-scale codes, through forward hooks on its ``stages``.

Both read the per-scale codes from ``Latents.styles`` (one ``[B, style_dim]`` code per pyramid
level, coarsest first) and offer ``pyramid_levels``, ``num_stages = pyramid_levels`` and ``style_dim``
to the model's other parts, so ``core.gaussian`` (with ``shared_styles: true``: the paper's
single ``Z0`` at every scale in training) draws them. Replacing ``styles[k]`` alone leaves
every coarser pyramid level bit-identical: code ``k`` only enters at level ``k`` and later.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import Field, field_validator, model_validator
from torch import Tensor, nn

from synth import Condition, Context, Generator, Latents, PartConfig, PartSpec, SynthesisOutput
from synth.config import normalize_spec
from synth.errors import RegistryError
from synth.nn.norms import instance_normalize, modulate
from synth.registry import get_registry

from .encoders import TABLE4_CHANNELS, ConditionEncoder, encoder_sizes

__all__ = [
    "DecoderGeometry",
    "Pyramid",
    "PyramidDecoder",
    "StageModulation",
    "UpsamplingModule",
    "decoder_geometry",
    "pyramid_taps",
    "read_styles",
]


def read_styles(
    owner: str, latents: Latents | None, num_scales: int, style_dim: int, batch_size: int
) -> list[Tensor]:
    """``latents.styles`` checked: ``num_scales`` codes ``[B, style_dim]``, coarsest first."""
    styles = None if latents is None else latents.styles
    if styles is None:
        raise ValueError(
            f"{owner} reads latents.styles (one [B, {style_dim}] code per pyramid level, "
            f"{num_scales} levels), which are missing: compose the model with an injector that "
            "provides 'styles' (core.gaussian; shared_styles: true draws the paper's single Z0 "
            "for every scale) or pass latents=synth.Latents(styles=[...])"
        )
    if len(styles) != num_scales:
        raise ValueError(
            f"{owner} has {num_scales} pyramid levels but latents.styles has {len(styles)} "
            f"codes; give one [B, {style_dim}] code per level, coarsest first"
        )
    bad = [k for k, s in enumerate(styles) if tuple(s.shape) != (batch_size, style_dim)]
    if bad:
        shapes = [tuple(styles[k].shape) for k in bad]
        raise ValueError(
            f"{owner}: latents.styles{bad} have shapes {shapes}, expected "
            f"({batch_size}, {style_dim}) (batch size, style_dim)"
        )
    return list(styles)


# --------------------------------------------------------------------------- the decoder


class UpsamplingModule(nn.Module):
    """The upsampling module ``U`` of eqs. 2–3 at one scale (one stage of the decoder).

    ``[nearest ×2] (+ skip) -> num_convs × (conv 3×3 -> AdaIN -> LeakyReLU 0.2)``: StyleGAN's
    two convolutions per resolution, each AdaIN modulated by its slice of the scale's mapped
    code ``A_k(w)`` (``x̂·(1 + γ) + β``, statistics in fp32: :mod:`synth.nn.norms`). With
    ``norms`` (the decoder's ``norm`` slot, one block per conv) each conv is followed by
    ``norm(y, ctx)`` instead, the block reading what it needs from ``ctx`` (e.g. the scale's
    mapped code ``ctx.latents.styles[k]`` and the Condition's class map).

    ``forward(x [B, C_in, h, w], code [B, num_convs·2·C], skip [B, C_in, h', w'] | None,
    ctx) -> [B, C, h', w']`` with ``(h', w') = (2h, 2w)`` when ``upsample``, else ``(h, w)``.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        *,
        upsample: bool,
        num_convs: int = 2,
        norms: list[nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.upsample = upsample
        self.convs = nn.ModuleList(
            nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1) for i in range(num_convs)
        )
        if norms is not None:  # only then: the default state dict keeps its keys
            self.norms = nn.ModuleList(norms)

    def forward(
        self,
        x: Tensor,
        code: Tensor | None,
        skip: Tensor | None = None,
        ctx: Context | None = None,
    ) -> Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        if skip is not None:
            x = x + skip
        if hasattr(self, "norms"):
            for conv, norm in zip(self.convs, self.norms):
                x = F.leaky_relu(norm(conv(x), ctx), 0.2)
            return x
        assert code is not None
        params = rearrange(code, "b (n two c) -> n two b c 1 1", n=len(self.convs), two=2)
        for conv, (gamma, beta) in zip(self.convs, params.unbind(0)):
            y = conv(x)
            x = F.leaky_relu(modulate(instance_normalize(y), gamma, beta).to(y.dtype), 0.2)
        return x


class _DecoderConfig(PartConfig):
    input: Literal["image", "label_map"] = Field(
        "image",
        description="what the encoder reads: Condition.image (occluded or low-resolution "
        "image) or Condition.label_map",
    )
    num_classes: int | None = Field(None, ge=1, description="K, with input: label_map")
    use_mask: bool = Field(
        False, description="input image: also read Condition.mask (cat(image·mask, mask))"
    )
    variant: Literal["standard", "super_resolution"] = Field(
        "standard",
        description="super_resolution: decode from the LR input's resolution with encoder "
        "skips (supplement B)",
    )
    resolution: tuple[int, int] = Field((128, 128), description="output (H, W); an int: square")
    num_scales: int | None = Field(
        None, ge=1, description="pyramid levels (standard: default 6, 4×4..128×128)"
    )
    scale: int = Field(8, ge=2, description="super_resolution: output / input size (16→128: 8)")
    channels: int = Field(
        512, ge=1, description="decoder width at every scale; also caps the encoder widths"
    )
    encoder_channels: list[int] = Field(
        default_factory=lambda: list(TABLE4_CHANNELS),
        min_length=2,
        description="Table 4 widths: K4-S2-P1 layers, then the last K1-S2-P1 layer",
    )
    style_dim: int = Field(64, ge=1, description="width of Z0 and of each per-scale code")
    mapping_layers: int = Field(4, ge=1, description="shared MLP layers (Fig. 3)")
    convs_per_scale: int = Field(2, ge=1, description="conv + AdaIN pairs in each U")
    norm: PartSpec | None = Field(
        None,
        description="None: the paper's AdaIN from A_k(MLP(styles[k])); a conditioning block "
        "(e.g. collage.spatial_adain) after every conv instead, offered channels, stage = the "
        "scale, style_dim = channels (it reads the scale's mapped code MLP(styles[k]) as "
        "latents.styles[k]) and num_classes",
    )
    rgb_kernel: Literal[1, 3] = Field(1, description="kernel of the per-scale RGB conv")

    @field_validator("resolution", mode="before")
    @classmethod
    def _square(cls, v: Any) -> Any:
        return (v, v) if isinstance(v, int) else v

    @model_validator(mode="after")
    def _consistent(self) -> _DecoderConfig:
        if self.input == "label_map" and self.num_classes is None:
            raise ValueError("input: label_map needs num_classes (the label map's classes)")
        if self.use_mask and self.input != "image":
            raise ValueError("use_mask reads Condition.mask next to the image: needs input image")
        if self.variant == "super_resolution":
            if self.input != "image" or self.use_mask:
                raise ValueError(
                    "variant super_resolution reads the low-resolution Condition.image: set "
                    "input: image and use_mask: false"
                )
            if self.scale & (self.scale - 1):
                raise ValueError(f"scale={self.scale} must be a power of two (e.g. 8 for 16→128)")
            levels = int(math.log2(self.scale))
            if self.num_scales not in (None, levels):
                raise ValueError(
                    f"variant super_resolution with scale={self.scale} has {levels} pyramid "
                    f"levels (2×LR .. output); num_scales={self.num_scales} does not match: "
                    "leave it unset"
                )
        return self


@dataclasses.dataclass(frozen=True)
class DecoderGeometry:
    """Sizes derived from a decoder config (checked once, in ``__init__``)."""

    pyramid_scales: list[int]
    start: tuple[int, int]  # the decoder's first feature map (standard: level 0)
    encoder_sizes: list[tuple[int, int]]
    encoder_widths: list[int]

    @property
    def code_dim(self) -> int:
        """Length of the flattened conditional code ``c`` (the last encoder layer)."""
        h, w = self.encoder_sizes[-1]
        return self.encoder_widths[-1] * h * w


def decoder_geometry(cfg: _DecoderConfig) -> DecoderGeometry:
    """Pyramid scales, start size and encoder sizes of ``cfg``; ``ValueError`` if they do not fit."""
    H, W = cfg.resolution
    widths = [min(c, cfg.channels) for c in cfg.encoder_channels]
    sizes = encoder_sizes((H, W), len(widths))
    if cfg.variant == "super_resolution":
        n = int(math.log2(cfg.scale))
        div, start = cfg.scale, (H // cfg.scale, W // cfg.scale)
        if len(widths) - 1 < n:
            raise ValueError(
                f"super_resolution by {cfg.scale} reads the encoder feature at the input "
                f"resolution (layer {n}), but encoder_channels has only {len(widths) - 1} "
                "K4-S2-P1 layers; add layers or lower scale"
            )
    else:
        n = 6 if cfg.num_scales is None else cfg.num_scales
        div = 2 ** (n - 1)
        start = (H // div, W // div)
    if H % div or W % div or min(start) < 2:
        raise ValueError(
            f"resolution {(H, W)} does not fit {n} pyramid levels (the first at {start}): "
            f"it must be a multiple of {div} with the first level at least 2×2 (its AdaIN "
            "normalises over it)"
        )
    # instance norm over a 1×1 map is constant, so the encoder would lose its input there
    flat = [i + 1 for i, (h, w) in enumerate(sizes[1:-1], 1) if h * w < 2] + [
        i + 1 for i, (h, w) in enumerate(sizes) if min(h, w) < 1
    ]
    if flat:
        raise ValueError(
            f"the encoder's layer(s) {sorted(set(flat))} leave(s) maps too small at "
            f"resolution {(H, W)} (sizes {sizes}): every layer needs an output and instance "
            "norm needs more than one pixel; use fewer encoder_channels (layers) or a larger "
            "resolution"
        )
    scales = [2 ** (n - 1 - k) for k in range(n)]
    return DecoderGeometry(scales, start, sizes, widths)


class PyramidDecoder(Generator):
    """The nested-scale decoder (Fig. 3; eqs. 2–3; supplement A–B and Table 4).

    **Inputs** (``input``, :meth:`requirements`): ``Condition.image [B, 3, H, W]`` (the occluded
    image; with ``use_mask`` also ``Condition.mask`` and the encoder reads
    ``cat(image·mask, mask)``), or the low-resolution ``Condition.image [B, 3, H/s, W/s]``
    (``variant: super_resolution``, ``Condition.size`` ``s`` = ``scale`` times larger), or
    ``Condition.label_map [B, H, W]`` (gathered by the encoder's first conv); and the per-scale
    codes ``latents.styles`` (``num_scales`` × ``[B, style_dim]``, coarsest first). The output
    size is ``resolution``.

    **Conditional code** ``c``: the Table 4 encoder (:class:`ConditionEncoder`, widths capped at
    ``channels``) of the input; the last layer's output (K1-S2-P1: 2×2 at 128×128, see
    :mod:`synth_nested_scale.encoders`) is flattened into a vector — the supplement's "feature
    vector of the occluded image" — ``c: [B, 128·2·2]``.

    **Codes** (§3.1, Fig. 3): every level's code goes through the same MLP (``mapping_layers``
    × Linear + LeakyReLU 0.2, width ``channels``; "the first several shared layers of MLPs"),
    then through that scale's affine ``A_k``: ``Z_k = A_k(MLP(styles[k]))``, the ``(γ, β)`` of
    the scale's AdaINs, exposed as ``extras["scale_code/{k}"]: [B, convs_per_scale·2·channels]``
    (NDiv's latent side). In training every ``styles[k]`` is the same ``Z0`` (shared styles), so
    ``Z_k = A_k(MLP(Z0))`` as in the paper; replacing ``styles[k]`` edits scale ``k`` alone.

    **Decoding** (eqs. 2–3, ``G_1 = U[c, A_1(z)]``, ``G_i = U[G_{i-1}, A_i(z)]``):

    - standard (outpainting, label maps): the first ``U`` lifts the vector ``c`` to the first
      level by a linear map, ``Linear(c) -> [B, channels, H/2^(n-1), W/2^(n-1)]`` (4×4 for
      128×128 and ``n = 6``; a DCGAN-style projection, since ``c`` is a vector), then every
      level's :class:`UpsamplingModule` (nearest ×2 but at the first level, then
      ``convs_per_scale`` × (conv 3×3, AdaIN, LeakyReLU 0.2));
    - super_resolution (supplement B, Fig. 8): the LR image, bilinearly resized to the output
      size, is encoded; decoding starts at the LR resolution (16×16 for 16→128) from a 1×1 conv
      of the encoder feature at that resolution plus ``Linear(c)`` broadcast over it, and the
      first decoded level is 2× the input (32×32); the encoder feature of each level's
      resolution (1×1-convolved to ``channels``) is added after the level's upsampling (the
      skips "preserving low-resolution structural information"). No image is decoded at or
      below the input resolution, so the pyramid is ``[32, 64, 128]`` for 16→128
      (``pyramid_scales = [4, 2, 1]``). That the 32×32 level average-pooled equals the LR
      input is a loss term (it reads the LR image from ``cond.image``), not the decoder's.

    **Output**: at every level one conv (``rgb_kernel``, default 1×1 as StyleGAN's ToRGB) and
    ``tanh``: ``pyramid[k]: [B, 3, H/2^(n-1-k), W/2^(n-1-k)]``, coarsest first; ``image`` is
    the last level; ``features[k]`` is level ``k``'s feature map (stage ``k``).

    Choices where the paper is silent: ``style_dim = 64``, 4 MLP layers, two conv/AdaIN pairs
    per scale, nearest upsampling, parameter-free instance norm in the encoder, bilinear
    resizing of the LR input, skips added (not concatenated).
    """

    Config = _DecoderConfig
    config: _DecoderConfig
    has_pyramid: ClassVar[bool] = True

    @classmethod
    def requirements(cls, config: PartConfig | None = None) -> frozenset[str]:
        """``styles`` and the input: ``image`` (+ ``mask`` with ``use_mask``) or ``label_map``."""
        if config is None:
            return frozenset({"styles"})
        out = {"styles", str(getattr(config, "input", "image"))}
        if getattr(config, "use_mask", False):
            out.add("mask")
        return frozenset(out)

    def __init__(self, config: _DecoderConfig | dict | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        cfg = self.config
        geo = decoder_geometry(cfg)
        self.geometry = geo
        n, c = len(geo.pyramid_scales), cfg.channels
        self.pyramid_scales = list(geo.pyramid_scales)
        self.stage_scales = list(geo.pyramid_scales)
        self.stage_channels = [c] * n
        self.size_multiple = geo.pyramid_scales[0]
        in_ch = 3 + int(cfg.use_mask)
        k = cfg.num_classes if cfg.input == "label_map" else None
        self.encoder = ConditionEncoder(in_ch, geo.encoder_widths, num_classes=k)
        layers: list[nn.Module] = []
        for i in range(cfg.mapping_layers):
            layers += [nn.Linear(cfg.style_dim if i == 0 else c, c), nn.LeakyReLU(0.2)]
        self.mapping = nn.Sequential(*layers)
        code = cfg.convs_per_scale * 2 * c
        sr = cfg.variant == "super_resolution"
        if cfg.norm is None:
            self.affines = nn.ModuleList(nn.Linear(c, code) for _ in range(n))
        offered = {"channels": c, "style_dim": c, "num_stages": n}
        if cfg.num_classes is not None:
            offered["num_classes"] = cfg.num_classes
        self.stages = nn.ModuleList(
            UpsamplingModule(
                c,
                c,
                upsample=sr or i > 0,
                num_convs=cfg.convs_per_scale,
                norms=None
                if cfg.norm is None
                else [
                    self.build_slot(cfg.norm, stage=i, **offered)
                    for _ in range(cfg.convs_per_scale)
                ],
            )
            for i in range(n)
        )
        self.to_rgb = nn.ModuleList(
            nn.Conv2d(c, self.image_channels, cfg.rgb_kernel, padding=cfg.rgb_kernel // 2)
            for _ in range(n)
        )
        h0, w0 = geo.start
        self.start = nn.Linear(geo.code_dim, c if sr else c * h0 * w0)
        # super-resolution: encoder layer l (1-based) has the resolution output / 2^l
        self.lr_proj = nn.Conv2d(geo.encoder_widths[n - 1], c, 1) if sr else None
        self.skips = nn.ModuleDict(
            {str(lvl): nn.Conv2d(geo.encoder_widths[n - 2 - lvl], c, 1) for lvl in range(n - 1)}
            if sr
            else {}
        )

    # ------------------------------------------------------------------ capabilities
    def runtime_args(self) -> dict[str, Any]:
        """The base offers (``style_dim``, ``num_stages = pyramid_levels``, ``pyramid_levels``, ...)
        without unset values (``num_classes`` for an image input)."""
        return {k: v for k, v in super().runtime_args().items() if v is not None}

    def output_size(self, input_size: tuple[int, int]) -> tuple[int, int] | None:
        """Super-resolution: the input size times ``scale``; otherwise the caller's size."""
        if self.config.variant != "super_resolution":
            return None
        return (input_size[0] * self.config.scale, input_size[1] * self.config.scale)

    def example_inputs(
        self, *, batch_size: int, size: tuple[int, int], generator: torch.Generator
    ) -> dict[str, Any]:
        """Conformance-kit inputs: the super-resolution variant's LR image (other variants:
        the kit's defaults from :meth:`requirements`)."""
        if self.config.variant != "super_resolution":
            return {}
        s = self.config.scale
        lr = torch.tanh(torch.randn(batch_size, 3, size[0] // s, size[1] // s, generator=generator))
        return {"cond": Condition(image=lr, size=(size[0], size[1]))}

    def check_condition(self, cond: Condition) -> None:
        """``cond.size`` (when given) ``== resolution`` and the input the config reads, at its
        size."""
        cfg = self.config
        want = tuple(cfg.resolution)
        if cond.size is not None and tuple(cond.size) != want:
            raise ValueError(
                f"nested_scale.pyramid_decoder makes {want} images (resolution) but the "
                f"Condition has size {cond.size}; resize the inputs or set resolution"
            )
        if cfg.input == "label_map":
            if cond.label_map is None or cond.num_classes != cfg.num_classes:
                raise ValueError(
                    "nested_scale.pyramid_decoder (input: label_map) reads Condition.label_map "
                    f"with num_classes={cfg.num_classes}; got num_classes={cond.num_classes}"
                )
            return
        sr = cfg.variant == "super_resolution"
        size = (want[0] // cfg.scale, want[1] // cfg.scale) if sr else want
        got = None if cond.image is None else tuple(cond.image.shape[-2:])
        if got != size:
            what = f"the low-resolution image (output / {cfg.scale})" if sr else "the image"
            raise ValueError(
                f"nested_scale.pyramid_decoder reads Condition.image, {what}, at {size}; got {got}"
            )
        if cfg.use_mask and cond.mask is None:
            raise ValueError(
                "nested_scale.pyramid_decoder has use_mask: true and reads Condition.mask, "
                "which is missing: give the mask (1 = known pixel) or set use_mask: false"
            )

    # ------------------------------------------------------------------ forward
    def scale_codes(self, styles: list[Tensor]) -> list[Tensor]:
        """``Z_k = A_k(MLP(styles[k]))`` for every level: ``[B, convs_per_scale·2·channels]``;
        with a ``norm`` slot (whose blocks hold their own affine maps) ``MLP(styles[k])``:
        ``[B, channels]``."""
        dtype = self.mapping[0].weight.dtype
        w = self.mapping(torch.stack(styles).to(dtype))  # [n, B, channels]: one shared MLP
        if self.config.norm is not None:
            return list(w.unbind(0))
        return [affine(wk) for affine, wk in zip(self.affines, w.unbind(0))]

    def _encoder_input(self, cond: Condition) -> Tensor:
        """The label map ``[B, H, W]`` or the (resized, masked) image ``[B, 3 (+1), H, W]``."""
        cfg = self.config
        if cfg.input == "label_map":
            assert cond.label_map is not None
            return cond.label_map
        x = cond.image
        assert x is not None
        if cfg.variant == "super_resolution":
            x = F.interpolate(x.float(), size=cfg.resolution, mode="bilinear", align_corners=False)
        if cfg.use_mask:
            assert cond.mask is not None
            x = torch.cat([x * cond.mask, cond.mask], dim=1)
        return x.to(self.start.weight.dtype)

    def _start(self, feats: list[Tensor]) -> Tensor:
        """The first feature map: ``Linear(c)`` at level 0 (standard), or the LR-resolution
        encoder feature (1×1 conv) plus ``Linear(c)`` broadcast (super-resolution)."""
        c = rearrange(feats[-1], "b c h w -> b (c h w)")
        if self.lr_proj is None:
            h0, w0 = self.geometry.start
            return rearrange(self.start(c), "b (c h w) -> b c h w", h=h0, w=w0)
        n = len(self.pyramid_scales)
        return self.lr_proj(feats[n - 1]) + rearrange(self.start(c), "b c -> b c 1 1")

    def forward(
        self, cond: Condition, latents: Latents | None = None, *, return_features: bool = False
    ) -> SynthesisOutput:
        """``cond`` + ``latents.styles`` -> ``pyramid`` (coarsest first), ``image = pyramid[-1]``
        and ``extras["scale_code/{k}"] = A_k(MLP(styles[k]))``."""
        self.check_condition(cond)
        n = len(self.pyramid_scales)
        styles = read_styles(
            "nested_scale.pyramid_decoder", latents, n, self.config.style_dim, cond.batch_size
        )
        feats = self.encoder(self._encoder_input(cond))
        codes = self.scale_codes(styles)
        x = self._start(feats)
        # the norm slot's blocks read the scale's mapped code as latents.styles[k]
        ctx = None if self.config.norm is None else Context(cond, Latents(styles=codes))
        features: list[Tensor] = []
        pyramid: list[Tensor] = []
        for k, (stage, head) in enumerate(zip(self.stages, self.to_rgb)):
            key = str(k)
            skip = self.skips[key](feats[n - 2 - k]) if key in self.skips else None
            x = stage(x, codes[k], skip, None if ctx is None else ctx.at(k))
            features.append(x)
            pyramid.append(torch.tanh(head(x)))
        return SynthesisOutput(
            image=pyramid[-1],
            features=features if return_features else None,
            pyramid=pyramid,
            extras={f"scale_code/{k}": code for k, code in enumerate(codes)},
        )


# --------------------------------------------------------------------------- the adapter


def pyramid_taps(stage_scales: list[int]) -> list[int]:
    """The stage tapped for each pyramid level, coarsest first: the **last** stage at each
    distinct scale (in an encoder-decoder that is the decoder's stage, after which nothing
    coarser is computed). ``ValueError`` unless the scales are powers of two, one of them is 1
    (the output image) and the tapped stages run coarse to fine."""
    last = {s: i for i, s in enumerate(stage_scales)}
    scales = sorted(last, reverse=True)
    taps = [last[s] for s in scales]
    if any(s < 1 or s & (s - 1) for s in scales) or scales[-1] != 1:
        raise ValueError(
            f"stage_scales {stage_scales}: a pyramid needs power-of-two scales ending at 1 "
            "(a stage at the output resolution)"
        )
    if taps != sorted(taps):
        raise ValueError(
            f"stage_scales {stage_scales}: the last stage of each scale (stages {taps}, "
            f"scales {scales}) must run coarse to fine, so that a scale's code reaches only "
            "that scale and finer ones"
        )
    return taps


class StageModulation(nn.Module):
    """FiLM of a stage's output by a per-scale code: ``x·(1 + γ(s)) + β(s)``, fp32.

    ``γ, β = Linear(style_dim, 2C)(s)``, zero-initialised so the wrapped generator starts
    unchanged (identity). ``x: [B, C, H, W]``, ``s: [B, style_dim]`` -> ``[B, C, H, W]``.
    """

    def __init__(self, style_dim: int, channels: int) -> None:
        super().__init__()
        self.affine = nn.Linear(style_dim, 2 * channels)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, x: Tensor, code: Tensor) -> Tensor:
        gamma, beta = rearrange(self.affine(code), "b (two c) -> two b c 1 1", two=2)
        return modulate(x, gamma, beta).to(x.dtype)


@dataclasses.dataclass
class _Call:
    """One adapter forward: the per-scale codes the hooks read and the levels they write."""

    codes: list[Tensor]
    levels: list[Tensor]


def _wrapped_class(spec: Any) -> tuple[type[Generator], PartConfig | None]:
    """The wrapped generator's class and (when it validates on its own) its config."""
    spec = normalize_spec(spec)
    cls = get_registry().resolve(spec.pop("type"))
    try:
        return cls, cls.coerce_config(spec)  # type: ignore[return-value]
    except Exception:  # runtime arguments the adapter offers may be missing here
        return cls, None  # type: ignore[return-value]


class Pyramid(Generator):
    """Gives any registered generator an RGB pyramid and per-scale codes (DESIGN §3).

    The wrapped generator (slot ``generator``) is built with ``style_dim`` offered (a wrapped
    generator whose own blocks read ``styles``, e.g. a ``core.adain`` norm, then reads the
    per-scale codes, see below). From its ``stage_scales`` the adapter picks one stage per
    distinct scale, the **last** stage at that scale (:func:`pyramid_taps`), and attaches a
    forward hook to each (so the wrapped generator needs no code of its own). At the stage of
    level ``k`` the hook

    1. modulates the stage's output by the level's code, ``x·(1 + γ_k(styles[k])) +
       β_k(styles[k])`` (:class:`StageModulation`, identity at initialisation), and returns it
       to the wrapped generator, so code ``k`` reaches that stage and the later ones only;
    2. for every level but the finest, decodes it to RGB: ``tanh(conv(x))``, a
       ``rgb_kernel``×``rgb_kernel`` conv (default 1×1).

    The finest level (scale 1) is the wrapped generator's own image: ``pyramid[-1] is image``.
    ``pyramid_scales`` are the tapped stages' scales (e.g. ``[32, 16, 8, 4, 2, 1]`` for the
    SPADE generator). Replacing ``styles[k]`` leaves the coarser levels bit-identical when the
    wrapped generator is feed-forward over its stages (every registered one is).

    Latents: ``styles`` (``num_scales`` × ``[B, style_dim]``, coarsest first) plus whatever the
    wrapped generator reads (SPADE's ``z``, cIMLE's noise in ``spatial``, CLVAE's
    ``class_codes``, ...), which are forwarded to it unchanged; its ``styles`` are replaced by
    one code per wrapped stage: stage ``i`` gets the code of the first level tapped at or after
    it, which keeps the nesting (a code reaches no stage before its level's coarser taps).
    ``runtime_args()`` are the wrapped generator's plus ``pyramid_levels``, ``num_stages =
    pyramid_levels`` and ``style_dim``, so one injector (e.g. ``core.gaussian``) serves both.

    ``stages``, ``stage_channels``, ``stage_scales``, ``size_multiple``, ``check_condition`` and
    ``output_size`` are the wrapped generator's, so feature taps and other hook-based tools
    work through the adapter; ``features`` are the wrapped stages' (modulated) outputs.
    """

    class Config(PartConfig):
        generator: PartSpec = Field(description="the wrapped generator (any registered one)")
        style_dim: int = Field(64, ge=1, description="width of each per-scale code")
        rgb_kernel: Literal[1, 3] = Field(1, description="kernel of each level's RGB conv")

    config: Config
    has_pyramid: ClassVar[bool] = True

    @classmethod
    def requirements(cls, config: PartConfig | None = None) -> frozenset[str]:
        """The wrapped generator's requirements plus ``styles``."""
        if config is None:
            return frozenset({"styles"})
        try:
            wrapped, wrapped_config = _wrapped_class(config.generator)
        except RegistryError:  # the composer's slot check reports it, with the pip line
            return frozenset({"styles"})
        return frozenset(wrapped.requirements(wrapped_config) | {"styles"})

    def __init__(self, config: Config | dict | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        cfg = self.config
        self.wrapped: Generator = self.build_slot(cfg.generator, style_dim=cfg.style_dim)  # type: ignore[assignment]
        taps = pyramid_taps(list(self.wrapped.stage_scales))
        self.taps = taps
        self.pyramid_scales = [self.wrapped.stage_scales[i] for i in taps]
        self.stage_channels = list(self.wrapped.stage_channels)
        self.stage_scales = list(self.wrapped.stage_scales)
        self.size_multiple = self.wrapped.size_multiple
        #: level whose code each wrapped stage reads (first tap at or after the stage)
        self.stage_levels = [
            next(k for k, t in enumerate(taps) if t >= i) for i in range(len(self.stage_scales))
        ]
        chans = [self.stage_channels[i] for i in taps]
        k = cfg.rgb_kernel
        self.modulations = nn.ModuleList(StageModulation(cfg.style_dim, c) for c in chans)
        rgb = type(self.wrapped).image_channels
        self.to_rgb = nn.ModuleList(nn.Conv2d(c, rgb, k, padding=k // 2) for c in chans[:-1])
        self._call: _Call | None = None
        for level, i in enumerate(taps):
            self.wrapped.stages[i].register_forward_hook(functools.partial(self._tap, level))

    @property
    def stages(self) -> nn.ModuleList:  # type: ignore[override]
        """The wrapped generator's stages (hooks attach there)."""
        return self.wrapped.stages

    # ------------------------------------------------------------------ capabilities
    def runtime_args(self) -> dict[str, Any]:
        """The wrapped generator's offers plus ``pyramid_levels``, ``num_stages = pyramid_levels`` and
        ``style_dim``."""
        n = len(self.pyramid_scales)
        out = dict(self.wrapped.runtime_args())
        out.update(pyramid_levels=n, num_stages=n, style_dim=self.config.style_dim)
        return out

    def check_condition(self, cond: Condition) -> None:
        self.wrapped.check_condition(cond)

    def output_size(self, input_size: tuple[int, int]) -> tuple[int, int] | None:
        return self.wrapped.output_size(input_size)

    def example_inputs(
        self, *, batch_size: int, size: tuple[int, int], generator: torch.Generator
    ) -> dict[str, Any]:
        """Conformance-kit inputs: the wrapped generator's own ``example_inputs`` (when it has
        them) plus per-scale codes; otherwise the kit's defaults from :meth:`requirements`."""
        fn = getattr(self.wrapped, "example_inputs", None)
        if not callable(fn):
            return {}
        given = dict(fn(batch_size=batch_size, size=size, generator=generator))
        if "latents" in given:
            s = self.config.style_dim
            styles = [torch.randn(batch_size, s, generator=generator) for _ in self.pyramid_scales]
            given["latents"] = dataclasses.replace(given["latents"] or Latents(), styles=styles)
        return given

    # ------------------------------------------------------------------ forward
    def _tap(self, level: int, module: nn.Module, args: Any, output: Tensor) -> Tensor | None:
        """Forward hook on the stage of ``level``: modulate its output, decode it to RGB."""
        call = self._call
        if call is None:  # the wrapped generator run on its own: leave it untouched
            return None
        x = self.modulations[level](output, call.codes[level])
        if level < len(self.to_rgb):
            call.levels.append(torch.tanh(self.to_rgb[level](x)))
        return x

    def forward(
        self, cond: Condition, latents: Latents | None = None, *, return_features: bool = False
    ) -> SynthesisOutput:
        """The wrapped generator's output with ``pyramid`` (coarsest first, the last level
        ``image``); its ``features`` are the modulated stage outputs."""
        n = len(self.pyramid_scales)
        styles = read_styles(
            "nested_scale.pyramid", latents, n, self.config.style_dim, cond.batch_size
        )
        assert latents is not None
        inner = dataclasses.replace(latents, styles=[styles[k] for k in self.stage_levels])
        call = _Call(codes=styles, levels=[])
        self._call = call
        try:
            out = self.wrapped(cond, inner, return_features=return_features)
        finally:
            self._call = None
        if len(call.levels) != n - 1:
            raise RuntimeError(
                f"nested_scale.pyramid: {len(call.levels)} of the {n - 1} tapped stages "
                f"{self.taps[:-1]} ran; the wrapped generator must run every stage once"
            )
        return SynthesisOutput(
            image=out.image,
            features=out.features,
            pyramid=[*call.levels, out.image],
            latents=out.latents,
            extras=dict(out.extras),
        )
