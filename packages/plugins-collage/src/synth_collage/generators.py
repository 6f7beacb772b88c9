"""``collage.resnet_generator``: the SNGAN ResNet generator the paper collages (§5, Table 1).

Miyato & Koyama's class-conditional ResNet generator as in the authors' code
(``gen_models/resnet_small_scbn.py`` at 128 px, ``resnet_256_scbn.py`` at 256 px): ``z``
through a linear layer to a ``[C_0, 4, 4]`` map, then one residual block per doubling::

    h -> c2(relu(b2(c1(up(relu(b1(h))))))) + c_sc(up(h))      up = nearest ×2

with the conditional norms ``b1``, ``b2`` from the ``norm`` slot (``collage.scbn`` by
default: CBN for a class id, sCBN for a class map), then BN, ReLU, a 3×3 conv and tanh. No
spectral norm in G (as the official code). Widths ``ch · channel_multipliers``:
``{8, 8, 4, 4, 2, 1}`` at 128 px and ``{16, 16, 8, 8, 4, 2, 1}`` at 256 px (the official ones).

Stages (DESIGN §3): stage 0 is the linear layer's ``4×4`` map and stage ``i ≥ 1`` block ``i``'s
output: exactly the maps the official feature blending rewrites (after ``l1`` and after every
block, appendix A), so ``collage.feature_blend`` attaches to ``stages`` as on any generator.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import Field, model_validator
from torch import Tensor, nn

import synth
from synth.nn.norms import batch_normalize

from .norms import CHAINER_BN_EPS

__all__ = ["DEFAULT_MULTIPLIERS", "LinearStem", "ResBlockUp", "ResNetGenerator"]

#: Width multipliers per output size (bottom width 4). 128 and 256 are the official ones.
DEFAULT_MULTIPLIERS: dict[int, list[int]] = {
    32: [4, 4, 2, 1],
    64: [8, 8, 4, 2, 1],
    128: [8, 8, 4, 4, 2, 1],
    256: [16, 16, 8, 8, 4, 2, 1],
}


# ---------------------------------------------------------------------------------------------
# layers
# ---------------------------------------------------------------------------------------------


class LinearStem(nn.Module):
    """Stage 0: ``z: [B, Z] -> [B, C_0, bw, bw]`` (official ``l1``, reshaped channel-major)."""

    def __init__(self, z_dim: int, channels: int, bottom_width: int) -> None:
        super().__init__()
        self.bottom_width = bottom_width
        self.linear = nn.Linear(z_dim, channels * bottom_width**2)

    def forward(self, z: Tensor, ctx: synth.Context | None = None) -> Tensor:
        bw = self.bottom_width
        return rearrange(self.linear(z), "b (c h w) -> b c h w", h=bw, w=bw)


class ResBlockUp(nn.Module):
    """One block, ``[B, C_in, h, w] -> [B, C_out, 2h, 2w]``:
    ``c2(relu(b2(c1(up(relu(b1(x))))))) + c_sc(up(x))`` (official ``blockN``)."""

    def __init__(self, in_ch: int, out_ch: int, b1: nn.Module, b2: nn.Module) -> None:
        super().__init__()
        self.b1, self.b2 = b1, b2
        self.c1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.c2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.c_sc = nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: Tensor, ctx: synth.Context) -> Tensor:
        h = F.interpolate(F.relu(self.b1(x, ctx)), scale_factor=2, mode="nearest")
        h = self.c2(F.relu(self.b2(self.c1(h), ctx)))
        return h + self.c_sc(F.interpolate(x, scale_factor=2, mode="nearest"))


# ---------------------------------------------------------------------------------------------
# generator
# ---------------------------------------------------------------------------------------------


class ResNetGenerator(synth.Generator):
    """SNGAN ResNet generator with a conditional-norm slot: ``(cond, z) -> [B, 3, R, R]``.

    Reads ``latents.z: [B, z_dim]`` and, through its norms, ``Condition.class_id: [B]`` or
    ``Condition.class_weights: [B, K, H, W]`` (a class map; per layer with
    :func:`synth_collage.layer_class_maps`). ``resolution`` R = ``4 · 2**n`` with ``n`` blocks;
    ``channel_multipliers`` has ``n + 1`` entries (default :data:`DEFAULT_MULTIPLIERS`).
    ``features[0]: [B, ch·m_0, 4, 4]`` (after ``l1``), ``features[i]: [B, ch·m_i, 4·2^i, 4·2^i]``.
    """

    class Config(synth.PartConfig):
        num_classes: int = Field(ge=1, description="K, classes of the conditional norms")
        resolution: int = Field(128, description="output side R = 4·2**blocks (128, 256, ...)")
        ch: int = Field(64, ge=1, description="base width (the official 256 px model: 48)")
        channel_multipliers: list[int] | None = Field(
            None, description="widths / ch, one per stage; default: the official ones"
        )
        z_dim: int = Field(128, ge=1, description="dim_z")
        bottom_width: int = Field(4, ge=1)
        norm: synth.PartSpec = Field(
            default_factory=lambda: {"type": "collage.scbn"},
            description="conditional norm before each conv of a block (b1, b2)",
        )
        eps: float = Field(CHAINER_BN_EPS, gt=0, description="eps of the final (plain) BN")

        @model_validator(mode="after")
        def _check(self) -> ResNetGenerator.Config:
            ratio = self.resolution // self.bottom_width
            blocks = ratio.bit_length() - 1
            if self.resolution % self.bottom_width or ratio != 2**blocks or blocks < 1:
                raise ValueError(
                    f"resolution={self.resolution} must be bottom_width·2**n with n ≥ 1 "
                    f"(bottom_width={self.bottom_width}): e.g. 32, 64, 128 or 256"
                )
            mult = self.channel_multipliers
            if mult is None and self.resolution not in DEFAULT_MULTIPLIERS:
                raise ValueError(
                    f"no default channel_multipliers for resolution={self.resolution}: give "
                    f"{blocks + 1} of them, e.g. channel_multipliers: {[1] * (blocks + 1)}"
                )
            if mult is not None and len(mult) != blocks + 1:
                raise ValueError(
                    f"channel_multipliers has {len(mult)} entries but resolution "
                    f"{self.resolution} needs {blocks + 1} (one per stage: the 4×4 map and "
                    f"{blocks} blocks)"
                )
            return self

    requires: ClassVar[frozenset[str]] = frozenset({"z"})
    config: Config

    def __init__(self, config: Config | dict | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        cfg = self.config
        mult = cfg.channel_multipliers or DEFAULT_MULTIPLIERS[cfg.resolution]
        widths = [cfg.ch * m for m in mult]
        n = len(widths) - 1
        self.size_multiple = cfg.resolution
        self.stage_channels = widths
        self.stage_scales = [cfg.resolution // (cfg.bottom_width * 2**i) for i in range(n + 1)]
        blocks: list[nn.Module] = [LinearStem(cfg.z_dim, widths[0], cfg.bottom_width)]
        for i in range(n):
            b1, b2 = (
                self.build_slot(
                    cfg.norm,
                    channels=c,
                    num_classes=cfg.num_classes,
                    stage=i + 1,
                    num_stages=n + 1,
                )
                for c in (widths[i], widths[i + 1])
            )
            blocks.append(ResBlockUp(widths[i], widths[i + 1], b1, b2))
        self.stages = nn.ModuleList(blocks)
        self.bn = nn.BatchNorm2d(widths[-1], eps=cfg.eps)
        self.to_rgb = nn.Conv2d(widths[-1], self.image_channels, 3, padding=1)

    # ------------------------------------------------------------------ boundary checks
    def check_condition(self, cond: synth.Condition) -> None:
        """The output side is fixed by ``resolution``: a Condition size must equal it."""
        r = self.config.resolution
        if cond.size is not None and tuple(cond.size) != (r, r):
            raise ValueError(
                f"collage.resnet_generator makes {r}×{r} images but the Condition has size "
                f"{tuple(cond.size)}: give class maps at {r}×{r} (F.interpolate them) or build "
                f"the generator with resolution={cond.size[0]}"
            )

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        cond: synth.Condition,
        latents: synth.Latents | None = None,
        *,
        return_features: bool = False,
    ) -> synth.SynthesisOutput:
        """``z`` (+ class id or class map) -> ``image: [B, 3, R, R]`` in ``[-1, 1]``."""
        ctx = synth.Context(cond, latents)
        z = ctx.latents.z
        if z is None or z.dim() != 2 or z.shape[1] != self.config.z_dim:
            got = None if z is None else tuple(z.shape)
            raise ValueError(
                f"collage.resnet_generator reads latents.z [B, {self.config.z_dim}], got {got}: "
                "compose with core.gaussian or pass synth.Latents(z=torch.randn(B, "
                f"{self.config.z_dim}))"
            )
        x: Tensor = z.to(self.stages[0].linear.weight.dtype)
        features: list[Tensor] = []
        for i, stage in enumerate(self.stages):
            x = stage(x, ctx.at(i))
            features.append(x)
        h = F.relu(batch_normalize(x, self.bn).to(x.dtype))
        image = torch.tanh(self.to_rgb(h))
        return synth.SynthesisOutput(image=image, features=features if return_features else None)
