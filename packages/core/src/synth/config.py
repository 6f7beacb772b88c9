"""Part configs and part specs.

A part class declares ``Config(synth.PartConfig)``: a pydantic model that forbids unknown keys.
A *part spec* is what a user writes to name and configure a part: ``{"type": "core.hinge",
"weight": 1.0}`` or just ``"core.hinge"``.

Runtime arguments (``channels``, ``num_classes``, ...) are values a host part offers to the parts
in its slots; a part receives only those its Config declares, and a user may not set one that
its host offers (see :func:`synth.build`).
"""

from __future__ import annotations

import difflib
import typing
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from .errors import ConfigError

__all__ = [
    "RUNTIME_ARGS",
    "PartConfig",
    "PartSpec",
    "format_validation_error",
    "normalize_spec",
    "slot_fields",
    "validation_problems",
]

#: Values a host offers to the parts it builds (DESIGN §3 "Slots"). ``z_dim``, ``stage_channels``
#: and ``stage_scales`` extend the list so a generator can size its injector; ``pyramid_levels``
#: (the levels of a generator's RGB pyramid) sizes per-scale discriminators and losses.
RUNTIME_ARGS: frozenset[str] = frozenset(
    {
        "channels",
        "num_classes",
        "stage",
        "num_stages",
        "style_dim",
        "code_dim",
        "z_dim",
        "stage_channels",
        "stage_scales",
        "pyramid_levels",
    }
)


class PartConfig(BaseModel):
    """Base of every part's ``Config``: validated, immutable, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


def normalize_spec(value: Any) -> dict[str, Any]:
    """Turn ``"name"`` or ``{"type": name, ...}`` into a fresh dict with a ``type`` key."""
    if isinstance(value, str):
        return {"type": value}
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, dict):
        if "type" not in value or not isinstance(value["type"], str):
            raise ValueError(
                f"a part spec needs a 'type' naming a registered part, got keys {sorted(value)}; "
                "write e.g. {'type': 'core.hinge', ...}"
            )
        return dict(value)
    raise ValueError(
        f"a part spec is a name or a dict with 'type', got {type(value).__name__}: {value!r}"
    )


class _SlotMarker:
    """Marks a config field as a slot, so the composer can find slots without building."""


_SLOT = _SlotMarker()

#: A nested part spec inside a config (a *slot*), e.g. a generator's ``norm``.
PartSpec = Annotated[dict[str, Any], BeforeValidator(normalize_spec), _SLOT]


def _is_slot(annotation: Any) -> bool:
    if typing.get_origin(annotation) is Annotated:
        return any(m is _SLOT for m in typing.get_args(annotation)[1:])
    return any(_is_slot(a) for a in typing.get_args(annotation))


def slot_fields(config_cls: type[BaseModel]) -> list[str]:
    """Names of the fields of ``config_cls`` typed ``PartSpec`` (or ``PartSpec | None``)."""
    return [
        name
        for name, f in config_cls.model_fields.items()
        if _SLOT in f.metadata or _is_slot(f.annotation)
    ]


def _unwrap(annotation: Any) -> Any:
    """The model class an annotation holds: ``Model``, ``Model | None``, or ``(Model,)`` for
    ``dict[str, Model]`` / ``list[Model]`` (a container whose key or index comes next)."""
    origin = typing.get_origin(annotation)
    if origin in (dict, list, tuple) or origin is typing.Union or str(origin) == "types.UnionType":
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if origin is dict and len(args) == 2:
            return (_unwrap(args[1]),)
        if origin in (list, tuple) and args:
            return (_unwrap(args[0]),)
        if len(args) == 1:
            return _unwrap(args[0])
        return None
    if origin is Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    return annotation


def _fields_at(config_cls: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names allowed where ``loc`` points (``("train", "batchsize")`` -> TrainerConfig's
    fields), walking containers: a dict key or list index after a container field is skipped."""
    cls: Any = config_cls
    parts = list(loc[:-1])
    while parts:
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            return []
        field = cls.model_fields.get(str(parts.pop(0)))
        if field is None:
            return []
        cls = _unwrap(field.annotation)
        if isinstance(cls, tuple):
            cls = cls[0]
            if parts:
                parts.pop(0)  # the dict key or list index
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return list(cls.model_fields)
    return []


def validation_problems(errors: list[Any], config_cls: type[BaseModel]) -> list[str]:
    """One line per pydantic error (``ValidationError.errors()``), naming the field's full
    path, the value and the fix; an unknown key gets the close matches among the fields
    allowed at its own nesting level (``train.batchsize`` -> did you mean ``'batch_size'``)."""
    lines = []
    for e in errors:
        loc = ".".join(str(p) for p in e["loc"]) or "(root)"
        if e["type"] == "extra_forbidden":
            fields = _fields_at(config_cls, tuple(e["loc"]))
            close = difflib.get_close_matches(str(e["loc"][-1]), fields, n=3)
            hint = f" did you mean {', '.join(map(repr, close))}?" if close else ""
            lines.append(
                f"unknown field {loc!r} = {e.get('input')!r};{hint} "
                f"allowed fields: {', '.join(fields) or '(none)'}"
            )
        elif e["type"] == "missing":
            lines.append(f"field {loc!r} is required; set it in the spec")
        else:
            lines.append(f"field {loc!r} = {e.get('input')!r}: {e['msg']}")
    return lines


def format_validation_error(
    err: ValidationError, owner: str, config_cls: type[BaseModel]
) -> ConfigError:
    """Rewrite pydantic's errors as one :class:`ConfigError` listing every problem at once
    (see :func:`validation_problems`)."""
    lines = [f"invalid config for {owner}:"]
    lines += [f"  - {line}" for line in validation_problems(err.errors(), config_cls)]
    return ConfigError("\n".join(lines))
