"""The ``synth`` parser, built from each command group's ``add_parser``, and :func:`main`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import app, catalog, compose, demo, evaluate, sample, train
from .console import CLIError, err

__all__ = ["main"]


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
    catalog.add_parsers(sub)
    compose.add_parser(sub)
    train.add_parser(sub)
    sample.add_parser(sub)
    evaluate.add_parser(sub)
    demo.add_parser(sub)
    app.add_parser(sub)
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
        err(f"error: {e}")
        return e.code
    except PluginError as e:  # SYNTH_STRICT_PLUGINS=1 and a plugin failed
        err(f"error: {e}")
        return 1
    except RuntimeError as e:  # a device failing mid-command: one line, not a traceback
        from .console import device_failure

        message = device_failure(e)
        if message is None:
            raise
        err(f"error: {message}")
        return 1
    except BrokenPipeError:  # `synth list | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        return 130
