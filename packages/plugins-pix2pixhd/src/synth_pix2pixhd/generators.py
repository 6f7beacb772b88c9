"""pix2pixHD generators (Wang et al. 2018, §3.2 and appendix B).

``pix2pixhd.global_generator`` (G1): ``c7s1-ngf, d(2ngf) … d(2^n ngf), R(2^n ngf) ×n_blocks,
u(2^(n-1) ngf) … u(ngf), c7s1-3`` with reflection padding around every 7×7 and residual
3×3 conv, instance norm without affine parameters (a configurable ``norm`` slot), ReLU, and a
final ``tanh``.

``pix2pixhd.local_enhancer`` (G = {G1, G2, …}): a global generator of width
``ngf·2^n_local_enhancers`` without its RGB head runs on the input average-pooled
``n_local_enhancers`` times; each enhancer ``n`` (coarse to fine, width ``ngf·2^(N-n)``) runs
``c7s1, d`` on its own input resolution, **adds** the previous network's last feature map
(paper §3.2: "the element-wise sum of two feature maps") and continues with ``R ×n_blocks_local,
u``; the last enhancer ends with ``c7s1-3`` and ``tanh``.

Input (official channel order): one-hot label map ``[B, K, H, W]``, then the instance boundary
map ``[B, 1, H, W]`` (``use_instances``, §3.3), then the instance features
``latents.spatial [B, feat_num, H, W]`` (``feat_num > 0``, §3.4). The first 7×7 convolution
keeps one weight ``[ngf, K + extra, 7, 7]`` (the official ``model.1.weight``): its one-hot
slice is applied by gathering (:class:`synth.nn.layers.LabelConv2d`, reflect padding, exact) and
the extra channels by a dense convolution with the remaining slice; the two are summed. The
instance boundary map is :func:`synth.nn.ops.instance_edges` and the input pyramid step
:func:`synth.nn.ops.pyramid_down` (re-exported here as ``instance_edges`` and
``downsample_input``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from synth import Condition, Context, Generator, Latents, PartConfig, PartSpec, SynthesisOutput
from synth.nn import InitScheme, init_weights, ops
from synth.nn.layers import LabelConv2d
from synth.nn.ops import instance_edges
from synth.nn.ops import pyramid_down as downsample_input

__all__ = [
    "ConvStage",
    "DownStage",
    "EnhancerFront",
    "GlobalGenerator",
    "InputConv",
    "InputStage",
    "LocalEnhancer",
    "ResnetBlock",
    "UpStage",
    "downsample_input",
    "instance_edges",
]


class InputConv(LabelConv2d):
    """The 7×7 reflect-padded input convolution over ``[one-hot (K) | extra (E)]`` channels.

    A :class:`synth.nn.layers.LabelConv2d`: ``weight: [C_out, K + E, 7, 7]`` and ``bias:
    [C_out]`` are exactly those of the official ``nn.Conv2d(K + E, C_out, 7)`` after
    ``nn.ReflectionPad2d(3)``.

    ``forward(labels=[B, H, W], extra=[B, E, H, W] | None)`` computes the one-hot part by
    gathering (exact, ~K× fewer multiply-adds) plus a dense conv of the extra channels;
    ``forward(dense=[B, K + E, H, W])`` is the plain dense convolution (used on the
    average-pooled, no longer one-hot, inputs of the local enhancer's coarser networks).
    Returns ``[B, C_out, H, W]``.
    """

    def __init__(self, num_classes: int, extra: int, out_channels: int, kernel: int = 7) -> None:
        super().__init__(
            num_classes,
            out_channels,
            kernel,
            padding=kernel // 2,
            padding_mode="reflect",
            extra_channels=extra,
        )

    def forward(  # type: ignore[override]
        self,
        labels: Tensor | None = None,
        extra: Tensor | None = None,
        dense: Tensor | None = None,
    ) -> Tensor:
        if dense is not None:
            return super().forward(dense)
        assert labels is not None
        return super().forward(labels, extra)


class ConvStage(nn.Module):
    """``conv -> norm -> ReLU``: ``forward(x, ctx, *conv_args)`` is
    ``relu(norm(conv(x, *conv_args), ctx))``."""

    def __init__(self, conv: nn.Module, norm: nn.Module) -> None:
        super().__init__()
        self.conv, self.norm = conv, norm

    def forward(self, x: Tensor, ctx: Context, *conv_args: Tensor | None) -> Tensor:
        return F.relu(self.norm(self.conv(x, *conv_args), ctx))


class InputStage(ConvStage):
    """``c7s1-C``: :class:`InputConv` -> norm -> ReLU, ``-> [B, C, H, W]``.

    ``forward(labels [B, H, W], ctx, extra [B, E, H, W] | None)`` gathers the one-hot part;
    ``forward(dense [B, K + E, H, W], ctx)`` convolves an average-pooled input densely.
    """


class DownStage(ConvStage):
    """``dk``: conv 3×3 stride 2 (zero pad 1) -> norm -> ReLU,
    ``[B, C, H, W] -> [B, 2C, H/2, W/2]``."""

    def __init__(self, cin: int, cout: int, norm: nn.Module) -> None:
        super().__init__(nn.Conv2d(cin, cout, 3, stride=2, padding=1), norm)


class ResnetBlock(nn.Module):
    """``Rk``: ``x + norm(conv3(rpad(relu(norm(conv3(rpad(x)))))))`` (reflect pad 1)."""

    def __init__(self, dim: int, norm1: nn.Module, norm2: nn.Module) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3)
        self.norm1 = norm1
        self.conv2 = nn.Conv2d(dim, dim, 3)
        self.norm2 = norm2

    def forward(self, x: Tensor, ctx: Context) -> Tensor:
        y = F.relu(self.norm1(self.conv1(F.pad(x, (1, 1, 1, 1), mode="reflect")), ctx))
        y = self.norm2(self.conv2(F.pad(y, (1, 1, 1, 1), mode="reflect")), ctx)
        return x + y


class UpStage(ConvStage):
    """``uk``: ConvTranspose 3×3 stride 2 (pad 1, output pad 1) -> norm -> ReLU,
    ``[B, C, H, W] -> [B, C/2, 2H, 2W]``."""

    def __init__(self, cin: int, cout: int, norm: nn.Module) -> None:
        conv = nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1)
        super().__init__(conv, norm)


class EnhancerFront(ConvStage):
    """A local enhancer's front end ``G^(F)`` (official ``model{n}_1``): ``c7s1-C, d(2C)``,
    then the sum with the previous network's last feature map ``prev [B, 2C, H/2, W/2]``.

    ``forward(prev, ctx, x, extra=None)``: ``x`` is the label map (with ``extra``, gathered)
    or the dense average-pooled input, as for :class:`InputStage`.
    """

    def __init__(self, conv: InputConv, norm_in: nn.Module, down: DownStage) -> None:
        super().__init__(conv, norm_in)
        self.down = down

    def forward(  # type: ignore[override]
        self, prev: Tensor, ctx: Context, x: Tensor, extra: Tensor | None = None
    ) -> Tensor:
        return self.down(super().forward(x, ctx, extra), ctx) + prev


class _Pix2PixHDConfig(PartConfig):
    num_classes: int = Field(ge=1, description="K, the label map's number of classes (label_nc)")
    use_instances: bool = Field(
        False, description="concatenate the instance boundary map (reads instance_map)"
    )
    feat_num: int = Field(
        0, ge=0, description="instance feature channels read from latents.spatial (0: none)"
    )
    norm: PartSpec = Field(
        default_factory=lambda: {"type": "core.instance_norm"},
        description="normalisation after every conv (official: instance norm, no affine)",
    )
    init: InitScheme = Field(
        "default",
        description="weight initialisation (synth.nn.init); the recipes use 'normal', the "
        "official weights_init: conv weights N(0, 0.02), batch norm N(1, 0.02) / 0",
    )


class _Base(Generator):
    """Shared input handling of the pix2pixHD generators."""

    config: Any

    @classmethod
    def requirements(cls, config: PartConfig | None = None) -> frozenset[str]:
        """``label_map``, plus ``instance_map`` (``use_instances``) and ``spatial``
        (``feat_num > 0``)."""
        out = {"label_map"}
        if config is not None and getattr(config, "use_instances", False):
            out.add("instance_map")
        if config is not None and getattr(config, "feat_num", 0) > 0:
            out.add("spatial")
        return frozenset(out)

    @property
    def extra_channels(self) -> int:
        """Input channels after the one-hot map: edge map (1) and instance features."""
        return int(self.config.use_instances) + self.config.feat_num

    def runtime_args(self) -> dict[str, Any]:
        """The base offers plus ``channels = feat_num`` (for ``pix2pixhd.instance_encoder``)."""
        out = super().runtime_args()
        out["channels"] = self.config.feat_num
        return out

    def check_condition(self, cond: Condition) -> None:
        if cond.size is None:
            raise ValueError(
                f"{type(self).__name__} needs the output size: give the Condition a label_map"
            )
        super().check_condition(cond)

    def _norm(self, channels: int) -> nn.Module:
        return self.build_slot(self.config.norm, channels=channels)

    def _extra(self, ctx: Context) -> Tensor | None:
        """``[B, E, H, W]``: instance edges then instance features (full size), or None."""
        cond, cfg = ctx.cond, self.config
        assert cond.size is not None
        parts: list[Tensor] = []
        if cfg.use_instances:
            if cond.instance_map is None:
                raise ValueError(
                    f"{type(self).__name__} has use_instances: true and reads "
                    "Condition.instance_map, which is missing: give the data an instance map "
                    "or set use_instances: false"
                )
            parts.append(instance_edges(ops.resize_labels(cond.instance_map, cond.size)))
        if cfg.feat_num > 0:
            feat = ctx.latents.spatial
            if feat is None:
                raise ValueError(
                    f"{type(self).__name__} has feat_num={cfg.feat_num} and reads "
                    "latents.spatial (instance features), which is missing: compose the model "
                    "with injector pix2pixhd.instance_encoder, or pass "
                    "latents=synth.Latents(spatial=[B, feat_num, H, W])"
                )
            if feat.shape[1] != cfg.feat_num:
                raise ValueError(
                    f"latents.spatial has {feat.shape[1]} channels but feat_num={cfg.feat_num}"
                )
            if tuple(feat.shape[-2:]) != tuple(cond.size):
                feat = F.interpolate(feat, size=cond.size, mode="nearest")
            parts.append(feat)
        if not parts:
            return None
        return torch.cat([p.float() for p in parts], dim=1)

    def _labels(self, ctx: Context) -> Tensor:
        cond = ctx.cond
        if cond.label_map is None:
            raise ValueError(f"{type(self).__name__} reads Condition.label_map, which is missing")
        if cond.num_classes is not None and cond.num_classes != self.config.num_classes:
            raise ValueError(
                f"the Condition has num_classes={cond.num_classes} but the generator was built "
                f"for num_classes={self.config.num_classes}"
            )
        assert cond.size is not None
        return ctx.labels(cond.size)

    def _dense_input(self, ctx: Context) -> Tensor:
        """``[B, K + E, H, W]``: the official concatenated input (one-hot, edges, features)."""
        cfg = self.config
        onehot = ops.one_hot(self._labels(ctx), cfg.num_classes)
        extra = self._extra(ctx)
        return onehot if extra is None else torch.cat([onehot, extra], dim=1)


def _global_body(host: _Base, in_ch_extra: int, ngf: int, n_down: int, n_blocks: int) -> list:
    """Stages of G1 without the RGB head: input, downs, residual blocks, ups."""
    k = host.config.num_classes
    stages: list[nn.Module] = [InputStage(InputConv(k, in_ch_extra, ngf), host._norm(ngf))]
    for i in range(n_down):
        c = ngf * 2**i
        stages.append(DownStage(c, 2 * c, host._norm(2 * c)))
    dim = ngf * 2**n_down
    stages += [ResnetBlock(dim, host._norm(dim), host._norm(dim)) for _ in range(n_blocks)]
    for i in range(n_down):
        c = ngf * 2 ** (n_down - i)
        stages.append(UpStage(c, c // 2, host._norm(c // 2)))
    return stages


def _global_geometry(ngf: int, n_down: int, n_blocks: int, base: int) -> tuple[list, list]:
    """``(stage_channels, stage_scales)`` of G1's stages, ``base`` = G1's input scale."""
    ch = [ngf] + [ngf * 2 ** (i + 1) for i in range(n_down)] + [ngf * 2**n_down] * n_blocks
    sc = [base] + [base * 2 ** (i + 1) for i in range(n_down)] + [base * 2**n_down] * n_blocks
    ch += [ngf * 2 ** (n_down - i - 1) for i in range(n_down)]
    sc += [base * 2 ** (n_down - i - 1) for i in range(n_down)]
    return ch, sc


class RGBHead(nn.Module):
    """``c7s1-3`` + tanh: reflect pad 3, conv 7×7 to RGB, ``[B, C, H, W] -> [B, 3, H, W]``."""

    def __init__(self, cin: int, cout: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 7)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.conv(F.pad(x, (3, 3, 3, 3), mode="reflect")))


class GlobalGenerator(_Base):
    """pix2pixHD's global generator G1 (paper §3.2, appendix B; official ``GlobalGenerator``).

    ``forward(cond, latents=None)``: ``cond.label_map [B, H, W]`` (+ ``cond.instance_map`` when
    ``use_instances``, + ``latents.spatial [B, feat_num, H, W]`` when ``feat_num > 0``) ->
    ``image [B, 3, H, W]`` in ``[-1, 1]``. ``H, W`` must be multiples of ``2**n_downsampling``.

    Stages (``self.stages``; stage ``i``'s output is ``features[i]``): the input stage
    ``c7s1-ngf`` (scale 1), ``n_downsampling`` stride-2 stages, ``n_blocks`` residual blocks
    (scale ``2**n``), ``n_downsampling`` transposed-conv stages; then the RGB head.
    """

    class Config(_Pix2PixHDConfig):
        ngf: int = Field(64, ge=1, description="width of the first layer")
        n_downsampling: int = Field(4, ge=0, description="stride-2 stages (n_downsample_global)")
        n_blocks: int = Field(9, ge=0, description="residual blocks (n_blocks_global)")

    config: Config

    def __init__(self, config: Config | dict | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        cfg = self.config
        self.size_multiple = 2**cfg.n_downsampling
        self.stages = nn.ModuleList(
            _global_body(self, self.extra_channels, cfg.ngf, cfg.n_downsampling, cfg.n_blocks)
        )
        self.stage_channels, self.stage_scales = _global_geometry(
            cfg.ngf, cfg.n_downsampling, cfg.n_blocks, 1
        )
        self.head = RGBHead(cfg.ngf, self.image_channels)
        init_weights(self, cfg.init)

    def forward(
        self, cond: Condition, latents: Latents | None = None, *, return_features: bool = False
    ) -> SynthesisOutput:
        """``cond`` (+ ``latents``) -> ``image [B, 3, H, W]``; ``features[i]`` per stage."""
        ctx = Context(cond, latents)
        x = self.stages[0](self._labels(ctx), ctx, self._extra(ctx))
        features = [x]
        for stage in self.stages[1:]:
            x = stage(x, ctx)
            features.append(x)
        return SynthesisOutput(image=self.head(x), features=features if return_features else None)


class LocalEnhancer(_Base):
    """pix2pixHD's coarse-to-fine generator G = {G1, G2, …} (paper §3.2; official
    ``LocalEnhancer``).

    ``forward(cond, latents=None)`` -> ``image [B, 3, H, W]``; ``H, W`` multiples of
    ``2**(n_local_enhancers + n_downsample_global)``. The official input
    ``[B, K + E, H, W]`` (one-hot, edges, features) is average-pooled (3×3, stride 2, pad 1,
    ``count_include_pad=False``) ``n_local_enhancers`` times; G1 (width
    ``ngf·2**n_local_enhancers``, no RGB head) reads the coarsest copy, enhancer ``n`` the copy
    ``n_local_enhancers - n`` steps coarser than the output (the last enhancer reads the
    full-resolution one-hot map by gathering). Enhancer ``n``:
    ``out_n = up_n(R_n(front_n(input_n) + out_{n-1}))``, where ``front_n = c7s1-C, d(2C)``,
    ``C = ngf·2**(N - n)``.

    Stages: G1's stages (names ``stages.0 …``), then per enhancer its front (which includes
    the sum), ``n_blocks_local`` residual blocks and its up stage. Parameter names of G1 start
    with ``stages.{0..global_stages-1}``; ``global_stages`` holds that count. ``fixed_stages``
    counts G1's and the inner enhancers' stages: what the official ``niter_fix_global`` phase
    keeps fixed (only ``model{n_local_enhancers}_*``, the outermost enhancer with the RGB
    head, is optimised), for freeze rules (:func:`synth_pix2pixhd.training_config`).
    """

    class Config(_Pix2PixHDConfig):
        ngf: int = Field(32, ge=1, description="width of the finest enhancer")
        n_downsample_global: int = Field(4, ge=0)
        n_blocks_global: int = Field(9, ge=0)
        n_local_enhancers: int = Field(1, ge=1)
        n_blocks_local: int = Field(3, ge=0)

    config: Config

    def __init__(self, config: Config | dict | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        cfg = self.config
        n_loc = cfg.n_local_enhancers
        self.size_multiple = 2 ** (n_loc + cfg.n_downsample_global)
        ngf_g = cfg.ngf * 2**n_loc
        stages = _global_body(
            self, self.extra_channels, ngf_g, cfg.n_downsample_global, cfg.n_blocks_global
        )
        ch, sc = _global_geometry(ngf_g, cfg.n_downsample_global, cfg.n_blocks_global, 2**n_loc)
        self.global_stages = len(stages)
        #: stage index of each enhancer's front, its residual blocks and its up stage.
        self.enhancer_fronts: list[int] = []
        for n in range(1, n_loc + 1):
            c = cfg.ngf * 2 ** (n_loc - n)
            scale = 2 ** (n_loc - n)
            conv = InputConv(cfg.num_classes, self.extra_channels, c)
            down = DownStage(c, 2 * c, self._norm(2 * c))
            self.enhancer_fronts.append(len(stages))
            stages.append(EnhancerFront(conv, self._norm(c), down))
            ch.append(2 * c)
            sc.append(2 * scale)
            for _ in range(cfg.n_blocks_local):
                stages.append(ResnetBlock(2 * c, self._norm(2 * c), self._norm(2 * c)))
                ch.append(2 * c)
                sc.append(2 * scale)
            stages.append(UpStage(2 * c, c, self._norm(c)))
            ch.append(c)
            sc.append(scale)
        self.stages = nn.ModuleList(stages)
        self.stage_channels, self.stage_scales = ch, sc
        self.head = RGBHead(cfg.ngf, self.image_channels)
        init_weights(self, cfg.init)

    @property
    def fixed_stages(self) -> int:
        """Leading stages that the frozen-global phase keeps fixed: G1 and every enhancer but
        the outermost (whose front starts at ``enhancer_fronts[-1]``)."""
        return self.enhancer_fronts[-1]

    def forward(
        self, cond: Condition, latents: Latents | None = None, *, return_features: bool = False
    ) -> SynthesisOutput:
        """``cond`` (+ ``latents``) -> ``image [B, 3, H, W]``; ``features[i]`` per stage."""
        ctx = Context(cond, latents)
        n_loc = self.config.n_local_enhancers
        pyramid = [self._dense_input(ctx)]
        for _ in range(n_loc):
            pyramid.append(downsample_input(pyramid[-1]))
        x = self.stages[0](pyramid[-1], ctx)
        features = [x]
        for i in range(1, len(self.stages)):
            stage = self.stages[i]
            if i in self.enhancer_fronts:
                n = self.enhancer_fronts.index(i) + 1
                if n == n_loc:  # full resolution: the one-hot part by gathering
                    x = stage(x, ctx, self._labels(ctx), self._extra(ctx))
                else:
                    x = stage(x, ctx, pyramid[n_loc - n])
            else:
                x = stage(x, ctx)
            features.append(x)
        return SynthesisOutput(image=self.head(x), features=features if return_features else None)
