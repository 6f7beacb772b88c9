"""``synth list``, ``synth info``, ``synth plugins`` and ``synth recipes``: what is registered."""

from __future__ import annotations

import argparse
import inspect
import json
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from .console import CLIError, out, part_summary, registry, unknown
from .format import format_markdown, format_table, markdown_summary, one_line, summary_line

__all__ = ["add_parsers", "cmd_info", "cmd_list", "cmd_plugins", "cmd_recipes"]

_PART_COLS = ("name", "kind", "plugin", "summary")
_RECIPE_COLS = ("name", "plugin", "description")


# --------------------------------------------------------------------------- list


def _pattern(text: str | None) -> str:
    if not text:
        return "*"
    return text if any(c in text for c in "*?[") else f"*{text}*"


def _catalog(args: argparse.Namespace, pattern: str) -> tuple[list[dict], list[dict] | None]:
    """The parts and (without ``--kind``) the recipes matching ``pattern``, as dicts."""
    reg = registry()
    entries = reg.entries()
    # markdown (README tables) has no terminal width: whole summaries, never cut
    summarize = markdown_summary if args.format == "markdown" else summary_line
    parts = [
        {
            "name": n,
            "kind": entries[n].kind,
            "plugin": entries[n].plugin,
            "summary": part_summary(entries[n], summarize),
        }
        for n in reg.list(args.kind, pattern)
    ]
    if args.kind is not None:
        return parts, None
    recipes = [
        {"name": r.name, "plugin": r.plugin, "description": summarize(r.description)}
        for r in reg.recipes(pattern).values()
    ]
    return parts, recipes


def _print_markdown(parts: list[dict], recipes: list[dict] | None) -> None:
    """Names as code spans; one table for the parts, one for the recipes."""

    def rows(items: list[dict[str, Any]], cols: Sequence[str]) -> list[list[str]]:
        return [[f"`{it['name']}`", *(it[c] for c in cols[1:])] for it in items]

    out(format_markdown(_PART_COLS, rows(parts, _PART_COLS)))
    if recipes:
        out()
        out(format_markdown(("recipe", "plugin", "description"), rows(recipes, _RECIPE_COLS)))


def _print_tables(
    parts: list[dict], recipes: list[dict] | None, kind: str | None, pattern: str
) -> None:
    if parts:
        out(format_table(_PART_COLS, [[p[c] for c in _PART_COLS] for p in parts]))
    else:
        what = f"of kind {kind!r} " if kind else ""
        out(f"no parts {what}match {pattern!r}")
    if recipes is None:
        return
    out()
    if recipes:
        rows = [[r[c] for c in _RECIPE_COLS] for r in recipes]
        out(format_table(("recipe", "plugin", "description"), rows))
    elif pattern == "*":
        out("no recipes registered")
    else:
        out(f"no recipes match {pattern!r}")


def cmd_list(args: argparse.Namespace) -> int:
    from ..parts.base import KINDS

    if args.kind is not None and args.kind not in KINDS:
        raise CLIError(f"unknown kind {args.kind!r}; kinds are {', '.join(sorted(KINDS))}", 2)
    pattern = _pattern(args.pattern)
    parts, recipes = _catalog(args, pattern)
    if args.format == "json":
        data: dict[str, Any] = {"parts": parts}
        if recipes is not None:
            data["recipes"] = recipes
        out(json.dumps(data, indent=2))
    elif args.format == "markdown":
        _print_markdown(parts, recipes)
    else:
        _print_tables(parts, recipes, args.kind, pattern)
    return 0


# --------------------------------------------------------------------------- info


def _is_spec_validator(meta: Any) -> bool:
    return getattr(getattr(meta, "func", None), "__name__", "") == "normalize_spec"


def _type_name(ann: Any, metadata: Sequence[Any] = ()) -> str:
    """A short readable name for a config field's annotation (``part spec`` for slots)."""
    if any(_is_spec_validator(m) for m in metadata):
        return "part spec"
    if typing.get_origin(ann) is typing.Annotated:
        base, *meta = typing.get_args(ann)
        return _type_name(base, meta)
    if isinstance(ann, type) and not typing.get_args(ann):
        return ann.__name__
    text = str(ann)
    for prefix in ("typing.", "collections.abc.", "pathlib."):
        text = text.replace(prefix, "")
    return text


def _value(v: Any) -> str:
    try:
        return json.dumps(v)
    except (TypeError, ValueError):
        return repr(v)


#: Kinds the composer builds at the top level, with nothing offered: their fields are all the
#: user's, even those named like runtime arguments (a generator's ``num_classes``).
_UNHOSTED_KINDS = frozenset({"generator", "sampler", "objective"})


def _default_text(f: Any) -> str:
    if f.is_required():
        return "(required)"
    if f.default_factory is None:
        return _value(f.default)
    try:
        return _value(f.default_factory())
    except TypeError:  # a factory that takes the validated data
        return "(computed)"


def _config_rows(cls: Any, runtime: frozenset[str]) -> tuple[list[str], list[list[str]]]:
    fields = cls.Config.model_fields
    with_doc = any(f.description for f in fields.values())
    headers = ["field", "type", "default", "runtime"] + (["description"] if with_doc else [])
    rows = []
    for name, f in fields.items():
        row = [name, _type_name(f.annotation, f.metadata), _default_text(f)]
        row.append("runtime" if name in runtime else "")
        if with_doc:
            row.append(one_line(f.description))
        rows.append(row)
    return headers, rows


