"""The marks every test of ``tests/gpu`` carries: ``cuda``, and a skip with a reason without a
CUDA device (so ``make test`` collects them and skips them cleanly)."""

from __future__ import annotations

import pytest
import torch

CUDA = torch.cuda.is_available()

#: ``pytestmark = requires_cuda`` at the top of a module
requires_cuda = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        not CUDA, reason="needs a CUDA device (run by make test-gpu / bench/gpu.sh)"
    ),
]
