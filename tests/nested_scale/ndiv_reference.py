"""Progressive NDiv (nested-scale eqs. 5-6) with the NDiv reference's arithmetic, in Python loops.

Written apart from ``synth_nested_scale.losses`` for the benchmark (``bench/nested_scale.py``)
and the tests: one input at a time, one ordered sample pair ``i ≠ j`` at a time, one pyramid
level at a time. The arithmetic is that of B1ueber2y/NDiv ``ndiv_pytorch.py``: Euclidean
distances ``torch.norm(x_i − x_j)`` of the flattened samples (and of their codes), each row
divided by its sum plus ``1e-12`` with the divisor detached, then ``Σ_{i≠j} relu(α·Dz_ij −
Dy_ij) / (N·(N − 1))`` per input (the diagonal of the reference's matrices is 0 and contributes
nothing: ``relu(α·0 − 0) = 0``). The nested-scale loss (eq. 5) sums that term over the levels,
each level with the codes that made it; the per-input values are averaged over the batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["ndiv_one_input", "normalised_distances", "progressive_ndiv_loop"]


def normalised_distances(x: Tensor, eps: float = 1e-12) -> dict[tuple[int, int], Tensor]:
    """``{(i, j): d(x_i, x_j) / (Σ_j' d(x_i, x_j') + eps)}`` for ``i ≠ j``; ``x: [N, ...]``."""
    n = x.shape[0]
    dist = {(i, j): torch.norm(x[i] - x[j], p=2) for i in range(n) for j in range(n) if i != j}
    rows = [(sum(dist[i, j] for j in range(n) if j != i) + eps).detach() for i in range(n)]
    return {(i, j): d / rows[i] for (i, j), d in dist.items()}


def ndiv_one_input(z: Tensor, y: Tensor, alpha: float = 0.8, eps: float = 1e-12) -> Tensor:
    """NDiv of one input's ``N`` samples ``y: [N, ...]`` made by codes ``z: [N, ...]``: a scalar."""
    n = z.shape[0]
    dz, dy = normalised_distances(z, eps), normalised_distances(y, eps)
    total = sum(torch.relu(alpha * dz[pair] - dy[pair]) for pair in dz)
    return total / (n * (n - 1))


def progressive_ndiv_loop(
    codes: list[Tensor], levels: list[Tensor], n: int, alpha: float = 0.8, eps: float = 1e-12
) -> Tensor:
    """Eq. 5: ``Σ_k mean_b NDiv(codes[k] of input b, levels[k] of input b)``.

    ``levels[k]: [B·N, 3, H_k, W_k]`` and ``codes[k]: [B·N, D_k]``, samples ordered ``(b n)``
    (sample ``i`` of input ``b`` is row ``b·N + i``), as ``core.gan`` with ``samples_per_input``
    leaves them. Returns a float32 scalar.
    """
    total = levels[0].new_zeros((), dtype=torch.float32)
    for code, level in zip(codes, levels):
        b = level.shape[0] // n
        per_input = [
            ndiv_one_input(
                code[s * n : (s + 1) * n].float(), level[s * n : (s + 1) * n].float(), alpha, eps
            )
            for s in range(b)
        ]
        total = total + sum(per_input) / b
    return total
