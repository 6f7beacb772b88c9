"""A tiny composed model used to exercise samplers (not registered anywhere).

Samplers are checked against these self-contained parts rather than a registered generator,
so a sampler's conformance does not depend on any other part being correct.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from einops import repeat
from torch import Tensor, nn

from ..condition import Condition
from ..config import PartConfig
from ..context import Context
from ..latents import Latents
from ..outputs import DiscriminatorOutput, SynthesisOutput
from ..parts.base import Discriminator, Generator, LatentInjector
from ..parts.losses import gaussian_kl

__all__ = [
    "TINY_NUM_CLASSES",
    "TinyDiscriminator",
    "TinyGenerator",
    "TinyInjector",
    "tiny_gan_model",
    "tiny_model",
]

TINY_NUM_CLASSES = 4


class TinyInjector(LatentInjector):
    """Gaussian ``z: [B, z_dim]`` prior; posterior from the image's channel means (with KL)."""

    class Config(PartConfig):
        z_dim: int = 4

    provides: ClassVar[frozenset[str]] = frozenset({"z"})
    has_posterior: ClassVar[bool] = True

    def __init__(self, config=None, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.enc = nn.Linear(3, 2 * self.config.z_dim)

    def prior(self, cond: Condition, generator: torch.Generator | None = None) -> Latents:
        z = torch.randn(cond.batch_size, self.config.z_dim, generator=generator, device=cond.device)
        return Latents(z=z)

    def posterior(self, image: Tensor, cond: Condition) -> Latents:
        mu, logvar = self.enc(image.mean(dim=(2, 3))).chunk(2, dim=-1)
        return Latents(z=mu, kl=gaussian_kl(mu, logvar, reduction="batchmean"))


class TinyGenerator(Generator):
    """One-hot label map + broadcast ``z`` -> one 3x3 conv stage -> 1x1 conv -> tanh."""

    class Config(PartConfig):
        num_classes: int = TINY_NUM_CLASSES
        z_dim: int = 4
        channels: int = 8

    requires: ClassVar[frozenset[str]] = frozenset({"label_map", "z"})

    def __init__(self, config=None, **kwargs) -> None:
        super().__init__(config, **kwargs)
        c = self.config
        self.stages = nn.ModuleList([nn.Conv2d(c.num_classes + c.z_dim, c.channels, 3, padding=1)])
        self.to_rgb = nn.Conv2d(c.channels, self.image_channels, 1)
        self.stage_channels, self.stage_scales = [c.channels], [1]

    def forward(
        self, cond: Condition, latents: Latents | None = None, *, return_features: bool = False
    ) -> SynthesisOutput:
        ctx = Context(cond, latents)
        assert cond.size is not None and ctx.latents.z is not None
        h, w = cond.size
        z = repeat(ctx.latents.z, "b z -> b z h w", h=h, w=w)
        x = F.leaky_relu(self.stages[0](torch.cat([ctx.one_hot((h, w)), z], dim=1)), 0.2)
        image = torch.tanh(self.to_rgb(x))
        return SynthesisOutput(image=image, features=[x] if return_features else None)


def tiny_model(seed: int = 0):
    """A :class:`synth.SynthesisModel` with the tiny generator and injector (K = 4 classes)."""
    from ..compose import ModelSpec
    from ..model import SynthesisModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen, inj = TinyGenerator(), TinyInjector()
    spec = ModelSpec(
        generator={"type": "testing.tiny_generator"}, injector={"type": "testing.tiny_injector"}
    )
    model = SynthesisModel(spec, generator=gen, injector=inj, data_fields=frozenset({"label_map"}))
    return model.eval()


class TinyDiscriminator(Discriminator):
    """Image -> 3x3 conv -> LeakyReLU -> 1x1 conv: one scale of patch logits."""

    class Config(PartConfig):
        channels: int = 8

    def __init__(self, config=None, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.body = nn.Conv2d(self.image_channels, self.config.channels, 3, padding=1)
        self.head = nn.Conv2d(self.config.channels, 1, 1)

    def forward(self, image: Tensor, cond: Condition) -> DiscriminatorOutput:
        h = F.leaky_relu(self.body(image), 0.2)
        return DiscriminatorOutput(logits=[self.head(h)], features=[[h]])


def tiny_gan_model(seed: int = 0):
    """:func:`tiny_model` plus a tiny discriminator and core's hinge + L1 losses: what the kit
    trains one step of to check a training objective."""
    from ..parts.losses import L1, Hinge

    model = tiny_model(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        model.discriminator = TinyDiscriminator()
    model.losses = nn.ModuleDict({"gan": Hinge(), "l1": L1()})
    return model
