"""``collage.projection_discriminator``: SNGAN's spectral-norm ResNet discriminator with class
projection (Miyato & Koyama 2018, "cGANs with Projection Discriminator"), the discriminator
the paper's SNGAN models were trained with (official ``SNResNetProjectionDiscriminator``).

``image -> OptimizedBlock -> Block(down) … -> Block -> ReLU -> Σ_{h,w} -> φ: [B, C]``,
``logit = l(φ) + <embed(y), φ>`` (the projection term). Every conv, the final linear layer and
the class embedding are spectrally normalised (one power iteration per training forward).

Manifold projection (eq. 4) does NOT compare the pooled ``φ``: it compares the official
``feature_vector``, the ReLU of the last block's output with its spatial layout kept,
flattened to ``[B, C·h·w]`` (:meth:`ProjectionDiscriminator.feature_vector`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from pydantic import Field
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

import synth

__all__ = ["DEFAULT_D_MULTIPLIERS", "DownBlock", "ProjectionDiscriminator"]

#: Width multipliers per input size: the first block is the optimized one, the last keeps
#: the size, every other one halves it (so the last map is 4×4).
DEFAULT_D_MULTIPLIERS: dict[int, list[int]] = {
    32: [1, 2, 4, 4],
    64: [1, 2, 4, 8, 8],
    128: [1, 2, 4, 8, 16, 16],
    256: [1, 2, 4, 8, 8, 16, 16],
}


class DownBlock(nn.Module):
    """``[B, C_in, h, w] -> [B, C_out, h/2, w/2]`` (or same size without ``down``).

    Residual: ``c2(relu(c1(relu(x))))`` (``optimized``: no ReLU before ``c1``, as the first
    block), average-pooled when ``down``; shortcut ``c_sc`` (1×1) when the width or size
    changes, pooled after it (``optimized``: before it). ``c1`` maps ``C_in -> hidden``
    (default ``C_out``), ``c2`` ``hidden -> C_out``.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        *,
        down: bool,
        optimized: bool = False,
        hidden: int | None = None,
    ) -> None:
        super().__init__()
        self.down, self.optimized = down, optimized
        hidden = out_ch if hidden is None else hidden
        self.c1 = spectral_norm(nn.Conv2d(in_ch, hidden, 3, padding=1))
        self.c2 = spectral_norm(nn.Conv2d(hidden, out_ch, 3, padding=1))
        self.learnable_sc = optimized or in_ch != out_ch or down
        self.c_sc = spectral_norm(nn.Conv2d(in_ch, out_ch, 1)) if self.learnable_sc else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.c1(x if self.optimized else F.relu(x))
        h = self.c2(F.relu(h))
        if self.down:
            h = F.avg_pool2d(h, 2)
        sc = x
        if self.c_sc is not None:
            if self.optimized:
                sc = self.c_sc(F.avg_pool2d(x, 2))
            else:
                sc = self.c_sc(x)
                sc = F.avg_pool2d(sc, 2) if self.down else sc
        return h + sc


