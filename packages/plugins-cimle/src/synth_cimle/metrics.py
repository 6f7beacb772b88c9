"""``cimle.faithfulness_weighted_variance`` (§5.1.5).

``M = Σ_i Σ_j w_ij · d(ỹ_ij, ȳ_j)``, ``w_ij = exp(−d(ỹ_ij, y_j) / (2σ²))``, where ``ỹ_ij`` is
sample i of input j, ``ȳ_j`` the mean sample of input j (pixel mean), ``y_j`` the ground
truth and ``d`` LPIPS. Reported as the mean over samples and inputs (Table 1 reports the
average), once per bandwidth σ.
"""

from __future__ import annotations

from typing import Any

import torch
from einops import rearrange, repeat
from pydantic import Field
from torch import Tensor

from synth import Loss, Metric, PartConfig, PartSpec

__all__ = ["FaithfulnessWeightedVariance", "faithfulness_weighted_variance"]


def faithfulness_weighted_variance(
    d_mean: Tensor, d_truth: Tensor, sigmas: list[float]
) -> dict[float, Tensor]:
    """``mean_ij exp(−d_truth_ij / (2σ²)) · d_mean_ij`` per σ; ``d_*: [B, n]`` distances of
    each sample to the mean sample and to the ground truth."""
    return {s: (torch.exp(-d_truth / (2 * s * s)) * d_mean).mean() for s in sigmas}


class FaithfulnessWeightedVariance(Metric):
    """Faithfulness-weighted variance (§5.1.5) at several bandwidths σ (Table 1: 0.3, 0.2, 0.15).

    ``update(samples [B, n, 3, H, W], target [B, 3, H, W])``; ``compute()`` ->
    ``{"fwv@<σ>": float, ..., "settings": {...}}``. ``distance`` is an image-distance loss spec
    (default ``core.lpips``, AlexNet, as in the paper).
    """

    class Config(PartConfig):
        sigmas: list[float] = Field(default_factory=lambda: [0.3, 0.2, 0.15])
        distance: PartSpec = Field(default_factory=lambda: {"type": "core.lpips"})
        batch_size: int = Field(64, ge=1, description="images per distance pass")

    config: Config

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._distance: Loss | None = None
        self._sums = {s: 0.0 for s in self.config.sigmas}
        self._count = 0
        self._n: int | None = None

    def reset(self) -> None:
        self._sums = {s: 0.0 for s in self.config.sigmas}
        self._count, self._n = 0, None

    def distance_part(self) -> Loss:
        if self._distance is None:
            from synth import build

            part = build(self.config.distance)
            assert isinstance(part, Loss)
            self._distance = part.eval()
        return self._distance

    def _dist(self, x: Tensor, y: Tensor) -> Tensor:
        d = self.distance_part()
        bs = self.config.batch_size
        return torch.cat([d.distance(x[s : s + bs], y[s : s + bs]) for s in range(0, len(x), bs)])

    @torch.no_grad()
    def update(self, samples: Tensor, target: Tensor) -> None:
        """``samples [B, n, 3, H, W]`` (n samples per input), ``target [B, 3, H, W]``."""
        if samples.ndim != 5 or target.ndim != 4 or samples.shape[0] != target.shape[0]:
            raise ValueError(
                f"faithfulness_weighted_variance.update(samples [B, n, 3, H, W], target "
                f"[B, 3, H, W]), got {tuple(samples.shape)} and {tuple(target.shape)}"
            )
        b, n = samples.shape[:2]
        mean = repeat(samples.mean(1), "b c h w -> (b n) c h w", n=n)
        flat = rearrange(samples, "b n c h w -> (b n) c h w")
        truth = repeat(target, "b c h w -> (b n) c h w", n=n)
        d_mean = rearrange(self._dist(flat, mean).float(), "(b n) -> b n", n=n)
        d_truth = rearrange(self._dist(flat, truth).float(), "(b n) -> b n", n=n)
        for s, v in faithfulness_weighted_variance(d_mean, d_truth, self.config.sigmas).items():
            self._sums[s] += float(v) * b * n
        self._count += b * n
        self._n = n

    def compute(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            f"fwv@{s:g}": self._sums[s] / max(self._count, 1) for s in self.config.sigmas
        }
        out["settings"] = {
            "distance": dict(self.config.distance),
            "sigmas": list(self.config.sigmas),
            "samples_per_input": self._n,
            "num_samples": self._count,
        }
        return out
