"""The part registry: a thin dict from ``"<plugin>.<part>"`` to a lazily imported class.

Plugins fill it through the ``synth_register`` hook (see :mod:`synth.registry.discovery`); ``build``
constructs a part from a spec, offering runtime arguments to the ones that declare them.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import difflib
import fnmatch
import importlib
import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import RUNTIME_ARGS, normalize_spec
from ..errors import ConfigError, RegistryError, UnknownPartError
from ..parts.base import DEPRECATED_KINDS, KINDS, Part

__all__ = [
    "KNOWN_PLUGINS",
    "Entry",
    "PluginInfo",
    "Recipe",
    "Registry",
    "active_registry",
    "using_registry",
]

#: Plugins this project publishes: a missing name in their namespace gets a pip line.
KNOWN_PLUGINS: dict[str, str] = {
    "pix2pixhd": "synth-plugin-pix2pixhd",
    "clvae": "synth-plugin-clvae",
    "cimle": "synth-plugin-cimle",
    "nested_scale": "synth-plugin-nested-scale",
    "collage": "synth-plugin-collage",
}

_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[a-z0-9_][a-z0-9_.]*$")


@dataclass(frozen=True)
class PluginInfo:
    """What ``synth.plugins()`` reports for each plugin."""

    name: str
    dist: str | None
    version: str | None
    status: str  # "ok" | "failed" | "incompatible" | "disabled"
    error: str | None = None
    module: str | None = None


@dataclass
class Entry:
    """A registered part: where it lives and who registered it."""

    name: str
    kind: str
    target: str | type
    plugin: str
    _cls: type[Part] | None = field(default=None, repr=False)

    def load(self) -> type[Part]:
        """Import the target on first use and check it is a part of the declared kind."""
        if self._cls is None:
            cls = self.target
            if isinstance(cls, str):
                module, _, attr = cls.partition(":")
                if not attr:
                    raise RegistryError(
                        f"{self.name}: target {cls!r} must be 'module.path:ClassName'"
                    )
                try:
                    cls = getattr(importlib.import_module(module), attr)
                except (ImportError, AttributeError) as e:
                    raise RegistryError(
                        f"{self.name} (plugin {self.plugin!r}) could not be imported from "
                        f"{self.target!r}: {type(e).__name__}: {e}"
                    ) from e
            base = KINDS[self.kind]
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise RegistryError(
                    f"{self.name} is registered as kind {self.kind!r} but {cls!r} is not a "
                    f"subclass of synth.{base.__name__}"
                )
            self._cls = cls
        return self._cls


@dataclass
class Recipe:
    """A named full model spec, with how to train it.

    ``train``: the paper's trainer settings, as ``synth.train.TrainerConfig`` fields
    (``optimizer`` / ``optimizers`` per network with ``lr`` and ``betas``, ``steps``,
    ``decay_start``, ``batch_size``, ``d_steps``, ``freeze``, ...), the defaults of a
    ``synth train`` run whose model is this recipe.

    ``demo``: how ``synth demo`` trains it at CPU size in minutes (validated by
    :mod:`synth.demo`, whose errors name the recipe and the bad key)::

        {"preference": 10,          # the default demo: highest among installed recipes
         "caps": {"ngf": 16},       # upper bounds on a field of any part (slots included)
         "size_fields": {"<field>": 64},  # fields set to the demo's image side (a floor)
         "set": {"generator.num_stages": 3},     # dotted spec overrides
         "unset": ["discriminator.n_layers"],    # dotted spec keys removed
         "train": {"optimizer": {"lr": 1e-3}}}   # TrainerConfig fields for the demo run

    A recipe without ``demo`` settings runs with ``synth demo --recipe NAME`` at its own sizes
    and is never the default demo.
    """

    name: str
    spec: dict[str, Any]
    plugin: str
    description: str = ""
    train: dict[str, Any] = field(default_factory=dict)
    demo: dict[str, Any] = field(default_factory=dict)


class Registry:
    """Name -> Entry, plus recipes. Names are ``"<plugin>.<part>"``; a name is registered once."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._recipes: dict[str, Recipe] = {}
        self._plugin: str | None = None  # the plugin whose hook is running
        self.plugin_infos: list[PluginInfo] = []  # filled by discovery
        # pluggy.PluginManager holding the plugins registered here, for hooks other than
        # synth_register (see synth.registry.discovery.hooks); set by discovery
        self.plugin_manager: Any = None

    # ------------------------------------------------------------------ registration
    @contextlib.contextmanager
    def registering(self, plugin: str) -> Iterator[None]:
        """Attribute additions to ``plugin``; roll them all back if the block raises."""
        before_e, before_r = set(self._entries), set(self._recipes)
        self._plugin = plugin
        try:
            yield
        except BaseException:
            for n in set(self._entries) - before_e:
                del self._entries[n]
            for n in set(self._recipes) - before_r:
                del self._recipes[n]
            raise
        finally:
            self._plugin = None

    def _check_name(self, name: str, what: str) -> str:
        if not _NAME.match(name):
            raise RegistryError(
                f"{what} name {name!r} must look like '<plugin>.<part>' in lower case "
                "(letters, digits, underscores), e.g. 'myplugin.my_block'"
            )
        plugin = self._plugin or name.split(".", 1)[0]
        if self._plugin is not None and name.split(".", 1)[0] != self._plugin:
            raise RegistryError(
                f"plugin {self._plugin!r} tried to register {name!r}: a plugin registers names "
                f"in its own namespace, e.g. '{self._plugin}.{name.split('.', 1)[-1]}'"
            )
        return plugin

    def add(self, name: str, *, kind: str, target: str | type) -> None:
        """Register a part. ``target`` is ``"module:Class"`` (imported on first use) or a class."""
        plugin = self._check_name(name, "part")
        if kind in DEPRECATED_KINDS:
            warnings.warn(
                f"{name}: kind {kind!r} is deprecated; register it as kind "
                f"{DEPRECATED_KINDS[kind]!r}",
                DeprecationWarning,
                stacklevel=2,
            )
            kind = DEPRECATED_KINDS[kind]
        if kind not in KINDS:
            raise RegistryError(
                f"{name}: unknown kind {kind!r}; kinds are {', '.join(sorted(KINDS))}"
            )
        if name in self._entries:
            old = self._entries[name]
            raise RegistryError(
                f"{name!r} is registered twice: first by plugin {old.plugin!r} "
                f"(target {old.target!r}), again by plugin {plugin!r} (target {target!r})"
            )
        self._entries[name] = Entry(name, kind, target, plugin)

    def add_recipe(
        self,
        name: str,
        spec: Mapping[str, Any],
        *,
        description: str = "",
        train: Mapping[str, Any] | None = None,
        demo: Mapping[str, Any] | None = None,
    ) -> None:
        """Register a named model spec (validated when composed), with the paper's trainer
        settings (``train``: ``synth.train.TrainerConfig`` fields) and its CPU demo settings
        (``demo``: keys ``preference``, ``caps``, ``size_fields``, ``set``, ``unset``,
        ``train``); see :class:`Recipe` and :mod:`synth.demo`."""
        plugin = self._check_name(name, "recipe")
        if name in self._recipes:
            old = self._recipes[name]
            raise RegistryError(
                f"recipe {name!r} is registered twice: by plugin {old.plugin!r} and by "
                f"plugin {plugin!r}"
            )
        self._recipes[name] = Recipe(
            name,
            copy.deepcopy(dict(spec)),
            plugin,
            description,
            copy.deepcopy(dict(train or {})),
            copy.deepcopy(dict(demo or {})),
        )

    # ------------------------------------------------------------------ lookup
    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def _unknown(self, name: str, what: str, known: list[str]) -> UnknownPartError:
        msg = f"unknown {what} {name!r}."
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.75)
        if close:
            msg += f" Did you mean {', '.join(map(repr, close))}?"
        prefix = name.split(".", 1)[0]
        loaded = {e.plugin for e in self._entries.values()}
        if prefix in KNOWN_PLUGINS and prefix not in loaded:
            msg += (
                f" The {prefix!r} parts come with a plugin that is not installed: "
                f"pip install {KNOWN_PLUGINS[prefix]}"
            )
        failed = [i for i in self.plugin_infos if i.name == prefix and i.status != "ok"]
        if failed:
            msg += f" Plugin {prefix!r} is installed but {failed[0].status}: {failed[0].error}"
        if not close and prefix not in KNOWN_PLUGINS:
            msg += " `synth list` shows every registered name."
        return UnknownPartError(msg)

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise self._unknown(name, "part", list(self._entries)) from None

    def resolve(self, name: str) -> type[Part]:
        """The class registered under ``name`` (imported now)."""
        return self.get(name).load()

    def recipe(self, name: str) -> Recipe:
        try:
            return self._recipes[name]
        except KeyError:
            raise self._unknown(name, "recipe", list(self._recipes)) from None

    def list(self, kind: str | None = None, pattern: str = "*") -> list[str]:
        """Sorted names, optionally of one kind, matching a shell-style wildcard."""
        if kind is not None and kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; kinds are {', '.join(sorted(KINDS))}")
        return sorted(
            n
            for n, e in self._entries.items()
            if (kind is None or e.kind == kind) and fnmatch.fnmatchcase(n, pattern)
        )

    def recipes(self, pattern: str = "*") -> dict[str, Recipe]:
        return {n: r for n, r in sorted(self._recipes.items()) if fnmatch.fnmatchcase(n, pattern)}

    def entries(self) -> dict[str, Entry]:
        return dict(self._entries)

    # ------------------------------------------------------------------ building
    def build(self, spec_or_name: Mapping[str, Any] | str, /, **params: Any) -> Part:
        """Build a part from ``"name"`` or ``{"type": name, **config}``.

        ``params`` are merged into the spec. Runtime arguments (``channels``, ``num_classes``,
        ``stage``, ...; see ``synth.RUNTIME_ARGS``) in ``params`` are *offered*: passed when the
        part's Config declares them and dropped otherwise. A runtime argument that is offered
        and also set in the spec is an error: the host decides it, not the user.
        """
        with using_registry(self):
            return self._build(normalize_spec(spec_or_name), params)

    def _build(self, spec: dict[str, Any], params: dict[str, Any]) -> Part:
        name = spec.pop("type")
        cls = self.resolve(name)
        declared = set(cls.Config.model_fields)
        offered = {k: v for k, v in params.items() if k in RUNTIME_ARGS}
        user = {k: v for k, v in params.items() if k not in RUNTIME_ARGS}
        clash = sorted(k for k in offered if k in spec and k in declared)
        if clash:
            raise ConfigError(
                f"{name}: {', '.join(repr(k) for k in clash)} "
                f"{'is a runtime argument' if len(clash) == 1 else 'are runtime arguments'} set "
                f"by the part that hosts it (offered {', '.join(f'{k}={offered[k]!r}' for k in clash)}); "
                f"remove {'it' if len(clash) == 1 else 'them'} from the spec"
            )
        config_data = {**spec, **user, **{k: v for k, v in offered.items() if k in declared}}
        config = cls.coerce_config(config_data)
        try:
            part = cls(config)
        except (ConfigError, RegistryError):
            raise
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{name}: could not be built from {dict(config)}: {e}") from e
        part.name = name
        return part

    def describe(self, name: str) -> dict[str, Any]:
        """Docstring, config JSON schema, capabilities and owner of a part."""
        entry = self.get(name)
        cls = entry.load()
        schema = cls.Config.model_json_schema()
        info: dict[str, Any] = {
            "name": name,
            "kind": entry.kind,
            "plugin": entry.plugin,
            "class": f"{cls.__module__}:{cls.__qualname__}",
            "doc": (cls.__doc__ or "").strip(),
            "config_schema": schema,
            "runtime_args": sorted(RUNTIME_ARGS & set(cls.Config.model_fields)),
        }
        for attr in ("requires", "provides", "needs", "roles", "requires_parts"):
            val = getattr(cls, attr, None)
            if isinstance(val, frozenset) and (val or attr == "requires"):
                info[attr] = sorted(val)
        if hasattr(cls, "produces"):
            info["produces"] = sorted(cls.produces())
        if hasattr(cls, "has_posterior"):
            info["has_posterior"] = bool(cls.has_posterior)
        return info


# --------------------------------------------------------------------------- active registry

# The registry a build or compose is running in: parts that build their slots (or samplers that
# build a distance) resolve names there, not in the process-wide registry.
_active: contextvars.ContextVar[Registry | None] = contextvars.ContextVar(
    "synth_active_registry", default=None
)


def active_registry() -> Registry | None:
    """The registry a build or compose is running in, if any."""
    return _active.get()


@contextlib.contextmanager
def using_registry(registry: Registry) -> Iterator[Registry]:
    """Make ``registry`` the one :func:`get_registry` returns inside the block."""
    token = _active.set(registry)
    try:
        yield registry
    finally:
        _active.reset(token)