def _yaml(data: Any) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip()


def _plain(data: Any) -> Any:
    """``data`` with tuples as lists, so YAML writes them as plain sequences."""
    return json.loads(json.dumps(data, default=str))


def _print_recipe(recipe: Any, as_json: bool) -> None:
    data = {
        "name": recipe.name,
        "plugin": recipe.plugin,
        "description": recipe.description,
        "spec": recipe.spec,
        "train": recipe.train,
        "demo": recipe.demo,
    }
    if as_json:
        out(json.dumps(data, indent=2, default=str))
        return
    out(f"{recipe.name}  (recipe, plugin {recipe.plugin})")
    if recipe.description:
        out(recipe.description.strip())
    out()
    out("spec:")
    out(_yaml(recipe.spec))
    for key, what in (("train", "trainer settings (synth train)"), ("demo", "synth demo")):
        if data[key]:
            out()
            out(f"{key}:  # {what}")
            out(_yaml(_plain(data[key])))
    out()
    out(f"build it with: synth.compose({recipe.name!r})")


def _print_part_meta(info: Mapping[str, Any]) -> None:
    meta = [("class", info["class"])]
    for key in ("requires", "provides", "needs", "roles", "requires_parts", "produces"):
        if key in info:
            meta.append((key, ", ".join(info[key]) or "(nothing)"))
    if "has_posterior" in info:
        meta.append(("posterior", "yes" if info["has_posterior"] else "no"))
    width = max(len(k) for k, _ in meta) + 1
    for key, val in meta:
        out(f"{(key + ':').ljust(width)} {val}")


def _print_config(cls: Any, info: Mapping[str, Any]) -> None:
    runtime = (
        frozenset(info["runtime_args"]) if info["kind"] not in _UNHOSTED_KINDS else frozenset()
    )
    headers, rows = _config_rows(cls, runtime)
    if rows:
        out("config:")
        out(format_table(headers, rows, indent="  "))
    else:
        out("config: (no fields)")
    if runtime:
        out()
        out(
            f"runtime arguments ({', '.join(sorted(runtime))}) are set by the part that hosts "
            "this one; leave them out of the spec."
        )


def cmd_info(args: argparse.Namespace) -> int:
    from ..errors import RegistryError

    reg = registry()
    name = args.name
    if name not in reg:
        recipes = reg.recipes()
        if name in recipes:
            _print_recipe(recipes[name], args.json)
            return 0
        raise unknown(reg, name)
    try:
        info = reg.describe(name)
    except RegistryError as e:
        raise CLIError(str(e)) from e
    if args.json:
        out(json.dumps(info, indent=2, default=str))
        return 0
    out(f"{name}  ({info['kind']}, plugin {info['plugin']})")
    if info["doc"]:
        out()
        out(inspect.cleandoc(info["doc"]))
    out()
    _print_part_meta(info)
    out()
    _print_config(reg.resolve(name), info)
    return 0


# --------------------------------------------------------------------------- plugins, recipes


def cmd_plugins(args: argparse.Namespace) -> int:
    reg = registry(quiet_plugins=True)
    infos = list(reg.plugin_infos)
    rows = [
        [i.name, i.dist or "-", i.version or "-", i.status, one_line(i.error, 100)] for i in infos
    ]
    out(format_table(("name", "dist", "version", "status", "error"), rows))
    if any(i.status in {"failed", "incompatible"} for i in infos):
        out()
        out(
            "hint: a plugin that failed is skipped and the others work; run with "
            "SYNTH_STRICT_PLUGINS=1 to raise its error with the full traceback."
        )
    return 0


def _generator_type(spec: Mapping[str, Any]) -> str:
    gen = spec.get("generator")
    if isinstance(gen, Mapping):
        return str(gen.get("type", ""))
    return "" if gen is None else str(gen)


def cmd_recipes(args: argparse.Namespace) -> int:
    reg = registry()
    rows = [
        [r.name, r.plugin, _generator_type(r.spec), summary_line(r.description)]
        for r in reg.recipes(_pattern(args.pattern)).values()
    ]
    if not rows:
        out("no recipes registered" if not args.pattern else f"no recipes match {args.pattern!r}")
        return 0
    out(format_table(("recipe", "plugin", "generator", "description"), rows))
    return 0


# --------------------------------------------------------------------------- parsers


def add_parsers(sub: Any) -> None:
    """``list``, ``info``, ``plugins`` and ``recipes`` on the ``synth`` subparsers."""
    s = sub.add_parser("list", help="registered parts (and recipes)")
    s.add_argument(
        "pattern",
        nargs="?",
        metavar="PATTERN",
        help="shell-style wildcard on names ('clvae.*'); without wildcards, a substring",
    )
    s.add_argument("--kind", "-k", help="only parts of this kind (e.g. conditioning, loss)")
    s.add_argument("--format", "-f", choices=("table", "markdown", "json"), default="table")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("info", help="a part's docstring, capabilities and config (or a recipe)")
    s.add_argument("name", metavar="NAME", help="a part or recipe name, e.g. core.hinge")
    s.add_argument("--json", action="store_true", help="print synth.describe(NAME) as JSON")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("plugins", help="installed plugins and whether they loaded")
    s.set_defaults(func=cmd_plugins)

    s = sub.add_parser("recipes", help="registered recipes (named model specs)")
    s.add_argument("pattern", nargs="?", metavar="PATTERN", help="wildcard or substring")
    s.set_defaults(func=cmd_recipes)
