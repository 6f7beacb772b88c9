"""synth: multimodal conditional image synthesis from composable, pluggable parts.

>>> import synth
>>> synth.list_parts(kind="conditioning")            # doctest: +SKIP
>>> model = synth.compose({"generator": {"type": "core.simple_generator", "num_classes": 8}})
"""

from __future__ import annotations

import warnings

from .compose import ModelSpec, check_spec, compose, load_spec
from .condition import CONDITION_FIELDS, Condition
from .config import RUNTIME_ARGS, PartConfig, PartSpec
from .context import Context
from .errors import (
    CapabilityError,
    CheckpointError,
    ComposeError,
    ConfigError,
    PluginError,
    RegistryError,
    UnknownPartError,
    WeightsNotFoundError,
)
from .extras import MissingExtraError
from .io import read_state_dict, resolve_weights
from .latents import LATENT_FIELDS, Latents
from .model import SynthesisModel
from .nn import ops
from .outputs import DiscriminatorOutput, LossInputs, SynthesisOutput
from .parts import (
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
)
from .pretrained import load
from .registry import (
    PLUGIN_API_VERSION,
    DemoPicture,
    PluginInfo,
    Registry,
    SynthPluginWarning,
    build,
    describe,
    get_registry,
    hookimpl,
    list_parts,
    plugins,
    recipes,
    register_plugin,
    set_registry,
)
from .train import RunConfig, Trainer, TrainerConfig
from .version import __version__

_DEPRECATED = {"TrainingObjective": ("Objective", Objective)}


def __getattr__(name: str) -> object:
    """Names of earlier releases, kept for one release with a DeprecationWarning."""
    if name in _DEPRECATED:
        new, value = _DEPRECATED[name]
        warnings.warn(
            f"synth.{name} is deprecated; use synth.{new}", DeprecationWarning, stacklevel=2
        )
        return value
    raise AttributeError(f"module 'synth' has no attribute {name!r}")


__all__ = [
    "CONDITION_FIELDS",
    "KINDS",
    "LATENT_FIELDS",
    "PLUGIN_API_VERSION",
    "RUNTIME_ARGS",
    "CapabilityError",
    "CheckpointError",
    "ComposeError",
    "Condition",
    "ConditioningBlock",
    "ConfigError",
    "Context",
    "DemoPicture",
    "Discriminator",
    "DiscriminatorOutput",
    "Generator",
    "LatentInjector",
    "Latents",
    "Loss",
    "LossConfig",
    "LossInputs",
    "Metric",
    "MissingExtraError",
    "ModelSpec",
    "Objective",
    "Part",
    "PartConfig",
    "PartSpec",
    "PluginError",
    "PluginInfo",
    "Registry",
    "RegistryError",
    "RunConfig",
    "Sampler",
    "SynthPluginWarning",
    "SynthesisModel",
    "SynthesisOutput",
    "Trainer",
    "TrainerConfig",
    "UnknownPartError",
    "Updater",
    "WeightsNotFoundError",
    "__version__",
    "build",
    "check_spec",
    "compose",
    "describe",
    "get_registry",
    "hookimpl",
    "list_parts",
    "load",
    "load_spec",
    "ops",
    "plugins",
    "read_state_dict",
    "recipes",
    "register_plugin",
    "resolve_weights",
    "set_registry",
]
