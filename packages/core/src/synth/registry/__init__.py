"""The part registry and plugin discovery (DESIGN §4).

Inner layers, each importing only those above it in this list: ``registry`` (names to lazily
imported classes, recipes, building) → ``hookspecs`` (``synth_register``,
``synth_demo_pictures``) → ``core`` (core's parts registered as
plugin ``core``) → ``discovery`` (entry points, isolation) → ``default`` (the process-wide
registry and the module-level functions).
"""

from .default import build, describe, get_registry, list_parts, plugins, recipes, set_registry
from .discovery import (
    ENTRY_POINT_GROUP,
    PLUGIN_API_VERSION,
    SynthPluginWarning,
    api_compatible,
    discover,
    hooks,
    plugin_manager,
    register_plugin,
)
from .hookspecs import DemoPicture, hookimpl, hookspec
from .registry import (
    KNOWN_PLUGINS,
    Entry,
    PluginInfo,
    Recipe,
    Registry,
    active_registry,
    using_registry,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "KNOWN_PLUGINS",
    "PLUGIN_API_VERSION",
    "DemoPicture",
    "Entry",
    "PluginInfo",
    "Recipe",
    "Registry",
    "SynthPluginWarning",
    "active_registry",
    "api_compatible",
    "build",
    "describe",
    "discover",
    "get_registry",
    "hookimpl",
    "hooks",
    "hookspec",
    "list_parts",
    "plugin_manager",
    "plugins",
    "recipes",
    "register_plugin",
    "set_registry",
    "using_registry",
]
