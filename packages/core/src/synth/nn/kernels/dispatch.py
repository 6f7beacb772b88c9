"""Which implementation a fused op runs: the Triton kernel or the PyTorch code it replaces.

The Triton path runs only where it can and where it pays: on CUDA tensors, when ``triton``
imports, in forward-only work (no tensor needs a gradient: see :func:`use_triton`), outside
``torch.compile`` (inductor fuses the PyTorch code itself, and dynamo cannot
trace our ``autograd.Function`` around a Triton launch with ``fullgraph=True``). Everything
else, and every CPU tensor, takes the PyTorch path, unchanged.

The switch, for benchmarks and tests:

- the environment variable ``SYNTH_KERNELS`` = ``auto`` (default) | ``triton`` | ``torch``;
- :func:`set_backend` / the :func:`backend_scope` context manager, which win over it.

``triton`` forces the kernels also on CPU tensors, which works only in Triton's interpreter
mode (``TRITON_INTERPRET=1`` in the environment before the kernels module is first imported):
that is how the tests compare both paths on a machine without a GPU.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch
from torch import Tensor

__all__ = [
    "BACKENDS",
    "ENV_VAR",
    "Backend",
    "backend",
    "backend_scope",
    "interpreting",
    "set_backend",
    "triton_available",
    "use_triton",
]

Backend = Literal["auto", "triton", "torch"]
BACKENDS: tuple[str, ...] = ("auto", "triton", "torch")
ENV_VAR = "SYNTH_KERNELS"

_override: str | None = None


def _checked(name: str, source: str) -> str:
    if name not in BACKENDS:
        raise ValueError(
            f"{source}={name!r} is not a kernel backend; use one of {list(BACKENDS)} "
            "('auto': Triton on CUDA tensors when triton imports, else PyTorch)"
        )
    return name


def backend() -> str:
    """The backend in force: :func:`set_backend`'s, else ``$SYNTH_KERNELS``, else ``auto``."""
    if _override is not None:
        return _override
    return _checked(os.environ.get(ENV_VAR, "auto").strip().lower() or "auto", ENV_VAR)


def set_backend(name: Backend | None) -> None:
    """Force ``"triton"`` or ``"torch"`` (``"auto"``: choose by device); ``None`` returns the
    choice to ``$SYNTH_KERNELS``."""
    global _override
    _override = None if name is None else _checked(name, "set_backend")


@contextmanager
def backend_scope(name: Backend) -> Iterator[None]:
    """``with backend_scope("torch"): ...`` runs the block with that backend, then restores."""
    global _override
    before = _override
    set_backend(name)
    try:
        yield
    finally:
        _override = before


@functools.cache
def triton_available() -> bool:
    """Whether ``triton`` is installed (checked once, without importing it)."""
    return importlib.util.find_spec("triton") is not None


def interpreting() -> bool:
    """Whether Triton kernels defined now run in the interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def use_triton(*tensors: Tensor) -> bool:
    """Whether a fused op on ``tensors`` runs its Triton kernel.

    ``torch``: never. Under ``torch.compile`` tracing: never. ``triton``: always (raises when
    triton is missing). ``auto``: when every tensor is on CUDA, triton is installed and no
    gradient is wanted (grad mode off, or no tensor requires grad): the kernels' backward
    recomputes the PyTorch forward, so a training step would do more work than on the PyTorch
    path; sampling, evaluation and cIMLE's code selection (``no_grad``) get the kernels.
    """
    if torch.compiler.is_compiling():  # first: dynamo need not trace the env lookup below
        return False
    name = backend()
    if name == "torch":
        return False
    if name == "triton":
        if not triton_available():
            raise RuntimeError(
                f"{ENV_VAR}=triton (or set_backend('triton')) but triton is not installed: "
                "pip install triton, or use 'auto'/'torch'"
            )
        return True
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return False
    return triton_available() and all(t.is_cuda for t in tensors)
