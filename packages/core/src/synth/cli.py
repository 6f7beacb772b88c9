"""The ``synth`` command: inspect the registry, plugins and recipes, and check model specs.

Commands::

    synth list [PATTERN] [--kind K] [--format table|markdown|json]
    synth info NAME [--json]
    synth plugins
    synth recipes
    synth compose SPEC [--check]
    synth demo

Errors go to stderr as ``synth: error: ...``; the exit code is 1 for a failed command and 2
for a usage error (argparse's convention).
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
import typing
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["main"]


class CLIError(Exception):
    """An error to print as ``synth: error: <message>`` and exit with ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------- output helpers


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], indent: str = "") -> str:
    """Columns aligned with spaces, a dashed rule under the header, no trailing blanks."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for j, row in enumerate(cells):
        lines.append(indent + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if j == 0:
            lines.append(indent + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_markdown(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table (``|`` in cells escaped)."""

    def cell(c: Any) -> str:
        return ("" if c is None else str(c)).replace("|", "\\|")

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def one_line(text: str | None, limit: int = 160) -> str:
    """The first non-empty line of ``text``, cut to ``limit`` characters."""
    line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."


def summary_line(doc: str | None, limit: int = 120) -> str:
    """A docstring's one-line summary: its first paragraph joined into one line; when that is
    longer than ``limit``, its first sentence, cut to ``limit`` characters if still too long."""
    paragraph = []
    for ln in (doc or "").strip().splitlines():
        if not ln.strip():
            break
        paragraph.append(ln.strip())
    text = " ".join(paragraph)
    if len(text) > limit:
        m = re.match(r"(.+?[.!?])(?=\s+[A-Z`(\"]|$)", text)
        if m:
            text = m.group(1)
    return one_line(text, limit)


def _out(text: str = "") -> None:
    print(text)


def _err(text: str) -> None:
    print(f"synth: {text}", file=sys.stderr)


# --------------------------------------------------------------------------- registry access


def _registry(*, quiet_plugins: bool = False):
    """The process-wide registry; plugin warnings printed as ``synth: warning: ...`` lines."""
    from .plugins import SynthPluginWarning
    from .registry import get_registry

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SynthPluginWarning)
        reg = get_registry()
    for w in caught:
        if issubclass(w.category, SynthPluginWarning):
            if not quiet_plugins:
                _err(f"warning: {w.message}")
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return reg


def _summary(entry) -> str:
    """The part's one-line summary (see :func:`summary_line`), or why its class could not be
    imported."""
    try:
        cls = entry.load()
    except Exception as e:
        cause = e.__cause__ if e.__cause__ is not None else e
        return f"(import failed: {one_line(f'{type(cause).__name__}: {cause}', 120)})"
    return summary_line(cls.__doc__)


def _unknown(reg, name: str) -> CLIError:
    known = list(reg.entries()) + list(reg.recipes())
    return CLIError(str(reg._unknown(name, "part or recipe", known)))


# --------------------------------------------------------------------------- list


def _pattern(text: str | None) -> str:
    if not text:
        return "*"
    return text if any(c in text for c in "*?[") else f"*{text}*"


def cmd_list(args: argparse.Namespace) -> int:
    from .parts import KINDS

    if args.kind is not None and args.kind not in KINDS:
        raise CLIError(f"unknown kind {args.kind!r}; kinds are {', '.join(sorted(KINDS))}", 2)
    reg = _registry()
    pattern = _pattern(args.pattern)
    entries = reg.entries()
    parts = [
        {
            "name": n,
            "kind": entries[n].kind,
            "plugin": entries[n].plugin,
            "summary": _summary(entries[n]),
        }
        for n in reg.list(args.kind, pattern)
    ]
    recipes = None
    if args.kind is None:
        recipes = [
            {"name": r.name, "plugin": r.plugin, "description": summary_line(r.description)}
            for r in reg.recipes(pattern).values()
        ]
    part_cols = ("name", "kind", "plugin", "summary")
    recipe_cols = ("name", "plugin", "description")

    if args.format == "json":
        data: dict[str, Any] = {"parts": parts}
        if recipes is not None:
            data["recipes"] = recipes
        _out(json.dumps(data, indent=2))
        return 0
    if args.format == "markdown":
        _out(format_markdown(part_cols, [[p[c] for c in part_cols] for p in parts]))
        if recipes:
            _out()
            _out(
                format_markdown(
                    ("recipe", "plugin", "description"),
                    [[r[c] for c in recipe_cols] for r in recipes],
                )
            )
        return 0
    if parts:
        _out(format_table(part_cols, [[p[c] for c in part_cols] for p in parts]))
    else:
        what = f"of kind {args.kind!r} " if args.kind else ""
        _out(f"no parts {what}match {pattern!r}")
    if recipes is not None:
        _out()
        if recipes:
            _out(
                format_table(
                    ("recipe", "plugin", "description"),
                    [[r[c] for c in recipe_cols] for r in recipes],
                )
            )
        elif pattern == "*":
            _out("no recipes registered")
        else:
            _out(f"no recipes match {pattern!r}")
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
_UNHOSTED_KINDS = frozenset({"generator", "sampler", "trainer"})


def _config_rows(cls, runtime: frozenset[str]) -> tuple[list[str], list[list[str]]]:
    fields = cls.Config.model_fields
    with_doc = any(f.description for f in fields.values())
    headers = ["field", "type", "default", "runtime"] + (["description"] if with_doc else [])
    rows = []
    for name, f in fields.items():
        if f.is_required():
            default = "(required)"
        elif f.default_factory is not None:
            try:
                default = _value(f.default_factory())
            except TypeError:  # a factory that takes the validated data
                default = "(computed)"
        else:
            default = _value(f.default)
        row = [name, _type_name(f.annotation, f.metadata), default]
        row.append("runtime" if name in runtime else "")
        if with_doc:
            row.append(one_line(f.description))
        rows.append(row)
    return headers, rows


