"""Plugin discovery: entry points in group ``synth.plugins``, each loaded in isolation.

A plugin module implements the ``synth_register`` hook (:mod:`synth.registry.hookspecs`). Each plugin is
imported, version-checked and registered inside its own try/except: a broken one is recorded
(``synth.plugins()``) and skipped with one warning, and whatever it registered before failing
is rolled back. ``SYNTH_STRICT_PLUGINS=1`` raises instead; ``SYNTH_DISABLE_PLUGINS=a,b`` skips
the named plugins.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import re
import types
import warnings

import pluggy

from ..errors import PluginError
from ..version import __version__
from . import core as core_plugin
from . import hookspecs
from .registry import PluginInfo, Registry

__all__ = [
    "ENTRY_POINT_GROUP",
    "PLUGIN_API_VERSION",
    "PluginInfo",
    "SynthPluginWarning",
    "api_compatible",
    "discover",
    "hooks",
    "plugin_manager",
    "register_plugin",
]

#: Version of the plugin API; a plugin may require a range with ``SYNTH_API = ">=1,<2"``.
PLUGIN_API_VERSION = 1
ENTRY_POINT_GROUP = "synth.plugins"


class SynthPluginWarning(UserWarning):
    """A plugin was skipped (failed to import, failed to register, or incompatible)."""


_CLAUSE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(\d+)\s*$")


def api_compatible(spec: str, version: int = PLUGIN_API_VERSION) -> bool:
    """Whether ``version`` satisfies a range like ``">=1,<2"`` (integer versions)."""
    ops = {
        ">=": int.__ge__,
        "<=": int.__le__,
        "==": int.__eq__,
        "!=": int.__ne__,
        ">": int.__gt__,
        "<": int.__lt__,
    }
    for clause in spec.split(","):
        m = _CLAUSE.match(clause)
        if not m:
            raise ValueError(
                f"SYNTH_API = {spec!r}: clause {clause!r} is not like '>=1' (integer versions)"
            )
        if not ops[m.group(1)](version, int(m.group(2))):
            return False
    return True


def _env_set(name: str) -> set[str]:
    return {s.strip() for s in os.environ.get(name, "").split(",") if s.strip()}


def _strict() -> bool:
    return os.environ.get("SYNTH_STRICT_PLUGINS", "").lower() in {"1", "true", "yes"}


def _record(registry: Registry, info: PluginInfo, exc: BaseException | None = None) -> PluginInfo:
    registry.plugin_infos.append(info)
    if info.status in {"failed", "incompatible"}:
        msg = (
            f"synth plugin {info.name!r} ({info.dist or 'no dist'}) was skipped: {info.error}. "
            "Its parts are unavailable; the other plugins work. "
            "Set SYNTH_STRICT_PLUGINS=1 to raise instead."
        )
        if _strict():
            raise PluginError(msg) from exc
        warnings.warn(msg, SynthPluginWarning, stacklevel=3)
    return info


def plugin_manager(registry: Registry) -> pluggy.PluginManager:
    """The pluggy manager of ``registry``'s plugins (made with synth's hookspecs on first use).

    Plugins that registered successfully stay in it, so hooks other than ``synth_register``
    (:func:`~synth.registry.hookspecs.synth_demo_pictures`, ...) reach exactly the plugins
    whose parts the registry holds.
    """
    if registry.plugin_manager is None:
        pm = pluggy.PluginManager("synth")
        pm.add_hookspecs(hookspecs)
        registry.plugin_manager = pm
    return registry.plugin_manager


def hooks(registry: Registry) -> pluggy.HookRelay:
    """``hooks(reg).synth_demo_pictures(...)`` calls every plugin of ``reg`` implementing it."""
    return plugin_manager(registry).hook


def register_plugin(
    registry: Registry,
    module: types.ModuleType | object,
    name: str,
    *,
    dist: str | None = None,
    version: str | None = None,
    pm: pluggy.PluginManager | None = None,
) -> PluginInfo:
    """Register one plugin object (a module with a ``synth_register`` hookimpl) in isolation."""
    modname = getattr(module, "__name__", type(module).__name__)
    api = getattr(module, "SYNTH_API", None)
    if api is not None:
        try:
            ok = api_compatible(str(api))
        except ValueError as e:
            ok, api = False, f"{api} ({e})"
        if not ok:
            return _record(
                registry,
                PluginInfo(
                    name,
                    dist,
                    version,
                    "incompatible",
                    f"it needs plugin API {api} but synth-core provides API "
                    f"{PLUGIN_API_VERSION}; install a version of {dist or name} built for API "
                    f"{PLUGIN_API_VERSION}, or a synth-core that fits {api}",
                    modname,
                ),
            )
    if pm is None:
        pm = plugin_manager(registry)
    try:
        with registry.registering(name):
            pm.register(module, name=name)
            others = [p for p in pm.get_plugins() if p is not module]
            pm.subset_hook_caller("synth_register", remove_plugins=others)(registry=registry)
    except Exception as e:
        if pm.is_registered(module):
            pm.unregister(module)
        return _record(
            registry,
            PluginInfo(name, dist, version, "failed", f"{type(e).__name__}: {e}", modname),
            e,
        )
    return _record(registry, PluginInfo(name, dist, version, "ok", None, modname))


def discover(registry: Registry, *, entry_points: bool = True) -> list[PluginInfo]:
    """Register core, then every installed plugin of group ``synth.plugins``."""
    pm = plugin_manager(registry)
    register_plugin(registry, core_plugin, "core", dist="synth-core", version=__version__, pm=pm)
    if not entry_points:
        return list(registry.plugin_infos)
    disabled = _env_set("SYNTH_DISABLE_PLUGINS")
    for ep in sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name == "core" and ep.value == core_plugin.__name__:
            continue
        dist = getattr(ep, "dist", None)
        dname, dver = (dist.metadata["Name"], dist.version) if dist is not None else (None, None)
        if ep.name in disabled:
            _record(registry, PluginInfo(ep.name, dname, dver, "disabled", None, ep.value))
            continue
        if any(i.name == ep.name and i.status == "ok" for i in registry.plugin_infos):
            _record(
                registry,
                PluginInfo(
                    ep.name,
                    dname,
                    dver,
                    "failed",
                    f"another installed plugin is already named {ep.name!r}; uninstall one",
                    ep.value,
                ),
            )
            continue
        try:
            module = importlib.import_module(ep.value) if ":" not in ep.value else ep.load()
        except Exception as e:
            _record(
                registry,
                PluginInfo(
                    ep.name,
                    dname,
                    dver,
                    "failed",
                    f"import of {ep.value!r} raised {type(e).__name__}: {e}",
                    ep.value,
                ),
                e,
            )
            continue
        register_plugin(registry, module, ep.name, dist=dname, version=dver, pm=pm)
    return list(registry.plugin_infos)
