"""Core's own plugin: registers the ``core.*`` parts through the same hook as any plugin."""

from __future__ import annotations

from .hookspecs import hookimpl
from .registry import Registry

SYNTH_API = ">=1,<2"

_PARTS: dict[str, tuple[str, str]] = {
    # conditioning blocks (synth.norms)
    "core.instance_norm": ("conditioning", "synth.norms:InstanceNorm"),
    "core.batch_norm": ("conditioning", "synth.norms:BatchNorm"),
    "core.adain": ("conditioning", "synth.norms:AdaIN"),
    # injectors (synth.injectors)
    "core.gaussian": ("injector", "synth.injectors:Gaussian"),
    "core.spatial_noise": ("injector", "synth.injectors:SpatialNoise"),
    # reference generator and discriminator, small and slot-driven (synth.generators, ...)
    "core.simple_generator": ("generator", "synth.generators:SimpleGenerator"),
    "core.patch_discriminator": ("discriminator", "synth.discriminators:PatchDiscriminator"),
    # losses (synth.losses)
    "core.hinge": ("loss", "synth.losses:Hinge"),
    "core.lsgan": ("loss", "synth.losses:LSGAN"),
    "core.nonsaturating": ("loss", "synth.losses:NonSaturating"),
    "core.l1": ("loss", "synth.losses:L1"),
    "core.feature_matching": ("loss", "synth.losses:FeatureMatching"),
    "core.kl": ("loss", "synth.losses:KL"),
    "core.perceptual": ("loss", "synth.losses:Perceptual"),
    "core.lpips": ("loss", "synth.losses:LPIPS"),
    # training objectives (synth.objectives)
    "core.gan": ("trainer", "synth.objectives:GAN"),
    # samplers (synth.samplers)
    "core.prior": ("sampler", "synth.samplers:Prior"),
    "core.interpolate": ("sampler", "synth.samplers:Interpolate"),
    "core.best_of_n": ("sampler", "synth.samplers:BestOfN"),
    # metrics (synth.metrics)
    "core.lpips_diversity": ("metric", "synth.metrics:LPIPSDiversity"),
    "core.identity_recovery": ("metric", "synth.metrics:IdentityRecovery"),
    "core.fid": ("metric", "synth.metrics:FID"),
}


@hookimpl
def synth_register(registry: Registry) -> None:
    for name, (kind, target) in _PARTS.items():
        registry.add(name, kind=kind, target=target)
