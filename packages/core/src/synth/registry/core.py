"""Core's own plugin: registers the ``core.*`` parts through the same hook as any plugin."""

from __future__ import annotations

from .hookspecs import hookimpl
from .registry import Registry

SYNTH_API = ">=1,<2"

_PARTS: dict[str, tuple[str, str]] = {
    # conditioning blocks (synth.parts.conditioning)
    "core.instance_norm": ("conditioning", "synth.parts.conditioning:InstanceNorm"),
    "core.batch_norm": ("conditioning", "synth.parts.conditioning:BatchNorm"),
    "core.adain": ("conditioning", "synth.parts.conditioning:AdaIN"),
    # injectors (synth.parts.injectors)
    "core.gaussian": ("injector", "synth.parts.injectors:Gaussian"),
    "core.spatial_noise": ("injector", "synth.parts.injectors:SpatialNoise"),
    # reference generator and discriminator, small and slot-driven (synth.parts.generators, ...)
    "core.simple_generator": ("generator", "synth.parts.generators:SimpleGenerator"),
    "core.patch_discriminator": ("discriminator", "synth.parts.discriminators:PatchDiscriminator"),
    # losses (synth.parts.losses)
    "core.hinge": ("loss", "synth.parts.losses:Hinge"),
    "core.lsgan": ("loss", "synth.parts.losses:LSGAN"),
    "core.nonsaturating": ("loss", "synth.parts.losses:NonSaturating"),
    "core.l1": ("loss", "synth.parts.losses:L1"),
    "core.feature_matching": ("loss", "synth.parts.losses:FeatureMatching"),
    "core.kl": ("loss", "synth.parts.losses:KL"),
    "core.perceptual": ("loss", "synth.parts.losses:Perceptual"),
    "core.lpips": ("loss", "synth.parts.losses:LPIPS"),
    # training objectives (synth.parts.objectives)
    "core.gan": ("objective", "synth.parts.objectives:GAN"),
    # samplers (synth.parts.samplers)
    "core.prior": ("sampler", "synth.parts.samplers:Prior"),
    "core.interpolate": ("sampler", "synth.parts.samplers:Interpolate"),
    "core.best_of_n": ("sampler", "synth.parts.samplers:BestOfN"),
    # metrics (synth.metrics)
    "core.lpips_diversity": ("metric", "synth.metrics.diversity:LPIPSDiversity"),
    "core.identity_recovery": ("metric", "synth.metrics.identity:IdentityRecovery"),
    "core.disentanglement_curve": (
        "metric",
        "synth.metrics.disentanglement:DisentanglementCurve",
    ),
    "core.fid": ("metric", "synth.metrics.fid:FID"),
}


@hookimpl
def synth_register(registry: Registry) -> None:
    for name, (kind, target) in _PARTS.items():
        registry.add(name, kind=kind, target=target)