def _print_recipe(recipe, as_json: bool) -> None:
    data = {
        "name": recipe.name,
        "plugin": recipe.plugin,
        "description": recipe.description,
        "spec": recipe.spec,
    }
    if as_json:
        _out(json.dumps(data, indent=2, default=str))
        return
    import yaml

    _out(f"{recipe.name}  (recipe, plugin {recipe.plugin})")
    if recipe.description:
        _out(recipe.description.strip())
    _out()
    _out("spec:")
    _out(yaml.safe_dump(recipe.spec, sort_keys=False, default_flow_style=False).rstrip())
    _out()
    _out(f"build it with: synth.compose({recipe.name!r})")


def cmd_info(args: argparse.Namespace) -> int:
    from .errors import RegistryError

    reg = _registry()
    name = args.name
    if name not in reg:
        recipes = reg.recipes()
        if name in recipes:
            _print_recipe(recipes[name], args.json)
            return 0
        raise _unknown(reg, name)
    try:
        info = reg.describe(name)
    except RegistryError as e:
        raise CLIError(str(e)) from e
    if args.json:
        _out(json.dumps(info, indent=2, default=str))
        return 0
    cls = reg.resolve(name)
    _out(f"{name}  ({info['kind']}, plugin {info['plugin']})")
    if info["doc"]:
        _out()
        _out(inspect.cleandoc(info["doc"]))
    _out()
    meta = [("class", info["class"])]
    for key in ("requires", "provides", "needs", "roles", "requires_parts", "produces"):
        if key in info:
            meta.append((key, ", ".join(info[key]) or "(nothing)"))
    if "has_posterior" in info:
        meta.append(("posterior", "yes" if info["has_posterior"] else "no"))
    width = max(len(k) for k, _ in meta) + 1
    for key, val in meta:
        _out(f"{(key + ':').ljust(width)} {val}")
    _out()
    runtime = (
        frozenset(info["runtime_args"]) if info["kind"] not in _UNHOSTED_KINDS else frozenset()
    )
    headers, rows = _config_rows(cls, runtime)
    if rows:
        _out("config:")
        _out(format_table(headers, rows, indent="  "))
    else:
        _out("config: (no fields)")
    if runtime:
        _out()
        _out(
            f"runtime arguments ({', '.join(sorted(runtime))}) are set by the part that hosts "
            "this one; leave them out of the spec."
        )
    return 0


# --------------------------------------------------------------------------- plugins, recipes


def cmd_plugins(args: argparse.Namespace) -> int:
    reg = _registry(quiet_plugins=True)
    infos = list(reg.plugin_infos)
    rows = [
        [i.name, i.dist or "-", i.version or "-", i.status, one_line(i.error, 100)] for i in infos
    ]
    _out(format_table(("name", "dist", "version", "status", "error"), rows))
    if any(i.status in {"failed", "incompatible"} for i in infos):
        _out()
        _out(
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
    reg = _registry()
    rows = [
        [r.name, r.plugin, _generator_type(r.spec), summary_line(r.description)]
        for r in reg.recipes(_pattern(args.pattern)).values()
    ]
    if not rows:
        _out("no recipes registered" if not args.pattern else f"no recipes match {args.pattern!r}")
        return 0
    _out(format_table(("recipe", "plugin", "generator", "description"), rows))
    return 0


# --------------------------------------------------------------------------- compose


def _spec_parts(spec) -> list[tuple[str, str]]:
    """``(where, part name)`` for every part of a ModelSpec, slots included."""
    out: list[tuple[str, str]] = []

    def walk(where: str, part: Mapping[str, Any]) -> None:
        out.append((where, part["type"]))
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
    return out


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

    from .composer import check_spec, compose, load_spec
    from .errors import ComposeError, ConfigError, RegistryError

    reg = _registry()
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
    _out("ok" if args.check else "ok: composed")
    _out(format_table(headers, rows, indent="  "))
    fields = sorted(checked["data_fields"])
    _out(f"  condition fields read: {', '.join(fields) if fields else '(none)'}")
    return 0


# --------------------------------------------------------------------------- demo


def cmd_demo(args: argparse.Namespace) -> int:
    _out("synth: parts and recipes registered in this environment")
    _out()
    code = cmd_list(argparse.Namespace(kind=None, pattern=None, format="table"))
    _out()
    _out(
        "The full demo (sampling, steering and editing images with each paper's plugin) "
        "arrives with the plugins; for now this lists what is registered."
    )
    return code


# --------------------------------------------------------------------------- parser


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(
        prog="synth",
        description="Inspect synth's parts, plugins and recipes, and check model specs.",
    )
    p.add_argument("--version", action="version", version=f"synth-core {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

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

    s = sub.add_parser("compose", help="check (or build) a model spec")
    s.add_argument("spec", metavar="SPEC", help="a .yaml/.json/.toml spec file or a recipe name")
    s.add_argument("--check", action="store_true", help="only check the graph; allocate no tensors")
    s.set_defaults(func=cmd_compose)

    s = sub.add_parser("demo", help="a quick tour (placeholder until the plugins land)")
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``synth`` command with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, usage errors
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    if args.command is None:
        parser.print_help()
        return 0
    from .errors import PluginError

    try:
        return args.func(args)
    except CLIError as e:
        _err(f"error: {e}")
        return e.code
    except PluginError as e:  # SYNTH_STRICT_PLUGINS=1 and a plugin failed
        _err(f"error: {e}")
        return 1
    except BrokenPipeError:  # `synth list | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
