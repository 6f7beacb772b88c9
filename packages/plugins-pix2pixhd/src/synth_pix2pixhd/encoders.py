"""pix2pixHD's instance-wise feature encoder E (paper §3.4) and instance-wise average pooling.

The encoder is an encoder-decoder (``c7s1-nef, d…, u…, c7s1-feat_num, tanh``; official
``Encoder``) whose output is averaged within each instance and broadcast back, so every object
gets one low-dimensional feature vector (paper §3.4: "we add an instance-wise average pooling
layer to the output of the encoder to compute the average feature for the object instance").

The pooling is vectorised: pixels are grouped by the key ``(batch, instance id)`` (directly
when the ids span a small range, else with one stable sort), segment sums come from
``index_add``, and the means are gathered back; no loop over instances or batch items (the
sort path has static shapes, and is the one taken under ``torch.compile``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import Field
from torch import Tensor, nn

from synth import Condition, LatentInjector, Latents, PartConfig
from synth.nn import InitScheme, init_weights
from synth.nn.norms import instance_normalize

__all__ = ["InstanceEncoder", "instance_average", "instance_segments"]


def instance_segments(instance_map: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Group the pixels of ``instance_map [B, H, W]`` by ``(batch, instance id)``.

    Returns ``(seg [B·H·W], order [B·H·W], starts_mask [B·H·W])``: ``seg`` is each pixel's
    segment index in ``[0, S)`` (segments numbered in increasing ``(b, id)`` order), ``order``
    the stable sort of the pixels by segment (raster order inside a segment), and
    ``starts_mask`` marks, in sorted order, the first pixel of each segment. ``S`` =
    ``starts_mask.sum()``; every shape is ``B·H·W`` (static).
    """
    b = instance_map.shape[0]
    ids = instance_map.long()
    ids = ids - ids.amin()  # non-negative
    span = ids.amax() + 1
    batch = rearrange(torch.arange(b, device=ids.device), "b -> b 1 1")
    key = rearrange(batch * span + ids, "b h w -> (b h w)")
    sorted_key, order = torch.sort(key, stable=True)
    starts = torch.ones_like(sorted_key, dtype=torch.bool)
    starts[1:] = sorted_key[1:] != sorted_key[:-1]
    seg_sorted = torch.cumsum(starts.long(), 0) - 1
    seg = torch.empty_like(seg_sorted).scatter_(0, order, seg_sorted)
    return seg, order, starts


def _dense_keys(instance_map: Tensor) -> tuple[Tensor, int] | None:
    """Each pixel's ``(batch, id)`` key as ``b · span + (id − min)`` and the number of keys,
    when that range is small (at most twice the pixels: Cityscapes-style ids ``class·1000 + k``
    at any working size); None for sparse ids or while compiling (the range is data-dependent)."""
    if torch.compiler.is_compiling():
        return None
    b = instance_map.shape[0]
    ids = instance_map.long()
    lo, hi = torch.aminmax(ids)
    span = int(hi - lo) + 1
    if b * span > 2 * ids.numel() + 4096:
        return None
    batch = rearrange(torch.arange(b, device=ids.device), "b -> b 1 1")
    return rearrange(batch * span + (ids - lo), "b h w -> (b h w)"), b * span


def instance_average(x: Tensor, instance_map: Tensor) -> Tensor:
    """Instance-wise average pooling (paper §3.4), broadcast back to the pixels.

    ``out[b, c, y, x] = mean of x[b, c] over the pixels of sample b with instance id
    instance_map[b, y, x]``. Statistics in fp32; returns ``x.dtype``.

    The pixels' ``(batch, id)`` keys index the segment sums directly when the ids span a
    small range (one ``index_add`` + ``bincount``, no sort: ~20× faster than sorting at
    512×1024); sparse ids (or ``torch.compile``) go through :func:`instance_segments`' stable
    sort, whose shapes are static.

    Args:
        x: ``[B, C, H, W]`` features.
        instance_map: ``LongTensor[B, H, W]`` instance ids (any integers).
    Returns:
        ``[B, C, H, W]``.
    """
    b, c, h, w = x.shape
    dense = _dense_keys(instance_map)
    if dense is not None:
        seg, n = dense
    else:
        seg, _, _ = instance_segments(instance_map)
        n = seg.numel()
    flat = rearrange(x.float(), "b c h w -> (b h w) c")
    sums = flat.new_zeros(n, c).index_add_(0, seg, flat)
    counts = torch.bincount(seg, minlength=n).to(flat.dtype)
    means = sums / counts.clamp_min(1).unsqueeze(1)
    out = means.index_select(0, seg)
    return rearrange(out, "(b h w) c -> b c h w", b=b, h=h, w=w).to(x.dtype)


def _instance_norm(y: Tensor) -> Tensor:
    """``InstanceNorm2d(affine=False)`` of the official encoder. fp32 maps with more than one
    pixel take the native kernel (one fused pass, ~5× faster on CPU than ``var_mean`` + the
    element-wise ops, equal to float rounding); others the fp32 :func:`instance_normalize`
    (low precision upcast, a 1×1 map normalised to 0)."""
    if y.dtype == torch.float32 and y.shape[-1] * y.shape[-2] > 1:
        return F.instance_norm(y, eps=1e-5)
    return instance_normalize(y)


