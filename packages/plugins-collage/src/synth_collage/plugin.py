"""Registers the `collage.*` parts and recipes with synth."""

from __future__ import annotations

from typing import Any

import synth

SYNTH_API = ">=1,<2"

# ---------------------------------------------------------------------------------------------
# Parts: name -> (kind, "module:Class"). One line per part; modules import on first use.
# ---------------------------------------------------------------------------------------------
_PARTS: dict[str, tuple[str, str]] = {
    # label collaging, the paper's GAN, feature collaging (H14a)
    "collage.scbn": ("conditioning", "synth_collage.norms:SpatialCBN"),
    "collage.spatial_adain": ("conditioning", "synth_collage.norms:SpatialAdaIN"),
    "collage.resnet_generator": ("generator", "synth_collage.generators:ResNetGenerator"),
    "collage.projection_discriminator": (
        "discriminator",
        "synth_collage.discriminators:ProjectionDiscriminator",
    ),
    "collage.feature_blend": ("sampler", "synth_collage.samplers:FeatureBlend"),
    "collage.label_collage": ("sampler", "synth_collage.samplers:LabelCollage"),
    # real photos: encoder, projection, auxiliary networks, blending (H14b)
    "collage.resnet_encoder": ("injector", "synth_collage.encoder:ResNetEncoder"),
}


@synth.hookimpl
def synth_register(registry: synth.Registry) -> None:
    for name, (kind, target) in _PARTS.items():
        registry.add(name, kind=kind, target=target)
    from .recipes import DEMO, RECIPES, TRAIN

    for name, (spec, description) in RECIPES.items():
        registry.add_recipe(
            name, spec, description=description, train=TRAIN[name], demo=DEMO[name] or None
        )


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
    """The label-collage picture for sCBN models on label maps (:mod:`.demo_pictures`)."""
    from .demo_pictures import demo_pictures

    return demo_pictures(model, cond, shown, real, palette, num_samples, generator)
