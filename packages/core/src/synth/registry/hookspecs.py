"""Hook specifications of synth's plugin system (pluggy project name ``"synth"``)."""

from __future__ import annotations

import pluggy

from .registry import Registry

__all__ = ["hookimpl", "hookspec", "synth_register"]

hookspec = pluggy.HookspecMarker("synth")
#: Decorate a plugin module's ``synth_register`` with this.
hookimpl = pluggy.HookimplMarker("synth")


@hookspec
def synth_register(registry: Registry) -> None:
    """Register the plugin's parts and recipes.

    ``registry.add("<plugin>.<part>", kind=..., target="module:Class")`` for each part (the
    target is imported on first use) and ``registry.add_recipe("<plugin>.<name>", spec)`` for
    each named model spec.
    """
