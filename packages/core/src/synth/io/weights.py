"""Pretrained weights on disk: safe reading and the lookup policy (DESIGN §6).

Reading never runs code from a file: ``.safetensors`` and ``.npz`` hold no code at all, and every
other file goes through ``torch.load(..., weights_only=True)``, which refuses pickles that would
call arbitrary functions.

Lookup policy (:func:`resolve_weights`):

1. an explicit file (``weights="/path/to/file"`` in a config) — it must exist;
2. the local cache ``$SYNTH_HOME/weights/`` (default ``~/.cache/synth/weights/``) holding the
   expected file name;
3. ``None``: the caller may download (its library fetches and caches the file) — unless
   ``SYNTH_OFFLINE=1``, in which case a :class:`~synth.WeightsNotFoundError` says exactly which
   file to put where and where to get it.
"""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import WeightsNotFoundError

__all__ = [
    "SAFE_LOAD_HINT",
    "UNWRAP_KEYS",
    "offline",
    "read_state_dict",
    "resolve_weights",
    "synth_home",
    "weights_dir",
]

#: Keys under which training checkpoints nest the weights, tried in this order.
UNWRAP_KEYS: tuple[str, ...] = ("state_dict", "params_ema", "params", "model")

SAFE_LOAD_HINT = (
    "synth never unpickles code: load the file once with the code that wrote it and save the "
    "tensors with safetensors.torch.save_file(state_dict, 'weights.safetensors')"
)

_TRUE = {"1", "true", "yes", "on"}


def offline() -> bool:
    """True when ``SYNTH_OFFLINE`` is set to ``1``/``true``/``yes``/``on``: no downloads."""
    return os.environ.get("SYNTH_OFFLINE", "").strip().lower() in _TRUE


def synth_home() -> Path:
    """``$SYNTH_HOME``, default ``~/.cache/synth``."""
    home = os.environ.get("SYNTH_HOME")
    return Path(home).expanduser() if home else Path("~/.cache/synth").expanduser()


def weights_dir() -> Path:
    """The local weights cache: ``$SYNTH_HOME/weights`` (default ``~/.cache/synth/weights``)."""
    return synth_home() / "weights"


# --------------------------------------------------------------------------- reading


def _unsafe_error(path: Path, err: BaseException) -> ValueError:
    # torch's message suggests weights_only=False; keep only the line saying what was refused
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    detail = next(
        (ln for ln in lines if "GLOBAL" in ln or "Unsupported" in ln or "pickled" in ln),
        lines[0] if lines else "",
    )
    return ValueError(
        f"refusing to load {str(path)!r}: it is not a plain tensor file "
        f"({type(err).__name__}: {detail[:300]}). {SAFE_LOAD_HINT}"
    )


