"""``synth compose SPEC [--check]``: check (or build) a model spec and list its parts."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from .console import CLIError, out, registry
from .format import format_table

__all__ = ["add_parser", "cmd_compose"]


def _spec_parts(spec: Any) -> list[tuple[str, str]]:
    """``(where, part name)`` for every part of a ModelSpec, slots included."""
    found: list[tuple[str, str]] = []

    def walk(where: str, part: Mapping[str, Any]) -> None:
        found.append((where, part["type"]))
        for key, sub in part.items():
            if key != "type" and isinstance(sub, Mapping) and isinstance(sub.get("type"), str):
                walk(f"{where}.{key}", sub)

    for section in ("generator", "injector", "discriminator"):
        part = getattr(spec, section)
        if part is not None:
            walk(section, part)
    for key, part in spec.losses.items():
        walk(f"losses.{key}", part)
    for section in ("objective", "sampler"):
        part = getattr(spec, section)
        if part is not None:
            walk(section, part)
    return found


def _param_count(model: Any, where: str) -> str:
    """Parameters of the part at ``where`` ("generator", "losses.gan"); blank for slots."""
    section, _, rest = where.partition(".")
    if section == "losses":
        obj = model.losses[rest]
    elif rest:  # a slot: its blocks live inside the host, counted there
        return ""
    else:
        obj = getattr(model, section, None)
    params = getattr(obj, "parameters", None)
    return f"{sum(p.numel() for p in params()):,}" if callable(params) else "-"


def cmd_compose(args: argparse.Namespace) -> int:
    import yaml

    from ..compose import check_spec, compose, load_spec
    from ..errors import ComposeError, ConfigError, RegistryError

    reg = registry()
    try:
        spec = load_spec(args.spec, reg)
        checked = check_spec(spec, reg)
        model = None if args.check else compose(spec, registry=reg)
    except (ComposeError, ConfigError, RegistryError, OSError, ValueError, yaml.YAMLError) as e:
        raise CLIError(f"{args.spec}: {e}" if isinstance(e, yaml.YAMLError) else str(e)) from e
    entries = reg.entries()
    rows = []
    for where, name in _spec_parts(spec):
        row = [where, name, entries[name].kind if name in entries else "?"]
        if model is not None:
            row.append(_param_count(model, where))
        rows.append(row)
    headers = ["part", "type", "kind"] + ([] if model is None else ["parameters"])
    out("ok" if args.check else "ok: composed")
    out(format_table(headers, rows, indent="  "))
    fields = sorted(checked["data_fields"])
    out(f"  condition fields read: {', '.join(fields) if fields else '(none)'}")
    return 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser("compose", help="check (or build) a model spec")
    s.add_argument("spec", metavar="SPEC", help="a .yaml/.json/.toml spec file or a recipe name")
    s.add_argument("--check", action="store_true", help="only check the graph; allocate no tensors")
    s.set_defaults(func=cmd_compose)
