"""What several commands read: a saved model directory and a data set given as ``--data SPEC``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .console import CLIError

__all__ = ["data_spec", "dataset_arg", "load_model_dir"]


def load_model_dir(path: str | Path, device: Any) -> Any:
    """``synth.load(path, for_training=False)`` on ``device`` in eval mode, its errors as
    ``synth: error`` lines (a missing directory says what a model directory holds)."""
    from ..pretrained import load

    model_dir = Path(path)
    if not model_dir.exists():
        raise CLIError(
            f"{model_dir}: no such model directory; give a directory written by "
            "model.save_pretrained(dir), holding synth.json and model.safetensors"
        )
    try:
        # inference needs no loss backbones (e.g. VGG weights of a perceptual loss)
        model = load(model_dir, map_location=device, for_training=False)
    except (FileNotFoundError, ValueError) as e:  # ValueError covers Registry/Compose errors
        raise CLIError(str(e)) from e
    return model.to(device).eval()


def data_spec(text: str) -> Any:
    """A data set spec from ``--data``: inline JSON, a spec file (.yaml/.json/.toml) or a bare
    data set type name (``demo``)."""
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


def dataset_arg(text: str) -> Any:
    """The data set ``--data text`` names, built with :func:`synth.data.build_dataset`."""
    spec = data_spec(text)
    try:
        from .. import data
    except ImportError as e:
        raise CLIError(f"--data needs synth.data, which could not be imported: {e}") from e
    try:
        return data.build_dataset(spec)
    except (ValueError, OSError, KeyError, TypeError, ImportError) as e:
        raise CLIError(f"--data {text}: {e}") from e
