"""tests/gpu: CUDA paths (``make test-gpu``, ``bench/gpu.sh``). Every test here is marked
``cuda`` and skipped without a CUDA device. Numerics are compared with TF32 off (fp32 matmuls
and convolutions in true fp32), so CPU and CUDA agree to float rounding."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _true_fp32():
    if not torch.cuda.is_available():
        yield
        return
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
