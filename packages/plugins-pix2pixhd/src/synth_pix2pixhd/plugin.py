"""Registers the `pix2pixhd.*` parts and recipes with synth."""

from __future__ import annotations

import synth

from .recipes import DEMO, RECIPES, TRAIN

SYNTH_API = ">=1,<2"

_PARTS: dict[str, tuple[str, str]] = {
    "pix2pixhd.global_generator": ("generator", "synth_pix2pixhd.generators:GlobalGenerator"),
    "pix2pixhd.local_enhancer": ("generator", "synth_pix2pixhd.generators:LocalEnhancer"),
    "pix2pixhd.patch_discriminator": (
        "discriminator",
        "synth_pix2pixhd.discriminators:PatchDiscriminator",
    ),
    "pix2pixhd.multiscale_discriminator": (
        "discriminator",
        "synth_pix2pixhd.discriminators:MultiscaleDiscriminator",
    ),
    "pix2pixhd.feature_matching": ("loss", "synth_pix2pixhd.losses:FeatureMatching"),
    "pix2pixhd.instance_encoder": ("injector", "synth_pix2pixhd.encoders:InstanceEncoder"),
    "pix2pixhd.cluster_sampler": ("sampler", "synth_pix2pixhd.samplers:ClusterSampler"),
}


@synth.hookimpl
def synth_register(registry: synth.Registry) -> None:
    for name, (kind, target) in _PARTS.items():
        registry.add(name, kind=kind, target=target)
    for name, (spec, description) in RECIPES.items():
        registry.add_recipe(name, spec, description=description, train=TRAIN[name], demo=DEMO[name])