class ProjectionDiscriminator(synth.Discriminator):
    """SN-ResNet projection discriminator: ``image [B, 3, R, R]`` -> ``logits [[B, 1]]``.

    The class is ``Condition.class_id`` or, for class maps, the per-image average of
    ``Condition.class_weights`` (a soft label: the projection is linear in it); no class
    (``num_classes`` None) drops the projection term. ``features[0]``: each block's output,
    then the pooled ``φ = Σ_hw relu(h)`` as ``[B, C, 1, 1]``. Manifold projection compares
    :meth:`feature_vector` (the un-pooled ``relu(h)``, as the official code), not ``φ``.
    """

    class Config(synth.PartConfig):
        num_classes: int | None = Field(None, ge=1, description="K (runtime argument)")
        resolution: int = Field(128, description="input side; picks default widths")
        ch: int = Field(64, ge=1)
        channel_multipliers: list[int] | None = Field(
            None, description="widths / ch per block; default DEFAULT_D_MULTIPLIERS[resolution]"
        )
        hidden: Literal["out", "in"] = Field(
            "out",
            description="width of c1 in blocks 2..: 'out' (the block's output width, as "
            "snresnet_256.py passes hidden_channels) or 'in' (its input width, the default of "
            "the official dis_models/resblocks.py Block, used by snresnet_small.py: the "
            "official 128 px dog+cat discriminator)",
        )
        condition: Literal["class_id", "class_weights", "label_map"] = Field(
            "class_id",
            description="the Condition field the compose-time check asks for (label_map: the "
            "classes' area fractions are the soft label, as for class_weights)",
        )

    requires: ClassVar[frozenset[str]] = frozenset()
    config: Config

    @classmethod
    def requirements(cls, config: synth.PartConfig | None = None) -> frozenset[str]:
        if config is None or getattr(config, "num_classes", None) is None:
            return frozenset()
        return frozenset({config.condition})  # type: ignore[attr-defined]

    def __init__(self, config: Config | dict | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        cfg = self.config
        mult = cfg.channel_multipliers or DEFAULT_D_MULTIPLIERS.get(cfg.resolution)
        if mult is None or len(mult) < 2:
            raise ValueError(
                f"collage.projection_discriminator: no default widths for resolution="
                f"{cfg.resolution}; give channel_multipliers (e.g. [1, 2, 4, 4] for 32 px)"
            )
        widths = [cfg.ch * m for m in mult]
        blocks = [DownBlock(self.image_channels, widths[0], down=True, optimized=True)]
        for i in range(1, len(widths)):
            hidden = widths[i - 1] if cfg.hidden == "in" else widths[i]
            blocks.append(
                DownBlock(widths[i - 1], widths[i], down=i < len(widths) - 1, hidden=hidden)
            )
        self.blocks = nn.ModuleList(blocks)
        self.linear = spectral_norm(nn.Linear(widths[-1], 1))
        self.embed = (
            spectral_norm(nn.Embedding(cfg.num_classes, widths[-1]))
            if cfg.num_classes is not None
            else None
        )

    def example_inputs(
        self, *, batch_size: int, size: tuple[int, int], generator: torch.Generator
    ) -> dict[str, Any]:
        image = torch.rand(batch_size, 3, *size, generator=generator) * 2 - 1
        k = self.config.num_classes
        if k is None:
            return {
                "image": image.requires_grad_(True),
                "cond": synth.Condition(mask=torch.ones(batch_size, 1, *size)),
            }
        ids = torch.randint(0, k, (batch_size,), generator=generator)
        return {
            "image": image.requires_grad_(True),
            "cond": synth.Condition(class_id=ids, num_classes=k),
        }

    def _labels(self, cond: synth.Condition, dtype: torch.dtype) -> Tensor | None:
        """``[B, K]`` one-hot class ids or averaged class maps; ``None`` without classes."""
        k = self.config.num_classes
        if k is None:
            return None
        if cond.class_weights is not None:
            return cond.class_weights.to(dtype).mean(dim=(2, 3))
        if cond.label_map is not None:  # the per-pixel classes the sCBN layers read
            return reduce(F.one_hot(cond.label_map, k).to(dtype), "b h w k -> b k", "mean")
        if cond.class_id is not None:
            return F.one_hot(cond.class_id, k).to(dtype)
        raise ValueError(
            "collage.projection_discriminator projects on the class: give the Condition a "
            "class_id [B], class_weights [B, K, H, W] or label_map [B, H, W] (with "
            "num_classes=K)"
        )

    def feature_vector(self, image: Tensor, cond: synth.Condition | None = None) -> Tensor:
        """The official ``feature_vector``: ``image [B, 3, H, W]`` -> ``relu(h)`` of the last
        block flattened channel-major, ``[B, C·h·w]`` (no spatial sum, no class projection;
        ``cond`` is not read). Ψ of eq. 4 is this vector L2-normalised."""
        h = image
        for block in self.blocks:
            h = block(h)
        return rearrange(F.relu(h), "b c h w -> b (c h w)")

    def forward(self, image: Tensor, cond: synth.Condition) -> synth.DiscriminatorOutput:
        """``image: [B, 3, H, W]`` -> ``logits [[B, 1]]``, ``features [[block outputs..., φ]]``."""
        feats: list[Tensor] = []
        h = image
        for block in self.blocks:
            h = block(h)
            feats.append(h)
        phi = F.relu(h).sum(dim=(2, 3))  # [B, C]
        logit = self.linear(phi)
        labels = self._labels(cond, phi.dtype)
        if labels is not None and self.embed is not None:
            # <embed(y), φ> with y one-hot (or soft): (y @ E) · φ
            logit = logit + ((labels @ self.embed.weight) * phi).sum(dim=1, keepdim=True)
        feats.append(phi[:, :, None, None])
        return synth.DiscriminatorOutput(logits=[logit], features=[feats])
