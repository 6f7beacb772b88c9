"""Registers the `nested_scale.*` parts and recipes with synth."""

from __future__ import annotations

import synth

SYNTH_API = ">=1,<2"

_PARTS: dict[str, tuple[str, str]] = {
    "nested_scale.pyramid_decoder": ("generator", "synth_nested_scale.generators:PyramidDecoder"),
    "nested_scale.pyramid": ("generator", "synth_nested_scale.generators:Pyramid"),
    "nested_scale.disentangle": ("loss", "synth_nested_scale.losses:Disentangle"),
    "nested_scale.ndiv": ("loss", "synth_nested_scale.losses:NDiv"),
    "nested_scale.pyramid_discriminator": (
        "discriminator",
        "synth_nested_scale.discriminators:PyramidDiscriminator",
    ),
    "nested_scale.scale_edit": ("sampler", "synth_nested_scale.samplers:ScaleEdit"),
    "nested_scale.scale_interpolate": ("sampler", "synth_nested_scale.samplers:ScaleInterpolate"),
}


@synth.hookimpl
def synth_register(registry: synth.Registry) -> None:
    for name, (kind, target) in _PARTS.items():
        registry.add(name, kind=kind, target=target)
    from .recipes import DEMO, RECIPES, TRAIN

    for name, (spec, description) in RECIPES.items():
        registry.add_recipe(name, spec, description=description, train=TRAIN[name], demo=DEMO[name])
