"""The ``synth`` command: inspect the registry, plugins and recipes, check model specs, train
models and draw samples from saved ones.

Commands::

    synth list [PATTERN] [--kind K] [--format table|markdown|json]
    synth info NAME [--json]
    synth plugins
    synth recipes
    synth compose SPEC [--check]
    synth train CONFIG [--run-dir DIR] [--steps N] [--no-resume] [--device D]
    synth sample MODEL_DIR (--label-map PNG | --image PNG | --data SPEC [--index I ...])
                 [-n N] [--seed S] [--out DIR] [--num-classes K] [--size H W] [--sampler NAME]
    synth demo [--recipe NAME] [--minutes M] [--out DIR] [--size S] [--set KEY=VALUE ...]

Errors go to stderr as ``synth: error: ...``; the exit code is 1 for a failed command and 2
for a usage error (argparse's convention).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import re
import sys
import typing
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
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
    """A GitHub-flavoured markdown table (``|`` in cells escaped, line breaks as spaces)."""

    def cell(c: Any) -> str:
        text = " ".join(("" if c is None else str(c)).split())
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def one_line(text: str | None, limit: int = 160) -> str:
    """The first non-empty line of ``text``, cut to ``limit`` characters."""
    line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."


def _first_paragraph(doc: str | None) -> str:
    paragraph = []
    for ln in (doc or "").strip().splitlines():
        if not ln.strip():
            break
        paragraph.append(ln.strip())
    return " ".join(paragraph)


def _first_sentence(text: str) -> str:
    m = re.match(r"(.+?[.!?])(?=\s+[A-Z`(\"]|$)", text)
    return m.group(1) if m else text


def summary_line(doc: str | None, limit: int = 120) -> str:
    """A docstring's one-line summary: its first paragraph joined into one line; when that is
    longer than ``limit``, its first sentence, cut to ``limit`` characters if still too long."""
    text = _first_paragraph(doc)
    if len(text) > limit:
        text = _first_sentence(text)
    return one_line(text, limit)


def markdown_summary(doc: str | None, limit: int = 200) -> str:
    """The summary for ``--format markdown``, where no terminal width applies: the first
    paragraph in one line, or its first sentence when the paragraph is longer than ``limit``;
    never cut."""
    text = _first_paragraph(doc)
    return _first_sentence(text) if len(text) > limit else text


def _out(text: str = "") -> None:
    print(text)


def _err(text: str) -> None:
    print(f"synth: {text}", file=sys.stderr)


# --------------------------------------------------------------------------- registry access


def _registry(*, quiet_plugins: bool = False):
    """The process-wide registry; plugin warnings printed as ``synth: warning: ...`` lines."""
    from ..registry import get_registry
    from ..registry.discovery import SynthPluginWarning

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


def _summary(entry, summarize: Callable[[str | None], str] = summary_line) -> str:
    """The part's one-line summary (see :func:`summary_line`), or why its class could not be
    imported."""
    try:
        cls = entry.load()
    except Exception as e:
        cause = e.__cause__ if e.__cause__ is not None else e
        return f"(import failed: {one_line(f'{type(cause).__name__}: {cause}', 120)})"
    return summarize(cls.__doc__)


def _unknown(reg, name: str) -> CLIError:
    known = list(reg.entries()) + list(reg.recipes())
    return CLIError(str(reg._unknown(name, "part or recipe", known)))


# --------------------------------------------------------------------------- list


def _pattern(text: str | None) -> str:
    if not text:
        return "*"
    return text if any(c in text for c in "*?[") else f"*{text}*"


def cmd_list(args: argparse.Namespace) -> int:
    from ..parts.base import KINDS

    if args.kind is not None and args.kind not in KINDS:
        raise CLIError(f"unknown kind {args.kind!r}; kinds are {', '.join(sorted(KINDS))}", 2)
    reg = _registry()
    pattern = _pattern(args.pattern)
    entries = reg.entries()
    # markdown (README tables) has no terminal width: whole summaries, never cut
    summarize = markdown_summary if args.format == "markdown" else summary_line
    parts = [
        {
            "name": n,
            "kind": entries[n].kind,
            "plugin": entries[n].plugin,
            "summary": _summary(entries[n], summarize),
        }
        for n in reg.list(args.kind, pattern)
    ]
    recipes = None
    if args.kind is None:
        recipes = [
            {"name": r.name, "plugin": r.plugin, "description": summarize(r.description)}
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
        # names as code spans; one table for the parts, one for the recipes
        def md_rows(items: list[dict[str, Any]], cols: Sequence[str]) -> list[list[str]]:
            return [[f"`{it['name']}`", *(it[c] for c in cols[1:])] for it in items]

        _out(format_markdown(part_cols, md_rows(parts, part_cols)))
        if recipes:
            _out()
            _out(
                format_markdown(("recipe", "plugin", "description"), md_rows(recipes, recipe_cols))
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
_UNHOSTED_KINDS = frozenset({"generator", "sampler", "objective"})


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
    from ..errors import RegistryError

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

    from ..compose import check_spec, compose, load_spec
    from ..errors import ComposeError, ConfigError, RegistryError

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


# --------------------------------------------------------------------------- train


def _run_dir_listing(run_dir: Path) -> list[str]:
    """The top-level entries of a run directory (folders marked with a ``/``)."""
    if not run_dir.is_dir():
        return []
    return [p.name + ("/" if p.is_dir() else "") for p in sorted(run_dir.iterdir())]


def cmd_train(args: argparse.Namespace) -> int:
    import yaml

    from ..errors import ComposeError, ConfigError, RegistryError

    config = Path(args.config)
    if not config.is_file():
        raise CLIError(
            f"{args.config}: no such config file; give a .yaml, .json or .toml file with "
            "sections model (a model spec or recipe name), data (a data set spec) and train "
            "(Trainer settings)"
        )
    if args.steps is not None and args.steps < 1:
        raise CLIError(f"--steps {args.steps}: give a positive number of steps", 2)
    try:
        from .. import train as trainer
    except ImportError as e:
        raise CLIError(f"synth train needs synth.train, which could not be imported: {e}") from e
    errors: tuple[type[BaseException], ...] = (
        ComposeError,
        ConfigError,
        RegistryError,
        ValueError,
        FileNotFoundError,
        yaml.YAMLError,
    )
    diverged = getattr(trainer, "TrainingDiverged", None)
    if isinstance(diverged, type) and issubclass(diverged, BaseException):
        errors += (diverged,)
    try:
        run_dir = trainer.train(
            config,
            run_dir=args.run_dir,
            max_steps=args.steps,
            resume=not args.no_resume,
            device=args.device,
        )
    except errors as e:
        message = str(e) or type(e).__name__
        raise CLIError(f"{config}: {message}" if isinstance(e, yaml.YAMLError) else message) from e
    except KeyboardInterrupt:
        where = f" --run-dir {args.run_dir}" if args.run_dir else ""
        _err(
            "interrupted; run `synth train "
            f"{args.config}{where}` again to resume from the last checkpoint"
        )
        return 130
    except ImportError as e:  # a part or data set needing a package that is not installed
        raise CLIError(f"synth train could not import what the config needs: {e}") from e
    run_dir = Path(run_dir)
    _out(f"training done; outputs in {run_dir}")
    for name in _run_dir_listing(run_dir):
        _out(f"  {name}")
    return 0


# --------------------------------------------------------------------------- sample

#: PIL modes whose pixel values are integers, i.e. can hold class ids.
_ID_MODES = frozenset({"1", "L", "P", "I", "I;16", "I;16L", "I;16B", "I;16N"})


def _open_image(path: str):
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(path)
        img.load()
    except FileNotFoundError:
        raise CLIError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError) as e:
        raise CLIError(f"{path}: not a readable image ({e})") from None
    return img


def _model_num_classes(model: Any, given: int | None, what: str) -> int:
    k = given if given is not None else getattr(model.generator.config, "num_classes", None)
    if k is None:
        raise CLIError(
            f"{what}: this model's generator takes no label map (its config has no "
            "num_classes); give --num-classes K if it does read one, or sample from --image or "
            "--data"
        )
    return int(k)


def _label_map_condition(args: argparse.Namespace, model: Any):
    import numpy as np
    import torch

    from ..condition import Condition
    from ..nn import ops

    path = args.label_map
    img = _open_image(path)
    if img.mode not in _ID_MODES:
        kind = "an RGB" if img.mode.startswith("RGB") else f"a mode-{img.mode}"
        raise CLIError(
            f"{path} is {kind} image, but a label map holds one class id per pixel: save "
            "it as an 8-bit greyscale (mode L) or palette (mode P) PNG whose pixel values are "
            "the class ids — convert colours to ids first (map each colour to its class index)"
        )
    k = _model_num_classes(model, args.num_classes, path)
    ids = torch.from_numpy(np.asarray(img).astype(np.int64))[None]
    if args.size:
        ids = ops.resize_labels(ids, tuple(args.size))
    bad = (ids < 0) | (ids >= k)
    if bool(bad.any()):
        values = torch.unique(ids[bad]).tolist()
        shown = ", ".join(map(str, values[:8])) + (", ..." if len(values) > 8 else "")
        raise CLIError(
            f"{path} has class ids [{shown}] outside [0, {k}) (num_classes = {k}): remap them "
            "to the model's classes (e.g. an 'ignore' id 255 to a real class)"
            + ("" if args.num_classes is not None else ", or pass --num-classes")
        )
    return Condition(label_map=ids, num_classes=k)


def _image_condition(args: argparse.Namespace, model: Any):
    import numpy as np
    import torch

    from ..condition import Condition

    path = args.image
    img = _open_image(path)
    mask = None
    if "mask" in model.data_fields and img.mode in {"RGBA", "LA", "PA"}:
        alpha = np.asarray(img.getchannel("A"), dtype=np.float32)
        mask = torch.from_numpy((alpha >= 128).astype(np.float32))[None, None]
    rgb = np.asarray(img.convert("RGB"), dtype=np.float32)
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None] / 127.5 - 1
    h, w = image.shape[-2:]
    scale = getattr(model.generator.config, "scale", None)
    if args.size:
        size = (int(args.size[0]), int(args.size[1]))
    elif isinstance(scale, (int, float)) and scale > 0:
        size = (round(h * scale), round(w * scale))
    elif mask is not None:
        size = (h, w)
    else:
        raise CLIError(
            f"{path}: give the output size with --size H W; this model's generator has no "
            "`scale` in its config, so the size cannot be worked out from the input image"
        )
    if mask is not None and tuple(mask.shape[-2:]) != size:
        raise CLIError(f"{path}: a masked image must be given at the output size {size}")
    return Condition(image=image.clamp(-1, 1), mask=mask, size=size)


def _data_spec(text: str) -> Any:
    from ..compose import _read_file

    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError as e:
            raise CLIError(f"--data {text!r} is not valid JSON: {e}") from None
    path = Path(text)
    if path.is_file():
        try:
            return _read_file(path)
        except Exception as e:  # any parse error of any of the three formats
            raise CLIError(f"{path}: could not read the data set spec: {e}") from None
    if re.fullmatch(r"[A-Za-z_][\w.\-]*", stripped) and not path.suffix:
        return {"type": stripped}  # a bare data set type, e.g. `--data demo`
    raise CLIError(
        f"--data {text}: no such file; give a data set spec file (.yaml/.json/.toml), inline "
        'JSON like \'{"type": "demo"}\', or a data set type name'
    )


def _data_condition(args: argparse.Namespace, model: Any):
    spec = _data_spec(args.data)
    try:
        from .. import data
    except ImportError as e:
        raise CLIError(f"--data needs synth.data, which could not be imported: {e}") from e
    try:
        dataset = data.build_dataset(spec)
    except (ValueError, OSError, KeyError, TypeError, ImportError) as e:
        raise CLIError(f"--data {args.data}: {e}") from e
    n = len(dataset)
    indices = args.index or [0]
    for i in indices:
        if not 0 <= i < n:
            raise CLIError(
                f"--index {i} is out of range: the data set has {n} item{'s' if n != 1 else ''}"
                + (f" (0..{n - 1})" if n else "")
            )
    k = args.num_classes
    if k is None:
        k = getattr(model.generator.config, "num_classes", None)
    data_k = getattr(dataset, "num_classes", None)
    if k is None:
        k = data_k
    elif data_k is not None and data_k != k:
        raise CLIError(
            f"--data {args.data}: the data set has num_classes = {data_k} but the model takes "
            f"{k}; give the data set spec num_classes = {k} (if it has that option)"
        )
    try:
        batch = data.collate([dataset[i] for i in indices], k)
    except ValueError as e:
        raise CLIError(f"--data {args.data}: {e}") from e
    return batch.cond, getattr(batch, "real", None), list(indices)


def _sampler_arg(text: str | None) -> Any:
    if text is None or not text.strip().startswith("{"):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CLIError(f"--sampler {text!r} is not valid JSON: {e}") from None


def cmd_sample(args: argparse.Namespace) -> int:
    import torch
    from einops import rearrange

    from ..errors import CapabilityError
    from ..pretrained import load
    from ..viz import sample_grid, save_image

    if args.label_map is None and args.image is None and args.data is None:
        raise CLIError(
            "give the input to sample from: --label-map PNG (class ids), --image PNG (e.g. a "
            "low-resolution input) or --data SPEC --index I",
            2,
        )
    if args.index and args.data is None:
        raise CLIError("--index picks items of --data; give --data SPEC too", 2)
    if args.size and args.data is not None:
        raise CLIError("--size applies to --label-map and --image; data set items have theirs", 2)
    if args.n < 1:
        raise CLIError(f"-n {args.n}: ask for at least one sample per input", 2)
    if args.num_classes is not None and args.num_classes < 1:
        raise CLIError(f"--num-classes {args.num_classes}: give a positive number of classes", 2)
    if args.size and min(args.size) < 1:
        raise CLIError(f"--size {args.size[0]} {args.size[1]}: give a positive height and width", 2)
    model_dir = Path(args.model_dir)
    if not model_dir.exists():
        raise CLIError(
            f"{model_dir}: no such model directory; give a directory written by "
            "model.save_pretrained(dir), holding synth.json and model.safetensors"
        )
    device = torch.device(args.device)
    try:
        # sampling needs no loss backbones (e.g. VGG weights of a perceptual loss)
        model = load(model_dir, map_location=device, for_training=False)
    except (FileNotFoundError, ValueError) as e:  # ValueError covers Registry/Compose errors
        raise CLIError(str(e)) from e
    model.to(device).eval()

    real = None
    indices = [0]
    try:
        if args.label_map is not None:
            cond = _label_map_condition(args, model)
        elif args.image is not None:
            cond = _image_condition(args, model)
        else:
            cond, real, indices = _data_condition(args, model)
    except ValueError as e:  # Condition's own checks
        raise CLIError(str(e)) from e
    sampler = _sampler_arg(args.sampler)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(args.seed)
            out = model.sample(cond.to(device), args.n, sampler=sampler, generator=generator)
    except (ValueError, CapabilityError) as e:
        raise CLIError(str(e)) from e
    samples = rearrange(out.image.float().cpu(), "(b n) c h w -> b n c h w", n=args.n)

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "grid.png"]
    sample_grid(cond, samples, real=real, path=written[0])
    for b, index in enumerate(indices):
        for k in range(args.n):
            written.append(save_image(samples[b, k], out_dir / f"sample_{index:02d}_{k:02d}.png"))
    inputs = len(indices)
    _out(
        f"wrote {args.n} sample{'s' if args.n != 1 else ''} for {inputs} "
        f"input{'s' if inputs != 1 else ''} (seed {args.seed}):"
    )
    for path in written:
        _out(f"  {path}")
    return 0


# --------------------------------------------------------------------------- demo


def _parse_set(items: Sequence[str] | None) -> dict[str, Any]:
    """``--set generator.ngf=32`` -> ``{"generator.ngf": 32}`` (values read as JSON if they
    parse, else kept as strings)."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CLIError(
                f"--set {item!r}: write KEY=VALUE with a dotted spec path, e.g. "
                "--set generator.ngf=32",
                2,
            )
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo
    from ..errors import ComposeError, UnknownPartError

    try:
        result = run_demo(
            args.recipe,
            out_dir=args.out,
            minutes=args.minutes,
            size=args.size,
            num_classes=args.num_classes,
            batch_size=args.batch_size,
            num_samples=args.n,
            overrides=_parse_set(args.set),
            seed=args.seed,
            device=args.device,
            download=args.download,
            progress=True if args.progress else None,
            log=_out,
        )
    except UnknownPartError as err:
        raise CLIError(str(err).strip("'\"")) from err
    except (ComposeError, ValueError) as err:
        raise CLIError(str(err)) from err
    m = result.metrics
    _out()
    _out(
        f"trained {m['train']['steps']} steps in {m['train']['seconds']:.0f} s "
        f"({m['train']['images_per_s']:.2f} images/s)"
    )
    n = args.n
    _out(
        f"LPIPS diversity {m['lpips_diversity']:.4f} (mean pairwise over {n} samples); "
        f"best-of-{n} L1 {m[f'best_of_{n}_l1']:.4f} vs one sample {m['mean_sample_l1']:.4f}"
    )
    for note in result.notes:
        _out(f"note: {note}")
    _out(f"wrote {result.out_dir}/:")
    for key, path in result.files.items():
        _out(f"  {key:<15} {path}")
    _out()
    _out("draw more samples from the trained model with:")
    _out(f"  {result.sample_command}")
    # `make demo` runs inside the project's .venv, which the user's shell may not have active
    script = Path(sys.executable).parent / "synth"
    with contextlib.suppress(ValueError):
        local = script.relative_to(Path.cwd())
        if script.exists():
            _out(f"  (without the environment active: {local} {result.sample_command[6:]})")
    return 0