def _instance_norm_nhwc(y: Tensor) -> Tensor:
    """:func:`_instance_norm` of a ``channels_last`` fp32 map, staying ``channels_last``.

    Per (sample, channel) statistics over the pixels are a batch norm (training statistics,
    biased variance, as instance norm) of the ``[H·W, B·C]`` matrix, which is ``y``'s memory
    itself for B = 1 (a copy each way otherwise); the native kernel reads it in that layout,
    where ``F.instance_norm`` would first convert to NCHW.
    """
    b, c, h, w = y.shape
    if h * w == 1:
        return instance_normalize(y)
    # explicit views, not einops: the result's batch stride must be H·W·C even for B = 1, or
    # the next conv's memory-format check sees an ambiguous layout and falls back to NCHW
    flat = y.permute(0, 2, 3, 1).reshape(b, h * w, c).transpose(0, 1).reshape(h * w, b * c)
    out = F.batch_norm(flat, None, None, training=True, eps=1e-5)
    out = out.view(h * w, b, c).transpose(0, 1).reshape(b, h, w, c).permute(0, 3, 1, 2)
    return out if b == 1 else out.contiguous(memory_format=torch.channels_last)


class InstanceEncoder(LatentInjector):
    """pix2pixHD's feature encoder E with instance-wise average pooling (paper §3.4).

    ``posterior(image [B, 3, H, W], cond)`` -> ``Latents(spatial=[B, channels, H, W], kl=0)``:
    the encoder-decoder output (``tanh``) averaged within each instance of
    ``cond.instance_map`` (one feature vector per instance, broadcast). pix2pixHD has no KL
    term (E is trained jointly through the generator's losses), so ``kl`` is a zero scalar.
    ``H, W`` must be multiples of ``2**n_downsampling``.

    ``prior(cond, generator)``: one ``N(0, std²)`` vector per ``(sample, instance)``, broadcast
    over the instance. The paper's test-time sampling of realistic features is
    ``pix2pixhd.cluster_sampler`` (k-means centres of encoded training features).

    ``channels`` (the official ``feat_num``) is a runtime argument offered by the generator.
    """

    class Config(PartConfig):
        channels: int = Field(
            3, ge=1, description="feat_num (runtime argument, from the generator)"
        )
        nef: int = Field(16, ge=1, description="width of the first layer")
        n_downsampling: int = Field(4, ge=0, description="n_downsample_E")
        std: float = Field(1.0, gt=0, description="std of the prior's per-instance features")
        init: InitScheme = Field(
            "default",
            description="weight initialisation (synth.nn.init); the recipes use 'normal' "
            "(official weights_init: conv weights N(0, 0.02))",
        )

    requires: ClassVar[frozenset[str]] = frozenset({"instance_map"})
    provides: ClassVar[frozenset[str]] = frozenset({"spatial"})
    has_posterior: ClassVar[bool] = True
    config: Config

    def __init__(self, config: Config | dict | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        cfg = self.config
        nef, n = cfg.nef, cfg.n_downsampling
        self.conv_in = nn.Conv2d(self.image_channels, nef, 7)
        self.down = nn.ModuleList(
            nn.Conv2d(nef * 2**i, nef * 2 ** (i + 1), 3, stride=2, padding=1) for i in range(n)
        )
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(
                nef * 2 ** (n - i),
                nef * 2 ** (n - i - 1),
                3,
                stride=2,
                padding=1,
                output_padding=1,
            )
            for i in range(n)
        )
        self.conv_out = nn.Conv2d(nef, cfg.channels, 7)
        init_weights(self, cfg.init)

    image_channels: ClassVar[int] = 3

    def encode(self, image: Tensor) -> Tensor:
        """The encoder-decoder before pooling: ``[B, 3, H, W] -> [B, channels, H, W]``."""
        nhwc = image.device.type == "cpu" and image.dtype == torch.float32
        nhwc = nhwc and not torch.is_autocast_enabled("cpu")
        # CPU fp32: channels_last all the way (oneDNN's native layout: the transposed convs
        # ~3x faster, no layout copies) with the norm as a batch norm over the pixels
        x = image.contiguous(memory_format=torch.channels_last) if nhwc else image
        norm = _instance_norm_nhwc if nhwc else _instance_norm
        for i, conv in enumerate([self.conv_in, *self.down, *self.up]):
            y = conv(F.pad(x, (3, 3, 3, 3), mode="reflect") if i == 0 else x)
            x = F.relu_(norm(y).to(y.dtype))  # in place: the norm's output is new
        out = torch.tanh(self.conv_out(F.pad(x, (3, 3, 3, 3), mode="reflect")))
        return out.contiguous()

    def _instances(self, cond: Condition) -> Tensor:
        if cond.instance_map is None:
            raise ValueError(
                "pix2pixhd.instance_encoder pools within instances and reads "
                "Condition.instance_map, which is missing: give the data an instance map"
            )
        return cond.instance_map

    def posterior(self, image: Tensor, cond: Condition) -> Latents:
        """``Latents(spatial=instance_average(E(image)), kl=0)``, ``[B, channels, H, W]``."""
        inst = self._instances(cond)
        if tuple(inst.shape[-2:]) != tuple(image.shape[-2:]):
            raise ValueError(
                f"instance_map is {tuple(inst.shape[-2:])} but the image is "
                f"{tuple(image.shape[-2:])}; give them the same size"
            )
        feat = instance_average(self.encode(image), inst)
        return Latents(spatial=feat, kl=feat.new_zeros((), dtype=torch.float32))

    def prior(self, cond: Condition, generator: torch.Generator | None = None) -> Latents:
        """One Gaussian vector per ``(sample, instance)``: ``spatial [B, channels, H, W]``."""
        inst = self._instances(cond)
        b, h, w = inst.shape
        seg, _, _ = instance_segments(inst)
        draws = torch.randn(
            seg.numel(), self.config.channels, generator=generator, device=inst.device
        )
        out = draws.index_select(0, seg) * self.config.std
        return Latents(spatial=rearrange(out, "(b h w) c -> b c h w", b=b, h=h, w=w))
