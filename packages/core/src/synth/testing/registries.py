"""Isolated registries for tests: core only, plus the plugins a test names."""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata as md
import types
import warnings
from collections.abc import Iterator
from typing import Any

from ..errors import PluginError
from ..registry import ENTRY_POINT_GROUP, PluginInfo, Registry, discover, set_registry
from ..registry import register_plugin as _register_plugin
from ..registry.discovery import SynthPluginWarning

__all__ = ["TestRegistry", "fresh_registry", "plugin_name", "register_plugin"]


def plugin_name(module: Any) -> str:
    """The namespace a plugin module registers under.

    The module's ``SYNTH_PLUGIN_NAME`` if set; else the name of the installed ``synth.plugins``
    entry point pointing at it; else its top-level package without a ``synth_`` prefix
    (``synth_cimle.plugin`` -> ``cimle``; ``myplugin.parts`` -> ``myplugin``).
    """
    explicit = getattr(module, "SYNTH_PLUGIN_NAME", None)
    if isinstance(explicit, str):
        return explicit
    modname = getattr(module, "__name__", None)
    if not isinstance(modname, str):
        raise ValueError(
            f"cannot tell the plugin name of {module!r}: pass (name, module) or set "
            "SYNTH_PLUGIN_NAME on it"
        )
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        if ep.value.split(":", 1)[0] == modname:
            return ep.name
    top = modname.split(".", 1)[0]
    return top.removeprefix("synth_")


def register_plugin(registry: Registry, module: Any, name: str | None = None) -> PluginInfo:
    """Register a plugin into ``registry`` and raise if it fails (tests want the error).

    ``module`` is a plugin module or object with a ``synth_register`` hookimpl, or its import
    path (``"myplugin.plugin"``); ``name`` defaults to :func:`plugin_name`.
    """
    if isinstance(module, str):
        module = importlib.import_module(module)
    name = name or plugin_name(module)
    with warnings.catch_warnings():  # the failure is raised below, not only warned about
        warnings.simplefilter("ignore", SynthPluginWarning)
        info = _register_plugin(registry, module, name)
    if info.status != "ok":
        raise PluginError(
            f"plugin {name!r} ({info.module}) did not register: {info.status}: {info.error}"
        )
    return info


class TestRegistry(Registry):
    """A :class:`synth.Registry` with test helpers (what the ``synth_registry`` fixture gives)."""

    __test__ = False  # not a pytest test class

    def register_plugin(self, module: Any, name: str | None = None) -> PluginInfo:
        """Register a plugin module (or object, or import path) here; raise if it fails."""
        return register_plugin(self, module, name)

    def add_part(self, name: str, cls: type, kind: str | None = None) -> None:
        """Register one part class directly, e.g. ``add_part("t.block", MyBlock)``; the kind
        defaults to the class's ``kind``."""
        kind = kind or getattr(cls, "kind", "")
        with self.registering(name.split(".", 1)[0]):
            self.add(name, kind=kind, target=cls)

    def check(self, name: str, **kwargs: Any):
        """:func:`synth.testing.check_part` against this registry."""
        from .conformance import check_part

        return check_part(name, registry=self, **kwargs)


def _as_pair(item: Any) -> tuple[str | None, Any]:
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        return item[0], item[1]
    return None, item


@contextlib.contextmanager
def fresh_registry(*plugins: Any) -> Iterator[TestRegistry]:
    """Swap the process-wide registry for a new one with only core (no entry-point discovery).

    ``plugins`` are plugin modules/objects, import paths, or ``(name, module)`` pairs, each
    registered with :func:`register_plugin` (a plugin that fails to register raises). The
    previous registry is restored on exit, also when the block raises::

        with synth.testing.fresh_registry(my_plugin) as reg:
            synth.build("myplugin.block", channels=8)   # sees core + my_plugin only
    """
    reg = TestRegistry()
    discover(reg, entry_points=False)
    for item in plugins:
        name, module = _as_pair(item)
        if isinstance(module, types.ModuleType | str) or hasattr(module, "synth_register"):
            register_plugin(reg, module, name)
        else:
            raise TypeError(
                f"fresh_registry: {module!r} is not a plugin (a module or object with a "
                "synth_register hookimpl, an import path, or a (name, module) pair)"
            )
    old = set_registry(reg)
    try:
        yield reg
    finally:
        set_registry(old)
