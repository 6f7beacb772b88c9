"""``synth train CONFIG``: train a model from a run config (model, data, train).

A config whose ``model`` is a recipe (its name, or a spec with ``base: <recipe>``) trains with
the recipe's trainer settings (the paper's optimisers, schedule and batch size; ``synth info
RECIPE`` shows them) as defaults under the file's ``train`` section, and the command line's
``--steps``/``--run-dir``/``--device`` on top: :func:`synth.train.train` reads the config
and merges them; the run folder's ``config.json`` records the result.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .console import CLIError, err, out
from .console import device as parse_device

__all__ = ["add_parser", "cmd_train"]


def _run_dir_listing(run_dir: Path) -> list[str]:
    """The top-level entries of a run directory (folders marked with a ``/``)."""
    if not run_dir.is_dir():
        return []
    return [p.name + ("/" if p.is_dir() else "") for p in sorted(run_dir.iterdir())]


def _check_args(args: argparse.Namespace) -> Path:
    config = Path(args.config)
    if not config.is_file():
        raise CLIError(
            f"{args.config}: no such config file; give a .yaml, .json or .toml file with "
            "sections model (a model spec or recipe name), data (a data set spec) and train "
            "(Trainer settings)"
        )
    if args.steps is not None and args.steps < 1:
        raise CLIError(f"--steps {args.steps}: give a positive number of steps", 2)
    if args.device is not None:
        parse_device(args.device, allow_auto=True)
    return config


def _parse_set(items: Sequence[str] | None) -> dict[str, Any]:
    """``--set train.batch_size=8`` -> ``{"train.batch_size": 8}`` (values read as JSON when
    they parse, else kept as strings)."""
    parsed: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CLIError(
                f"--set {item!r}: write SECTION.KEY=VALUE, e.g. --set train.batch_size=8", 2
            )
        try:
            parsed[key] = json.loads(raw)
        except json.JSONDecodeError:
            parsed[key] = raw
    return parsed


def _errors(trainer: Any) -> tuple[type[BaseException], ...]:
    """The exceptions that end ``synth train`` with an error line (no traceback)."""
    import yaml

    from ..errors import ComposeError, ConfigError, RegistryError

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
    return errors


def cmd_train(args: argparse.Namespace) -> int:
    import yaml

    config = _check_args(args)
    settings = _parse_set(getattr(args, "set", None))
    try:
        from .. import train as trainer
    except ImportError as e:
        raise CLIError(f"synth train needs synth.train, which could not be imported: {e}") from e
    try:
        run_dir = trainer.train(
            config,
            run_dir=args.run_dir,
            max_steps=args.steps,
            resume=not args.no_resume,
            device=args.device,
            **({"settings": settings} if settings else {}),
        )
    except _errors(trainer) as e:
        message = str(e) or type(e).__name__
        raise CLIError(f"{config}: {message}" if isinstance(e, yaml.YAMLError) else message) from e
    except KeyboardInterrupt:
        where = f" --run-dir {args.run_dir}" if args.run_dir else ""
        err(
            "interrupted; run `synth train "
            f"{args.config}{where}` again to resume from the last checkpoint"
        )
        return 130
    except ImportError as e:  # a part or data set needing a package that is not installed
        raise CLIError(f"synth train could not import what the config needs: {e}") from e
    run_dir = Path(run_dir)
    out(f"training done; outputs in {run_dir}")
    for name in _run_dir_listing(run_dir):
        out(f"  {name}")
    return 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser("train", help="train a model from a config file (model, data, train)")
    s.add_argument(
        "config",
        metavar="CONFIG",
        help="a .yaml/.json/.toml file with sections model (a spec, or a recipe name: its "
        "trainer settings are the defaults), data and train",
    )
    s.add_argument("--run-dir", metavar="DIR", help="where checkpoints, logs and samples go")
    s.add_argument("--steps", type=int, metavar="N", help="stop after N steps (overrides train)")
    s.add_argument(
        "--no-resume",
        action="store_true",
        help="start afresh even if DIR holds a checkpoint (default: resume from it)",
    )
    s.add_argument("--device", metavar="D", help="cpu, cuda, cuda:1, ... (overrides train.device)")
    s.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override the config, e.g. --set train.batch_size=8 --set model.generator.ngf=32 "
        "(dotted path from a section; values read as JSON; repeatable)",
    )
    s.set_defaults(func=cmd_train)
