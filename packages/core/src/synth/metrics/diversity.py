"""``core.lpips_diversity``: mean pairwise LPIPS over the samples of each input."""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor

from ..config import PartConfig
from ..extras import require
from ..parts.base import Metric
from ..parts.losses import LPIPS
from .provenance import dist_version, lpips_weights_info

__all__ = ["LPIPSDiversity"]

#: Rough floats kept per pixel per image pair by one LPIPS forward (features of both images,
#: their normalised copies and differences), used to size chunks to ``memory_budget_mb``.
_LPIPS_FLOATS_PER_PIXEL = {"alex": 96, "squeeze": 256, "vgg": 1024}


class LPIPSDiversity(Metric):
    """Mean pairwise LPIPS between the samples of each input (higher = more diverse).

    For each input with ``N`` samples, the LPIPS distance of every unordered pair ``i < j``
    (``N(N-1)/2`` pairs) is averaged; ``compute()`` averages these per-input means over all
    inputs (``"lpips_diversity"``) and gives their standard deviation (``"std"``, over inputs,
    ddof 0). The pairs of all inputs of one ``update`` are built with ``torch.triu_indices``,
    gathered and scored by batched LPIPS calls of at most ``pairs_per_batch`` pairs (default:
    as many as fit in about ``memory_budget_mb``) — no Python loop over pairs or inputs.

    ``max_pairs`` caps the pairs scored per input: when ``N(N-1)/2`` is larger, ``max_pairs``
    pairs evenly spaced in ``triu`` order are used (deterministic; every sample still takes
    part in about the same number of pairs).

    The distance is the ``core.lpips`` loss part (:class:`synth.parts.losses.LPIPS`, the lpips
    package's network and linear layers) with the same weights policy: ``weights="imagenet"``
    (torchvision's trunk file, explicit → cache → download unless ``SYNTH_OFFLINE=1``), a file
    path, or ``"none"`` (a random trunk, for tests).
    """

    class Config(PartConfig):
        net: Literal["alex", "vgg", "squeeze"] = "alex"
        weights: str = "imagenet"
        version: str = Field("0.1", description="LPIPS linear-layer version")
        max_pairs: int | None = Field(None, ge=1, description="pairs scored per input at most")
        pairs_per_batch: int | None = Field(
            None, ge=1, description="pairs per LPIPS forward (default: from memory_budget_mb)"
        )
        memory_budget_mb: float = Field(
            1024.0, gt=0, description="approximate memory one LPIPS forward may use"
        )

    config: Config
    _means: list[Tensor]  # per-input mean distances [B] of each update
    _n: int | None  # samples per input, fixed by the first update
    _size: tuple[int, int] | None
    _pairs: int | None  # pairs scored per input

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        c = self.config
        require("lpips", extra="metrics", needed_by="synth.metrics.LPIPSDiversity")
        self.lpips = LPIPS(net=c.net, weights=c.weights, version=c.version)
        self._weights_info: str | dict[str, Any] | None = None
        self.add_state("_means", [])
        for name in ("_n", "_size", "_pairs"):
            self.add_state(name, None)

    def to(self, device: torch.device | str) -> LPIPSDiversity:
        self.lpips.to(device)
        return self

    def example_inputs(
        self, *, batch_size: int, size: tuple[int, int], generator: torch.Generator
    ) -> dict[str, Any]:
        """Conformance-kit inputs: one ``[B, N, 3, H, W]`` update and one flat ``(b n)`` one."""
        n = 3
        grouped = torch.tanh(torch.randn(batch_size, n, 3, *size, generator=generator))
        flat = torch.tanh(torch.randn(batch_size * n, 3, *size, generator=generator))
        return {"updates": [{"samples": grouped}, {"samples": flat, "n": n}]}

    def _grouped(self, samples: Tensor, n: int | None) -> Tensor:
        who = "core.lpips_diversity"
        if not isinstance(samples, Tensor):
            raise TypeError(f"{who}: samples must be a Tensor, got {type(samples).__name__}")
        if samples.dim() == 4:
            if n is None:
                raise ValueError(
                    f"{who}: samples {tuple(samples.shape)} are flat [B·N, 3, H, W]; pass n= "
                    "(samples per input, ordered (b n) as samplers return them) or give "
                    "[B, N, 3, H, W]"
                )
            if n < 1 or samples.shape[0] % n:
                raise ValueError(
                    f"{who}: {samples.shape[0]} samples cannot be split into groups of n={n}"
                )
            samples = samples.reshape(samples.shape[0] // n, n, *samples.shape[1:])
        elif samples.dim() == 5:
            if n is not None and n != samples.shape[1]:
                raise ValueError(
                    f"{who}: n={n} but samples {tuple(samples.shape)} hold {samples.shape[1]} "
                    "samples per input"
                )
        else:
            raise ValueError(
                f"{who}: samples must be [B, N, 3, H, W] (or [B·N, 3, H, W] with n=), got "
                f"{tuple(samples.shape)}"
            )
        if samples.shape[2] != 3:
            raise ValueError(f"{who}: LPIPS needs RGB samples, got {samples.shape[2]} channels")
        if samples.shape[1] < 2:
            raise ValueError(
                f"{who}: diversity needs at least 2 samples per input, got {samples.shape[1]}"
            )
        if not bool(torch.isfinite(samples).all()):
            raise ValueError(f"{who}: samples contain NaN or Inf values")
        return samples

    def pair_indices(self, n: int, device: torch.device | str = "cpu") -> Tensor:
        """``[2, P]`` sample indices ``(i, j)``, ``i < j``, of the pairs scored per input."""
        iu = torch.triu_indices(n, n, offset=1, device=device)
        m = self.config.max_pairs
        if m is not None and iu.shape[1] > m:
            keep = torch.linspace(0, iu.shape[1] - 1, m, device=device).round().long()
            iu = iu[:, keep]
        return iu

    def _chunk(self, h: int, w: int) -> int:
        if self.config.pairs_per_batch is not None:
            return self.config.pairs_per_batch
        per_pair = _LPIPS_FLOATS_PER_PIXEL[self.config.net] * h * w * 4
        return max(1, int(self.config.memory_budget_mb * 2**20 // per_pair))

    @torch.no_grad()
    def per_input(self, samples: Tensor, n: int | None = None) -> Tensor:
        """Mean pairwise LPIPS of each input's samples: ``[B]`` (float32), nothing recorded."""
        x = self._grouped(samples, n)
        b, k, c, h, w = x.shape
        self.lpips.to(x.device)
        iu = self.pair_indices(k, x.device)  # [2, P]
        p = iu.shape[1]
        base = torch.arange(b, device=x.device)[:, None] * k  # [B, 1]
        first = (base + iu[0]).reshape(-1)  # [B·P], ordered (b p)
        second = (base + iu[1]).reshape(-1)
        flat = x.reshape(b * k, c, h, w).float()
        step = self._chunk(h, w)
        d = torch.cat(
            [
                self.lpips.distance(flat[first[s : s + step]], flat[second[s : s + step]])
                for s in range(0, b * p, step)
            ]
        )
        return d.float().reshape(b, p).mean(1)

    def update(self, samples: Tensor, n: int | None = None) -> None:
        """Add inputs: ``samples [B, N, 3, H, W]`` in [-1, 1] (or ``[B·N, 3, H, W]``, ``n=N``)."""
        x = self._grouped(samples, n)
        k, size = int(x.shape[1]), (int(x.shape[-2]), int(x.shape[-1]))
        if self._n is not None and (k, size) != (self._n, self._size):
            raise ValueError(
                f"core.lpips_diversity: this update has n={k} samples of size {size} per input "
                f"but earlier ones had n={self._n}, size {self._size}; one result needs one "
                "setting (call reset() or use another metric)"
            )
        means = self.per_input(x)
        self._n, self._size = k, size
        self._pairs = int(self.pair_indices(k).shape[1])
        self._means.append(means.detach().double().cpu())

    def compute(self) -> dict[str, Any]:
        """``{"lpips_diversity", "std", "num_inputs", "settings"}``."""
        if not self._means:
            raise ValueError("core.lpips_diversity: nothing to compute; call update(samples) first")
        m = torch.cat(self._means)
        if self._weights_info is None:
            self._weights_info = lpips_weights_info(self.config.net, self.config.weights)
        return {
            "lpips_diversity": float(m.mean()),
            "std": float(m.std(correction=0)),
            "num_inputs": int(m.numel()),
            "settings": {
                "net": self.config.net,
                "weights": self._weights_info,
                "lpips_version": self.config.version,
                "lpips_package": dist_version("lpips"),
                "resolution": list(self._size) if self._size else None,
                "n": self._n,
                "pairs_per_input": self._pairs,
            },
        }
