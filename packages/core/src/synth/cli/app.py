"""``synth app [MODEL_DIR]``: serve the browser editor (:mod:`synth.app`) for one saved model.

Without MODEL_DIR it opens ``runs/demo/model``, the model ``make demo`` saves, when there is
one. Binds 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .console import CLIError, err, out
from .console import device as parse_device
from .inputs import load_model_dir

__all__ = ["DEMO_MODEL_DIR", "add_parser", "cmd_app", "model_dir"]

#: Where ``make demo`` (``synth demo``) saves its model, relative to the working directory.
DEMO_MODEL_DIR = Path("runs") / "demo" / "model"


def model_dir(given: str | None, cwd: Path | None = None) -> Path:
    """The directory to open: ``given``, else the demo's model when ``make demo`` saved one,
    else a :class:`CLIError` naming both ways to get a model."""
    if given is not None:
        return Path(given)
    demo = (cwd or Path.cwd()) / DEMO_MODEL_DIR
    if (demo / "synth.json").is_file():
        return demo
    raise CLIError(
        f"no MODEL_DIR given and no demo model at {DEMO_MODEL_DIR}/: run `make demo` (or "
        "`synth demo`) first, or give the directory of a saved model: synth app MODEL_DIR"
    )


def cmd_app(args: argparse.Namespace) -> int:
    from ..extras import MissingExtraError, require

    try:
        require("fastapi", extra="app", needed_by="synth app")
        require("uvicorn", extra="app", needed_by="synth app")
    except MissingExtraError as e:
        raise CLIError(str(e)) from None
    from ..app import Editor, serve

    path = model_dir(args.model_dir)
    dev = parse_device(args.device)
    model = load_model_dir(path, dev)
    names = [s.strip() for s in args.class_names.split(",")] if args.class_names else None
    size = tuple(args.size) if args.size else (64, 64)
    try:
        editor = Editor(model, size=size, class_names=names, name=str(path))  # type: ignore[arg-type]
    except ValueError as e:
        raise CLIError(f"{path}: {e}") from None
    offered = [k for k, e in editor.caps.edits.items() if e.offered]
    out(f"synth app: {path} ({editor.caps.size[0]}×{editor.caps.size[1]}; {', '.join(offered)})")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        err(f"synth app: warning: listening on {args.host}: other machines can reach the editor")
    out(f"open http://{args.host}:{args.port}/  (Ctrl-C stops)")
    serve(editor, host=args.host, port=args.port)
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "app",
        help="edit in the browser: paint, sample, resample a class or scale, collage a region",
        description=(
            "Serve a local page for one saved model: paint a label map, sample many, pick one, "
            "edit it with what the model can do; download the PNGs and the edit recipe "
            "(needs synth-core[app])."
        ),
    )
    p.add_argument(
        "model_dir",
        nargs="?",
        default=None,
        metavar="MODEL_DIR",
        help=f"a saved model directory (default: {DEMO_MODEL_DIR}, written by `make demo`)",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument(
        "--size", type=int, nargs=2, metavar=("H", "W"), help="output size (default 64 64)"
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 or mps (default cpu)")
    p.add_argument("--class-names", default=None, help="comma-separated class names, in id order")
    p.set_defaults(func=cmd_app)
