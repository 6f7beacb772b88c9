"""``synth demo``: train a registered recipe on the embedded demo photos for a few minutes
(:func:`synth.demo.run_demo`) and print what it wrote and measured."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .console import CLIError, out

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
        f"LPIPS diversity {m['lpips_diversity']:.4f} (mean pairwise over {n} samples); "
        f"best-of-{n} L1 {m[f'best_of_{n}_l1']:.4f} vs one sample {m['mean_sample_l1']:.4f}"
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


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo
    from ..errors import ComposeError, UnknownPartError

    try:
        result = run_demo(
            args.recipe,
            out_dir=args.out,
            minutes=args.minutes,
            steps=args.steps,
            size=args.size,
            num_classes=args.num_classes,
            batch_size=args.batch_size,
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
