"""SPADE's multi-scale PatchGAN discriminator (Park et al. 2019; Wang et al. 2018)."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

import synth
from synth.nn.layers import label_conv2d
from synth.nn.norms import instance_normalize

__all__ = ["InstanceNorm", "MultiscaleDiscriminator", "NLayerDiscriminator"]


class InstanceNorm(nn.Module):
    """Parameter-free instance norm with fp32 statistics (``nn.InstanceNorm2d(affine=False)``,
    no state); a 1x1 map normalises to 0 instead of raising. ``[B, C, H, W] -> same``."""

    def forward(self, x: Tensor) -> Tensor:
        return instance_normalize(x).to(x.dtype)


class NLayerDiscriminator(nn.Module):
    """One scale: ``model0 = conv4x4/2 + LReLU``, ``model1..n-1 = norm(conv4x4) + LReLU``
    (stride 2, the last one stride 1; widths ×2 up to 512), ``model_n = conv4x4 -> 1``.

    ``x: [B, C_in, H, W] -> list`` of every submodel's output (the last is the logits map).
    With ``norm="spectralinstance"`` the middle convs are spectral-normed, bias-free and
    followed by a parameter-free instance norm (SPADE's ``norm_D``); ``model0`` never is.

    ``forward(x, labels)`` instead takes the label map ``labels: LongTensor[B, H, W]`` and ``x``
    = the input without its one-hot channels (``[B, C_in - K, H, W]``, the edges if any, then
    the image): same result, ``model0``'s conv reads the one-hot part by gathering
    (:func:`synth.nn.layers.label_conv2d` with ``weight[:, :K]``, exact) and the rest densely
    (``weight[:, K:]``), one weight of the dense conv's shape (the official keys load unchanged).
    """

    def __init__(self, in_channels: int, ndf: int, n_layers: int, norm: str) -> None:
        super().__init__()
        kw, pw = 4, 2
        nf = ndf
        self.n_layers = n_layers
        self.model0 = nn.Sequential(
            nn.Conv2d(in_channels, nf, kw, stride=2, padding=pw), nn.LeakyReLU(0.2)
        )
        for n in range(1, n_layers):
            prev, nf = nf, min(nf * 2, 512)
            stride = 1 if n == n_layers - 1 else 2
            with_norm = norm != "none"
            conv = nn.Conv2d(prev, nf, kw, stride=stride, padding=pw, bias=not with_norm)
            if norm.startswith("spectral"):
                conv = spectral_norm(conv)
            inner = (
                nn.Sequential(conv, InstanceNorm())
                if norm.endswith("instance")
                else nn.Sequential(conv)
            )
            self.add_module(f"model{n}", nn.Sequential(inner, nn.LeakyReLU(0.2)))
        self.add_module(
            f"model{n_layers}", nn.Sequential(nn.Conv2d(nf, 1, kw, stride=1, padding=pw))
        )

    def forward(self, x: Tensor, labels: Tensor | None = None) -> list[Tensor]:
        outs = []
        for n in range(self.n_layers + 1):
            if n == 0 and labels is not None:
                conv, act = self.model0
                w, stride, pad = conv.weight, conv.stride[0], conv.padding[0]
                k = w.shape[1] - x.shape[1]
                out = label_conv2d(labels, w[:, :k], conv.bias, stride=stride, padding=pad)
                rest = F.conv2d(x.to(w.dtype), w[:, k:], None, stride=stride, padding=pad)
                x = act(out + rest.to(out.dtype))
            else:
                x = getattr(self, f"model{n}")(x)
            outs.append(x)
        return outs


class MultiscaleDiscriminator(synth.Discriminator):
    """SPADE's discriminator: ``num_d`` PatchGANs on the image pyramid.

    Input ``cat(one_hot(label_map), image)`` (``[B, K + 3, H, W]``, the official order), or with
    ``use_instances`` ``cat(one_hot, instance_edges(instance_map), image)`` (``K + 4``; SPADE's
    Cityscapes models, official ``no_instance=False``); scale
    ``s + 1`` sees ``avg_pool2d(3, stride 2, pad 1, count_include_pad=False)`` of scale ``s``.
    Returns ``DiscriminatorOutput(logits=[B, 1, h_s, w_s] per scale (finest first),
    features=the intermediate maps of each scale)``. Defaults: num_d 2, n_layers 4, ndf 64,
    spectral instance norm. At the finest scale the first conv (stride 2) reads the one-hot map
    by gathering (:meth:`NLayerDiscriminator.forward` with ``labels``); the coarser scales
    convolve the pooled input densely (pooling makes the one-hot map fractional).
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

    config: Config

    @classmethod
    def requirements(cls, config: synth.PartConfig | None = None) -> frozenset[str]:
        """``label_map`` (unless ``use_label`` is off), ``instance_map`` with ``use_instances``."""
        out = set()
        if config is None or getattr(config, "use_label", True):
            out.add("label_map")
        if config is not None and getattr(config, "use_instances", False):
            out.add("instance_map")
        return frozenset(out)

    def __init__(self, config: Config | dict | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        c = self.config
        cin = 3 + (c.num_classes if c.use_label else 0) + int(c.use_instances)
        self.discriminators = nn.ModuleList(
            NLayerDiscriminator(cin, c.ndf, c.n_layers, c.norm) for _ in range(c.num_d)
        )

    def forward(self, image: Tensor, cond: synth.Condition) -> synth.DiscriminatorOutput:
        """``image [B, 3, H, W]`` -> per-scale logits and features."""
        size = tuple(image.shape[-2:])
        ctx = synth.Context(cond)
        labels = None
        if self.config.use_label:
            if cond.num_classes is not None and cond.num_classes != self.config.num_classes:
                raise ValueError(
                    f"the discriminator has num_classes={self.config.num_classes} but the "
                    f"condition has num_classes={cond.num_classes}"
                )
            labels = ctx.labels(size)  # nearest-resized, as the one-hot map of the dense input
        rest = image  # the non-one-hot channels, official order: cat(edges, image)
        if self.config.use_instances:
            rest = torch.cat([ctx.instance_edges(size).to(image.dtype), image], dim=1)
        x = rest
        logits, features = [], []
        for i, d in enumerate(self.discriminators):
            if i == 0:  # full resolution: the one-hot part of the first conv by gathering
                outs = d(rest, labels)
            else:
                # The official code avg-pools cat(one-hot, edges, image): the pooled one-hot map
                # is fractional at class borders, no longer one-hot, so no gather here (dense).
                if i == 1 and labels is not None:
                    x = torch.cat([ctx.one_hot(size).to(image.dtype), rest], dim=1)
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
                outs = d(x)
            logits.append(outs[-1])
            features.append(outs[:-1])
        return synth.DiscriminatorOutput(logits=logits, features=features)
