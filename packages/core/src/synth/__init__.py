"""synth: multimodal conditional image synthesis from composable, pluggable parts.

>>> import synth
>>> synth.list_parts("conditioning")            # doctest: +SKIP
>>> model = synth.compose({"generator": {"type": "core.simple_generator", "num_classes": 8}})
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import ops
from .composer import ModelSpec, check_spec, compose, load_spec
from .condition import CONDITION_FIELDS, Condition
from .config import RUNTIME_ARGS, PartConfig, PartSpec
from .context import Context
from .errors import (
    CapabilityError,
    ComposeError,
    ConfigError,
    PluginError,
    RegistryError,
    UnknownPartError,
    WeightsNotFoundError,
)
from .hookspecs import hookimpl
from .latents import LATENT_FIELDS, Latents
from .model import SynthesisModel, load
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
    Part,
    Sampler,
    TrainingObjective,
    Updater,
)
from .plugins import PLUGIN_API_VERSION, PluginInfo, SynthPluginWarning, register_plugin
from .registry import (
    Registry,
    build,
    describe,
    get_registry,
    list_parts,
    plugins,
    recipes,
    set_registry,
)
from .weights import read_state_dict, resolve_weights

__all__ = [
    "CONDITION_FIELDS",
    "KINDS",
    "LATENT_FIELDS",
    "PLUGIN_API_VERSION",
    "RUNTIME_ARGS",
    "CapabilityError",
    "ComposeError",
    "Condition",
    "ConditioningBlock",
    "ConfigError",
    "Context",
    "Discriminator",
    "DiscriminatorOutput",
    "Generator",
    "LatentInjector",
    "Latents",
    "Loss",
    "LossConfig",
    "LossInputs",
    "Metric",
    "ModelSpec",
    "Part",
    "PartConfig",
    "PartSpec",
    "PluginError",
    "PluginInfo",
    "Registry",
    "RegistryError",
    "Sampler",
    "SynthPluginWarning",
    "SynthesisModel",
    "SynthesisOutput",
    "TrainingObjective",
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
