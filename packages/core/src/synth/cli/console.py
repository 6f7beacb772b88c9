"""What every command shares: the error type that ends a command, printing, and the registry
with plugin warnings turned into ``synth: warning: ...`` lines."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from typing import Any

from .format import one_line, summary_line

__all__ = ["CLIError", "err", "out", "part_summary", "registry", "unknown"]


class CLIError(Exception):
    """An error to print as ``synth: error: <message>`` and exit with ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


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
