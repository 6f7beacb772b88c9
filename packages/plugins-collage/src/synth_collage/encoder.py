"""The manifold-projection encoder E: photo -> z (Suzuki et al., §4 and appendix Fig. 15).

"Identical to the discriminator of SNGAN except that its output is a 128-dimensional latent
vector z = E(x) instead of a scalar value". Layer order from the authors' Chainer code
(``enc_models/resnetenc_small.py`` at 128 px, ``resnetenc_256.py`` at 256 px), module names
here -> official keys:

- ``stem``: 3x3 conv 3 -> ch (``l1`` at 128 px, ``block1`` at 256 px);
- ``blocks[i]``: pre-activation residual blocks with 2x average-pool downsampling
  (``block2`` ...): ``c2(relu(b2(c1(pool(relu(b1(x)))))))`` + ``c_sc(pool(x))``, the norms
  ``b1``/``b2`` from the ``norm`` slot (batch norm, or a class-conditional norm reading
  ``class_id`` as in the official dog+cat encoder);
- ``final_norm`` (off by default): batch norm over the flattened ``[B, bw²·C]`` features.
  ``resnetenc_small.py`` defines such a ``b7`` but its forward never applies it, so the
  official encoders go straight from the blocks to ``fc``;
- ``fc``: linear to ``z_dim`` (``l7`` / ``l8_enc``), then ``prelu`` (``prelu_out``, slope 0.1).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import Field
from torch import Tensor, nn

import synth

__all__ = ["EncoderBlock", "ResNetEncoder", "encoder_widths"]

#: Chainer's BatchNormalization eps (the official encoder's norms).
BN_EPS = 2e-5

#: Official width multipliers of ch per block: 128 px (5 blocks) and 256 px (6 blocks).
OFFICIAL_WIDTHS: dict[int, list[int]] = {5: [2, 4, 4, 8, 8], 6: [2, 4, 8, 8, 16, 16]}


def encoder_widths(num_blocks: int) -> list[int]:
    """Width multipliers (of ``ch``) of the blocks: the official ones for 5 and 6 blocks; for
    fewer blocks the first ones of the 128 px list, for more the 128 px list padded with 8s."""
    if num_blocks in OFFICIAL_WIDTHS:
        return list(OFFICIAL_WIDTHS[num_blocks])
    return (OFFICIAL_WIDTHS[5] + [8] * num_blocks)[:num_blocks]


# --------------------------------------------------------------------------- the block


class EncoderBlock(nn.Module):
    """Pre-activation residual block with 2x average-pool downsampling (official ``Block``).

    ``x: [B, C_in, H, W] -> [B, C_out, H/2, W/2]``; the pool comes before ``c1`` and ``c_sc``
    (the official ``downsample_conv``).
    """

    def __init__(self, c_in: int, c_out: int, b1: nn.Module, b2: nn.Module) -> None:
        super().__init__()
        self.b1, self.b2 = b1, b2
        self.c1 = nn.Conv2d(c_in, c_in, 3, padding=1)
        self.c2 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.c_sc = nn.Conv2d(c_in, c_out, 1)
        # the official initialisers: Glorot uniform, gain sqrt(2) on the residual, 1 on c_sc
        for conv, gain in ((self.c1, math.sqrt(2)), (self.c2, math.sqrt(2)), (self.c_sc, 1.0)):
            nn.init.xavier_uniform_(conv.weight, gain)
            nn.init.zeros_(conv.bias)

    def forward(self, x: Tensor, ctx: synth.Context) -> Tensor:
        h = F.avg_pool2d(F.relu(self.b1(x, ctx)), 2)
        h = self.c2(F.relu(self.b2(self.c1(h), ctx)))
        return h + self.c_sc(F.avg_pool2d(x, 2))


# --------------------------------------------------------------------------- the encoder


class ResNetEncoder(synth.LatentInjector):
    """Manifold-projection encoder (paper Fig. 15): ``posterior(photo, cond) -> Latents(z)``.

    ``posterior(image [B, 3, H, W] in [-1, 1], cond)``: the image is resized (bilinear,
    antialiased) to ``image_size`` (the official code resizes its input too), then ``stem``,
    ``log2(image_size / bottom_width)`` downsampling blocks of widths ``ch·widths[i]``, flatten
    to ``[B, bw²·C]``, optional batch norm, linear, PReLU: ``z: [B, z_dim]``. ``prior``:
    ``z ~ N(0, I)`` (the starting point when there is no trained encoder).

    The block norms come from the ``norm`` slot (offered ``channels`` and ``num_classes``);
    the default is batch norm with affine and Chainer's eps 2e-5. The official dog+cat encoder
    is class-conditional: give a class-conditional norm (e.g. ``{"type": "collage.scbn"}``), which
    then reads ``cond.class_id``. All norms use running statistics in eval mode, so a photo's
    code does not depend on the rest of its batch.
    """

    class Config(synth.PartConfig):
        z_dim: int = Field(128, ge=1, description="Z (runtime argument, from the generator)")
        num_classes: int | None = Field(
            None, ge=1, description="K (runtime argument, offered to the norm slot)"
        )
        ch: int = Field(64, ge=1, description="width of the stem")
        image_size: int = Field(128, ge=8, description="photos are resized to this first")
        bottom_width: int = Field(4, ge=1, description="side of the last feature map")
        widths: list[int] | None = Field(
            None, description="multipliers of ch per block; None: the official ones"
        )
        final_norm: bool = Field(
            False,
            description="batch norm before fc (the official 128 px encoder defines b7 but its "
            "forward skips it)",
        )
        prelu_init: float = 0.1
        norm: synth.PartSpec = Field(
            default_factory=lambda: {"type": "core.batch_norm", "affine": True, "eps": BN_EPS},
            description="norm of every block (b1, b2)",
        )

    provides: ClassVar[frozenset[str]] = frozenset({"z"})
    has_posterior: ClassVar[bool] = True
    config: Config

    def __init__(self, config: Config | dict | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        c = self.config
        ratio = c.image_size / c.bottom_width
        n = round(math.log2(ratio)) if ratio >= 2 else 0
        if n < 1 or 2**n != ratio:
            raise ValueError(
                f"collage.resnet_encoder: image_size={c.image_size} must be bottom_width="
                f"{c.bottom_width} times a power of two (>= 2); e.g. image_size="
                f"{c.bottom_width * 2 ** max(n, 1)}"
            )
        widths = c.widths if c.widths is not None else encoder_widths(n)
        if len(widths) != n:
            raise ValueError(
                f"collage.resnet_encoder: widths has {len(widths)} entries but image_size="
                f"{c.image_size} / bottom_width={c.bottom_width} needs {n} blocks; give {n} "
                "multipliers or widths=None"
            )
        self.stem = nn.Conv2d(3, c.ch, 3, padding=1)
        nn.init.xavier_uniform_(self.stem.weight)
        nn.init.zeros_(self.stem.bias)
        blocks = []
        c_in = c.ch
        for m in widths:
            b1, b2 = (self._norm(c_in) for _ in range(2))
            blocks.append(EncoderBlock(c_in, c.ch * m, b1, b2))
            c_in = c.ch * m
        self.blocks = nn.ModuleList(blocks)
        flat = c.bottom_width**2 * c_in
        self.final_norm = nn.BatchNorm1d(flat, eps=BN_EPS) if c.final_norm else None
        self.fc = nn.Linear(flat, c.z_dim)
        nn.init.xavier_uniform_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)
        self.prelu = nn.PReLU(c.z_dim, init=c.prelu_init)

    def _norm(self, channels: int) -> nn.Module:
        return synth.parts.base.build_part(
            self.config.norm, channels=channels, num_classes=self.config.num_classes
        )

    @classmethod
    def requirements(cls, config: synth.PartConfig | None = None) -> frozenset[str]:
        """Nothing of its own; a class-conditional norm in the slot reads ``class_id``."""
        return frozenset()

    def prior(
        self, cond: synth.Condition, generator: torch.Generator | None = None
    ) -> synth.Latents:
        """``Latents(z=[B, z_dim] ~ N(0, I))``."""
        z = torch.randn(cond.batch_size, self.config.z_dim, generator=generator, device=cond.device)
        return synth.Latents(z=z)

    def encode(self, image: Tensor, cond: synth.Condition) -> Tensor:
        """``image [B, 3, H, W]`` in [-1, 1] -> ``z [B, z_dim]``."""
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(
                f"collage.resnet_encoder: image has shape {tuple(image.shape)}; give RGB photos "
                "[B, 3, H, W] in [-1, 1]"
            )
        s = self.config.image_size
        if tuple(image.shape[-2:]) != (s, s):
            image = F.interpolate(
                image, size=(s, s), mode="bilinear", align_corners=False, antialias=True
            )
        ctx = synth.Context(cond, None)
        h = self.stem(image)
        for block in self.blocks:
            h = block(h, ctx)
        h = rearrange(h, "b c h w -> b (c h w)")
        if self.final_norm is not None:
            # statistics in fp32 (autocast-safe)
            h = F.batch_norm(
                h.float(),
                self.final_norm.running_mean,
                self.final_norm.running_var,
                self.final_norm.weight,
                self.final_norm.bias,
                self.training,
                self.final_norm.momentum if self.final_norm.momentum is not None else 0.1,
                self.final_norm.eps,
            ).to(h.dtype)
        return self.prelu(self.fc(h))

    def posterior(self, image: Tensor, cond: synth.Condition) -> synth.Latents:
        """``Latents(z=E(image), kl=0)`` for ``image [B, 3, H, W]``: E is deterministic, so its
        KL term is a zero scalar (a model with a KL loss gets no pull from it)."""
        z = self.encode(image, cond)
        return synth.Latents(z=z, kl=z.new_zeros(()))
