"""Fused kernels (Triton) for hot spots of the parts, each with its PyTorch path as fallback.

- :func:`norm_modulate`: SPADE's normalise-and-modulate (eq. 1) in one pass;
- :func:`label_gather`: the label-gather conv's gather (:mod:`synth.nn.layers`) in one pass.

:mod:`.dispatch` chooses the path: Triton on CUDA tensors when triton is installed (outside
``torch.compile``), PyTorch otherwise and always on CPU; ``SYNTH_KERNELS=torch|triton|auto`` or
:func:`set_backend` force one. The Triton module itself (:mod:`.triton_kernels`) is imported
only when a Triton path runs, so ``import synth`` never imports triton.
"""

from .dispatch import (
    BACKENDS,
    ENV_VAR,
    backend,
    backend_scope,
    set_backend,
    triton_available,
    use_triton,
)
from .label_gather import gather_table, label_gather, label_gather_reference
from .norm_modulate import batch_statistics, norm_modulate, norm_modulate_reference

__all__ = [
    "BACKENDS",
    "ENV_VAR",
    "backend",
    "backend_scope",
    "batch_statistics",
    "gather_table",
    "label_gather",
    "label_gather_reference",
    "norm_modulate",
    "norm_modulate_reference",
    "set_backend",
    "triton_available",
    "use_triton",
]
