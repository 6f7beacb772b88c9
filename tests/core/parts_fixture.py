"""Small parts for composer/model tests, registered as plugin ``t`` into a fresh registry."""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F
from torch import nn

import synth
from synth.registry import discover

BUILT: list[str] = []  # class names whose __init__ ran (to prove checks come first)


class Gen(synth.Generator):
    """Label map (+ optional z) -> image, with a norm slot and optional pyramid."""

    class Config(synth.PartConfig):
        num_classes: int = 4
        ch: int = 8
        z_dim: int = 0
        style_dim: int = 0
        norm: synth.PartSpec = {"type": "t.norm"}

    size_multiple = 2

    def __init__(self, config=None, **kw):
        super().__init__(config, **kw)
        BUILT.append(type(self).__name__)
        c = self.config
        self.inp = nn.Conv2d(c.num_classes + c.z_dim, c.ch, 3, padding=1)
        self.stages = nn.ModuleList([nn.Conv2d(c.ch, c.ch, 3, padding=1)])
        self.norm = self.build_slot(
            c.norm,
            channels=c.ch,
            stage=0,
            num_stages=1,
            style_dim=c.style_dim,
            num_classes=c.num_classes,
        )
        self.out = nn.Conv2d(c.ch, 3, 1)
        self.stage_channels, self.stage_scales = [c.ch], [1]

    @classmethod
    def requirements(cls, config=None):
        req = {"label_map"}
        if config is not None and config.z_dim:
            req.add("z")
        return frozenset(req)

    def forward(self, cond, latents=None, *, return_features=False):
        ctx = synth.Context(cond, latents)
        x = ctx.one_hot(cond.size)
        if self.config.z_dim:
            x = torch.cat([x, latents.z[:, :, None, None].expand(-1, -1, *cond.size)], 1)
        f = F.relu(self.norm(self.stages[0](self.inp(x)), ctx.at(0)))
        return synth.SynthesisOutput(torch.tanh(self.out(f)), [f] if return_features else None)


class PyramidGen(Gen):
    """Same with a (trivial) per-scale pyramid."""

    has_pyramid = True


class Norm(synth.ConditioningBlock):
    """Instance norm with learned affine."""

    class Config(synth.PartConfig):
        channels: int

    def __init__(self, config=None, **kw):
        super().__init__(config, **kw)
        self.affine = nn.Conv2d(self.config.channels, self.config.channels, 1)

    def forward(self, x, ctx):
        return self.affine(F.instance_norm(x))


class WeightsNorm(Norm):
    """Reads class weights."""

    requires = frozenset({"class_weights"})


class Disc(synth.Discriminator):
    """One-scale conv discriminator."""

    class Config(synth.PartConfig):
        num_classes: int | None = None

    def __init__(self, config=None, **kw):
        super().__init__(config, **kw)
        self.net = nn.Conv2d(3, 1, 3, padding=1)

    def forward(self, image, cond):
        h = self.net(image)
        return synth.DiscriminatorOutput([h], [[h]])


class GrayDisc(Disc):
    """Reads one-channel images."""

    image_channels = 1


class PyramidLoss(synth.Loss):
    """Needs a pyramid."""

    needs = frozenset({"pyramid"})

    def forward(self, batch):
        return sum(p.mean() for p in batch.fake.pyramid)


class FMLoss(synth.Loss):
    """Needs discriminator features."""

    needs = frozenset({"disc_features"})

    def forward(self, batch):
        return batch.disc_fake.features[0][0].mean()


class Obj(synth.Objective):
    """Needs a discriminator."""

    requires_parts = frozenset({"discriminator"})
    networks = ("generator", "discriminator")

    def step(self, model, cond, real, updater):
        return {}


def _register(registry):
    for name, kind, cls in [
        ("t.gen", "generator", Gen),
        ("t.pyramid_gen", "generator", PyramidGen),
        ("t.norm", "conditioning", Norm),
        ("t.weights_norm", "conditioning", WeightsNorm),
        ("t.disc", "discriminator", Disc),
        ("t.gray_disc", "discriminator", GrayDisc),
        ("t.pyramid_loss", "loss", PyramidLoss),
        ("t.fm", "loss", FMLoss),
        ("t.obj", "objective", Obj),
    ]:
        registry.add(name, kind=kind, target=cls)
    registry.add_recipe(
        "t.small", {"generator": {"type": "t.gen", "num_classes": 4}}, description="small"
    )


def make_registry() -> synth.Registry:
    reg = synth.Registry()
    discover(reg, entry_points=False)
    plugin = types.ModuleType("t_plugin")
    plugin.synth_register = synth.hookimpl(_register)
    info = synth.register_plugin(reg, plugin, "t")
    assert info.status == "ok", info
    return reg