def _torch_load(path: Path) -> Any:
    try:
        with warnings.catch_warnings():  # protocol notes about files that are refused anyway
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise _unsafe_error(path, e) from None
    except (RuntimeError, EOFError, OSError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(
            f"could not read {str(path)!r} as a PyTorch tensor file "
            f"({type(e).__name__}: {e}). {SAFE_LOAD_HINT}"
        ) from None


def _read_npz(path: Path) -> dict[str, Tensor]:
    import numpy as np

    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except Exception as e:  # a pickle (refused by allow_pickle=False) or not an archive
        raise _unsafe_error(path, e) from None
    if not hasattr(data, "files"):
        raise ValueError(f"{str(path)!r} holds a single array, not named arrays (.npz)")
    try:
        with data:
            return {k: torch.from_numpy(np.array(data[k])) for k in data.files}
    except Exception as e:  # an object array inside the archive (would need pickle)
        raise _unsafe_error(path, e) from None


def _read_safetensors(path: Path) -> dict[str, Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except FileNotFoundError:
        raise
    except Exception as e:  # SafetensorError: header is not a safetensors header
        raise ValueError(
            f"{str(path)!r} is not a valid safetensors file ({type(e).__name__}: {e}); "
            "synth reads .safetensors files with safetensors only, never with pickle"
        ) from None


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a state dict from ``path`` without ever running code from the file.

    - ``.safetensors``: read with safetensors.
    - ``.npz``: read with ``numpy.load(allow_pickle=False)``; keys kept as in the file (e.g.
      Chainer's ``block2/b1/gammas/W``), arrays turned into tensors.
    - anything else (``.pth``, ``.pt``, ``.ckpt``, ``.bin``): torch's loader restricted to
      tensors and plain containers (``weights_only=True``), on the CPU.

    Training checkpoints that nest the weights are unwrapped: when the loaded object is a dict
    whose values are not all tensors and that holds a dict under one of :data:`UNWRAP_KEYS`
    (``state_dict``, ``params_ema``, ``params``, ``model``, tried in that order), that dict is
    returned. A leading ``module.`` (from ``DataParallel``/DDP) is stripped from every key.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is a pickle that would execute code (it is never run: synth never
            unpickles code — convert it to safetensors with the code that wrote it), is
            corrupt, or does not hold a mapping of names to tensors.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        obj: Any = _read_safetensors(path)
    elif suffix == ".npz":
        obj = _read_npz(path)
    else:
        obj = _torch_load(path)

    if not isinstance(obj, Mapping):
        raise ValueError(
            f"{str(path)!r} holds a {type(obj).__name__}, not a state dict (a mapping of "
            "parameter names to tensors)"
        )
    if not all(isinstance(v, Tensor) for v in obj.values()):
        for key in UNWRAP_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    bad = [k for k, v in obj.items() if not isinstance(v, Tensor)]
    if bad:
        raise ValueError(
            f"{str(path)!r} is not a plain state dict: entries {bad[:8]} are not tensors "
            f"(nested weights are looked for under {list(UNWRAP_KEYS)})"
        )
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in obj.items()}


# --------------------------------------------------------------------------- policy


def resolve_weights(
    name: str,
    file: str | Path | None,
    *,
    filename: str | Sequence[str],
    url_hint: str = "",
) -> Path | None:
    """Find pretrained weights on disk, following the policy in the module docstring.

    Args:
        name: what the weights are for, used in messages (e.g. ``"VGG19 ImageNet weights"``).
        file: an explicit file chosen by the user (``weights="/path/to/file"``), or ``None``.
        filename: the file name looked for in the cache; several names may be given (e.g.
            timm's and torchvision's file for the same weights), the first is the one an error
            asks for.
        url_hint: where the file can be downloaded, quoted in the error.

    Returns:
        The path of a local file, or ``None`` when nothing is on disk and downloads are allowed
        (the caller's library then fetches the file).

    Raises:
        WeightsNotFoundError: ``file`` does not exist, or nothing is on disk and
            ``SYNTH_OFFLINE=1``. The message names the exact path to put the file at.
    """
    if file is not None:
        path = Path(file).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(
                f"{name}: the weights file {str(path)!r} given in the config does not exist"
                + (f"; it can be downloaded from {url_hint}" if url_hint else "")
            )
        return path
    names = [filename] if isinstance(filename, str) else list(filename)
    if not names:
        raise ValueError("resolve_weights needs at least one file name to look for")
    cache = weights_dir()
    for n in names:
        candidate = cache / n
        if candidate.is_file():
            return candidate
    if offline():
        others = f" (or one of {names[1:]} in the same folder)" if len(names) > 1 else ""
        where = f" Download it from {url_hint}." if url_hint else ""
        raise WeightsNotFoundError(
            f"{name}: no local weights and downloads are off (SYNTH_OFFLINE=1). Put the file "
            f'at {str(cache / names[0])!r}{others}, or pass weights="/path/to/file" in the '
            f"config.{where} The cache folder is $SYNTH_HOME/weights (SYNTH_HOME defaults "
            "to ~/.cache/synth)."
        )
    return None
