"""Registers the `nested_scale.*` parts and recipes with synth."""

from __future__ import annotations

from typing import Any

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


@synth.hookimpl
def synth_demo_pictures(
    model: Any,
    cond: synth.Condition,
    shown: synth.Condition,
    real: Any,
    palette: Any,
    num_samples: int,
    generator: Any,
) -> list[Any]:
    """The scale-edit grid (:mod:`synth_nested_scale.pictures`)."""
    from .pictures import demo_pictures

    return demo_pictures(model, cond, shown, real, palette, num_samples, generator)
