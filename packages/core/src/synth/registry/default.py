"""The process-wide registry, filled from installed plugins on first use, and the module-level
functions over it (``synth.build``, ``synth.list_parts``, ...).

Importing this module installs :func:`build` as the builder parts use for their slots
(:func:`synth.parts.base.build_part`): parts sit below the registry and never import it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from ..parts.base import KINDS, Part, install_builder
from .discovery import discover
from .registry import PluginInfo, Recipe, Registry, active_registry

__all__ = [
    "build",
    "describe",
    "get_registry",
    "list_parts",
    "plugins",
    "recipes",
    "set_registry",
]

_default: Registry | None = None


def get_registry() -> Registry:
    """The active registry (inside a build or compose), else the process-wide one, filled from
    installed plugins on first use."""
    active = active_registry()
    if active is not None:
        return active
    global _default
    if _default is None:
        reg = Registry()
        discover(reg)
        _default = reg
    return _default


def set_registry(registry: Registry | None) -> Registry | None:
    """Swap the process-wide registry (``None`` rediscovers on next use); returns the old one."""
    global _default
    old, _default = _default, registry
    return old


def build(spec_or_name: Mapping[str, Any] | str, /, **params: Any) -> Part:
    """Build a part from the default registry; see :meth:`Registry.build`."""
    return get_registry().build(spec_or_name, **params)


def list_parts(pattern: str = "*", *, kind: str | None = None) -> list[str]:
    """Registered part names matching a wildcard (``"clvae.*"``), optionally of one kind —
    the pattern first, as timm's ``list_models``; ``kind`` is keyword-only
    (``list_parts("cimle.*", kind="loss")``).

    A kind name given as the pattern (``list_parts("conditioning")``, the order of earlier
    releases) still lists that kind, with a DeprecationWarning.
    """
    if kind is None and pattern in KINDS:
        warnings.warn(
            f"list_parts({pattern!r}) reads a kind as the pattern; write "
            f"list_parts(kind={pattern!r})",
            DeprecationWarning,
            stacklevel=2,
        )
        pattern, kind = "*", pattern
    return get_registry().list(kind, pattern)


def describe(name: str) -> dict[str, Any]:
    """Docstring, config JSON schema, runtime arguments and capabilities of a part."""
    return get_registry().describe(name)


def recipes(pattern: str = "*") -> dict[str, Recipe]:
    """Registered recipes (named model specs)."""
    return get_registry().recipes(pattern)


def plugins() -> list[PluginInfo]:
    """One :class:`synth.PluginInfo` per plugin: name, dist, version, status, error."""
    return list(get_registry().plugin_infos)


install_builder(build)
