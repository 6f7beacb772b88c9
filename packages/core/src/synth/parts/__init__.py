"""The part kinds (layer 3): one ABC per kind in ``base``, then core's own parts by kind.

Core's parts are registered by name (``core.*``, see :mod:`synth.registry.core`) and imported on
first use; the ABCs are re-exported from :mod:`synth`.
"""

from .base import (
    DEPRECATED_KINDS,
    KINDS,
    ConditioningBlock,
    Discriminator,
    Generator,
    LatentInjector,
    Loss,
    LossConfig,
    Metric,
    Objective,
    Part,
    Sampler,
    Updater,
    build_part,
    install_builder,
)

__all__ = [
    "DEPRECATED_KINDS",
    "KINDS",
    "ConditioningBlock",
    "Discriminator",
    "Generator",
    "LatentInjector",
    "Loss",
    "LossConfig",
    "Metric",
    "Objective",
    "Part",
    "Sampler",
    "Updater",
    "build_part",
    "install_builder",
]
