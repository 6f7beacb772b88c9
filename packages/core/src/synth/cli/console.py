"""What every command shares: the error type that ends a command, printing, and the registry
with plugin warnings turned into ``synth: warning: ...`` lines."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from typing import Any

from .format import one_line, summary_line

__all__ = ["CLIError", "device", "err", "out", "part_summary", "registry", "unknown"]


class CLIError(Exception):
    """An error to print as ``synth: error: <message>`` and exit with ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def device(text: str, *, allow_auto: bool = False) -> Any:
    """The ``torch.device`` that ``--device text`` names, checked against this machine before
    any work starts: a bad name, CUDA without a GPU (or a CPU-only torch), an index past the
    GPUs there are, MPS off a Mac, are one ``synth: error`` line naming the fix. With
    ``allow_auto`` "auto" is returned as is (the trainer picks)."""
    import torch

    if allow_auto and text == "auto":
        return text
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        raise CLIError(
            f"--device {text!r} is not a device: use cpu, cuda, cuda:1 or mps", 2
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = " (this torch is a CPU-only build)" if torch.version.cuda is None else ""
            raise CLIError(f"--device {text}: CUDA is not available here{build}; use --device cpu")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise CLIError(
                f"--device {text}: this machine has {count} CUDA device(s), cuda:0 to "
                f"cuda:{count - 1}; pick one of them"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise CLIError(f"--device {text}: MPS (Apple GPU) is not available here; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise CLIError(f"--device {text}: synth runs on cpu, cuda or mps", 2)
    return dev


def device_failure(e: BaseException) -> str | None:
    """A one-line message for an error the device raised mid-command (out of GPU memory, a
    CUDA driver error), or None when ``e`` is not one."""
    name = type(e).__name__
    first = (str(e).strip().splitlines() or [""])[0]
    if name == "OutOfMemoryError":
        return (
            f"out of device memory ({first[:120]}); use a smaller --size, -n or batch, or "
            "--device cpu"
        )
    if isinstance(e, RuntimeError) and any(w in first for w in ("CUDA", "cuda", "MPS", "NVIDIA")):
        return f"device error: {first[:200]}; check the GPU and driver, or use --device cpu"
    return None


def out(text: str = "") -> None:
    print(text)


def err(text: str) -> None:
    print(f"synth: {text}", file=sys.stderr)


def registry(*, quiet_plugins: bool = False) -> Any:
    """The process-wide registry; plugin warnings printed as ``synth: warning: ...`` lines."""
    from .. import registry as reg_module
    from ..registry.discovery import SynthPluginWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SynthPluginWarning)
        reg = reg_module.get_registry()
    for w in caught:
        if issubclass(w.category, SynthPluginWarning):
            if not quiet_plugins:
                err(f"warning: {w.message}")
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return reg


def part_summary(entry: Any, summarize: Callable[[str | None], str] = summary_line) -> str:
    """The part's one-line summary (see :func:`summary_line`), or why its class could not be
    imported."""
    try:
        cls = entry.load()
    except Exception as e:
        cause = e.__cause__ if e.__cause__ is not None else e
        return f"(import failed: {one_line(f'{type(cause).__name__}: {cause}', 120)})"
    return summarize(cls.__doc__)


def unknown(reg: Any, name: str) -> CLIError:
    """The error for a name that is neither a part nor a recipe (close matches, pip line)."""
    known = list(reg.entries()) + list(reg.recipes())
    return CLIError(str(reg._unknown(name, "part or recipe", known)))
