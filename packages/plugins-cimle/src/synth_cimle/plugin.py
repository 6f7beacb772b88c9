"""Registers the `cimle.*` parts and recipes with synth."""

from __future__ import annotations

import synth

SYNTH_API = ">=1,<2"

_PARTS: dict[str, tuple[str, str]] = {
    "cimle.imle": ("objective", "synth_cimle.objectives:IMLE"),
    "cimle.distance": ("loss", "synth_cimle.losses:Distance"),
    "cimle.rrdb_generator": ("generator", "synth_cimle.generators:RRDBGenerator"),
    "cimle.crn_generator": ("generator", "synth_cimle.generators:CRNGenerator"),
    "cimle.noise_encoder": ("injector", "synth_cimle.injectors:NoiseEncoder"),
    "cimle.spatial_code": ("injector", "synth_cimle.injectors:SpatialCode"),
    "cimle.faithfulness_weighted_variance": (
        "metric",
        "synth_cimle.metrics:FaithfulnessWeightedVariance",
    ),
}


@synth.hookimpl
def synth_register(registry: synth.Registry) -> None:
    for name, (kind, target) in _PARTS.items():
        registry.add(name, kind=kind, target=target)
    from .recipes import DEMO, RECIPES, TRAIN

    for name, (spec, description) in RECIPES.items():
        registry.add_recipe(name, spec, description=description, train=TRAIN[name], demo=DEMO[name])