# --------------------------------------------------------------------------- parser


def _parser() -> argparse.ArgumentParser:
    from ..version import __version__

    p = argparse.ArgumentParser(
        prog="synth",
        description=(
            "Inspect synth's parts, plugins and recipes, check model specs, train models and "
            "draw samples."
        ),
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

    s = sub.add_parser("train", help="train a model from a config file (model, data, train)")
    s.add_argument(
        "config",
        metavar="CONFIG",
        help="a .yaml/.json/.toml file with sections model, data and train",
    )
    s.add_argument("--run-dir", metavar="DIR", help="where checkpoints, logs and samples go")
    s.add_argument("--steps", type=int, metavar="N", help="stop after N steps (overrides train)")
    s.add_argument(
        "--no-resume",
        action="store_true",
        help="start afresh even if DIR holds a checkpoint (default: resume from it)",
    )
    s.add_argument("--device", metavar="D", help="cpu, cuda, cuda:1, ... (overrides train.device)")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="draw samples from a saved model into PNG files")
    s.add_argument(
        "model_dir", metavar="MODEL_DIR", help="a directory written by model.save_pretrained"
    )
    src = s.add_mutually_exclusive_group()
    src.add_argument("--label-map", metavar="PNG", help="an 8-bit (L or P mode) PNG of class ids")
    src.add_argument(
        "--image", metavar="PNG", help="a conditioning image, e.g. a low-resolution input"
    )
    src.add_argument(
        "--data",
        metavar="SPEC",
        help="a data set: spec file, inline JSON or a type name (items picked with --index)",
    )
    s.add_argument(
        "--index",
        type=int,
        action="append",
        metavar="I",
        help="a data set item to sample for (repeat for more; default 0)",
    )
    s.add_argument("-n", type=int, default=4, metavar="N", help="samples per input (default 4)")
    s.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    s.add_argument(
        "--out", default="samples", metavar="DIR", help="output folder (default ./samples)"
    )
    s.add_argument(
        "--num-classes",
        type=int,
        metavar="K",
        help="number of label classes (default: the generator's num_classes)",
    )
    s.add_argument(
        "--size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="output size (label maps are resized nearest to it)",
    )
    s.add_argument(
        "--sampler",
        metavar="NAME",
        help="a sampler part name or JSON spec (default: the model's sampler)",
    )
    s.add_argument("--device", default="cpu", metavar="D", help="device to run on (default cpu)")
    s.set_defaults(func=cmd_sample)

    s = sub.add_parser(
        "demo",
        help="train a hybrid recipe on the embedded demo photos for a few minutes; write "
        "sample grids, metrics and the model",
    )
    s.add_argument(
        "--recipe",
        metavar="NAME",
        help="a registered recipe (default clvae.gaugan_composed: SPADE G + pix2pixHD D)",
    )
    s.add_argument("--minutes", type=float, default=3.0, help="training time (default 3)")
    s.add_argument("--out", default="runs/demo", metavar="DIR", help="default runs/demo")
    s.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    s.add_argument("--num-classes", type=int, default=8, metavar="K", help="label classes (8)")
    s.add_argument("--batch-size", type=int, default=4, metavar="B", help="default 4")
    s.add_argument("-n", type=int, default=6, metavar="N", help="samples per photo (default 6)")
    s.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override the spec, e.g. --set generator.ngf=32 (repeatable)",
    )
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="cpu", metavar="D", help="cpu, cuda, ... (default cpu)")
    s.add_argument(
        "--download",
        action="store_true",
        help="let missing pretrained backbones download (default: use random ones)",
    )
    s.add_argument("--progress", action="store_true", help="a progress bar even without a TTY")
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
    from ..errors import PluginError

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
