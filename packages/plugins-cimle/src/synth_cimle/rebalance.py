"""Rebalancing (§5.2.4): rarity scores, the rebalanced batch sampler and the rarity mask.

- Per image k and class p: the mean colour ``c_k(p)`` of the class's pixels (vectorised with
  ``scatter_add``).
- Per class p: a Gaussian KDE ``D_p`` over ``{c_k(p)}`` (Scott's bandwidth, full data
  covariance: the same estimator as ``scipy.stats.gaussian_kde``), evaluated for all classes
  at once with padded support sets.
- Rarity ``R_p(k) = 1 / D_p(c_k(p))`` where p appears in image k, else 0. With
  ``min_count`` (official layout code: 67) a class seen in at most that many images gets no
  KDE and rarity 0 everywhere (skipped, as the official code skips it).
- Dataset rebalancing: a batch is split over the five classes of largest total area; within
  class p images are drawn with probability ∝ ``R_p(k)`` (:class:`RarityBatchSampler`,
  :class:`RebalancedDataset` for the Trainer's fixed data order).
- Loss rebalancing: ``M_ij = R_p(k)`` for pixels of class p, normalised by its maximum
  (:meth:`RarityModel.mask`), fed to ``cimle.distance``.

Scores are cached under ``$SYNTH_HOME/cache/cimle/rarity-<key>.safetensors`` where the key
hashes the data set's class, length and ``repr``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from einops import rearrange
from torch import Tensor

__all__ = [
    "RarityBatchSampler",
    "RarityModel",
    "RebalancedDataset",
    "class_mean_colours",
    "kde_density",
    "rarity_scores",
]


def class_mean_colours(real: Tensor, labels: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """``c_k(p)`` (§5.2.4): ``real [B,3,H,W]``, ``labels [B,H,W]`` -> means ``[B,K,3]`` and
    pixel counts ``[B,K]`` (means are 0 where a class is absent)."""
    b = real.shape[0]
    flat_l = rearrange(labels, "b h w -> b (h w)").long()
    flat_x = rearrange(real.float(), "b c h w -> b (h w) c")
    sums = torch.zeros(b, num_classes, 3, device=real.device)
    sums.scatter_add_(1, flat_l[..., None].expand(-1, -1, 3), flat_x)
    counts = torch.zeros(b, num_classes, device=real.device)
    counts.scatter_add_(1, flat_l, torch.ones_like(flat_l, dtype=torch.float32))
    means = sums / counts.clamp_min(1)[..., None]
    return means, counts


def _kde_params(points: Tensor, present: Tensor, jitter: float) -> tuple[Tensor, Tensor]:
    """Per class: Cholesky factor of the KDE covariance ``[K,3,3]`` and ``log norm`` ``[K]``.

    ``points [K, N, 3]`` (padded), ``present [K, N]`` bool. Scott's factor
    ``n^(-1/(d+4))``; covariance = unbiased data covariance × factor² (scipy's definition).
    """
    d = points.shape[-1]
    w = present.double()
    cnt = w.sum(1).clamp_min(1)
    mean = (points.double() * w[..., None]).sum(1) / cnt[:, None]
    diff = (points.double() - mean[:, None]) * w[..., None]
    cov = torch.einsum("kni,knj->kij", diff, diff) / (cnt - 1).clamp_min(1)[:, None, None]
    factor = cnt ** (-1.0 / (d + 4))
    cov = cov * factor[:, None, None] ** 2 + jitter * torch.eye(d, dtype=torch.float64)
    chol = torch.linalg.cholesky(cov)
    log_det = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    log_norm = -0.5 * (d * math.log(2 * math.pi) + log_det)
    return chol, log_norm


def kde_density(
    queries: Tensor, points: Tensor, present: Tensor, jitter: float = 1e-9, chunk: int = 2**24
) -> Tensor:
    """Gaussian KDE density per class: ``queries [K, Q, 3]`` under class k's KDE over
    ``points [K, N, 3]`` (``present [K, N]`` marks real points) -> ``[K, Q]`` (float64).

    ``D_k(q) = (1/n_k) Σ_i N(q; x_ki, Σ_k)`` with ``Σ_k = cov_k · n_k^(-2/(d+4))``. Points and
    queries are whitened by ``L_k^{-1}`` (``Σ_k = L_k L_kᵀ``), squared distances come from a
    batched ``cdist``; queries are processed in chunks of at most ``chunk`` (K·q·N) entries.
    """
    chol, log_norm = _kde_params(points, present, jitter)
    eye = torch.eye(chol.shape[-1], dtype=chol.dtype).expand_as(chol)
    inv_t = torch.linalg.solve_triangular(chol, eye, upper=False).transpose(-1, -2)
    wp = points.double() @ inv_t  # [K, N, 3]
    wq = queries.double() @ inv_t  # [K, Q, 3]
    k, q, n = wq.shape[0], wq.shape[1], wp.shape[1]
    cnt = present.sum(1).clamp_min(1).double()
    step = max(1, chunk // max(1, k * n))
    out = []
    for s in range(0, q, step):  # memory-budget chunks
        maha = torch.cdist(
            wq[:, s : s + step], wp, compute_mode="donot_use_mm_for_euclid_dist"
        ).square()
        logk = (-0.5 * maha + log_norm[:, None, None]).masked_fill(
            ~present[:, None, :], float("-inf")
        )
        out.append(torch.logsumexp(logk, dim=-1).exp() / cnt[:, None])
    return torch.cat(out, dim=1)


@dataclass
class RarityModel:
    """Fitted per-class colour KDEs: ``points [K, N, 3]``, ``present [K, N]``, ``area [K]``
    (total pixels per class), ``scores [N, K]`` (``R_p(k)`` of the fitting images)."""

    points: Tensor
    present: Tensor
    area: Tensor
    scores: Tensor

    @property
    def num_classes(self) -> int:
        return int(self.points.shape[0])

    def density(self, colours: Tensor) -> Tensor:
        """``colours [B, K, 3]`` -> ``D_p(c)`` per image and class ``[B, K]``."""
        d = kde_density(rearrange(colours, "b k c -> k b c"), self.points, self.present)
        return rearrange(d, "k b -> b k")

    def rarity(self, real: Tensor, labels: Tensor) -> Tensor:
        """``R_p(k)`` of new images: ``real [B,3,H,W]``, ``labels [B,H,W]`` -> ``[B, K]``."""
        means, counts = class_mean_colours(real, labels, self.num_classes)
        dens = self.density(means.to(self.points.device)).to(real.device)
        r = 1.0 / dens.clamp_min(1e-300)
        # classes without a fitted KDE (never seen, or skipped by min_count) get 0
        known = self.present.any(1).to(real.device)
        return torch.where((counts > 0) & known, r, torch.zeros_like(r)).float()

    def mask(self, real: Tensor, labels: Tensor) -> Tensor:
        """Normalised rarity mask ``M̂ = M / max M`` ``[B, 1, H, W]`` with ``M_ij = R_p(k)``."""
        r = self.rarity(real, labels)
        m = torch.gather(r, 1, rearrange(labels, "b h w -> b (h w)").long())
        m = m / m.amax(dim=1, keepdim=True).clamp_min(1e-30)
        return rearrange(m, "b (h w) -> b 1 h w", h=labels.shape[-2])

    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        save_file(
            {
                "points": self.points.contiguous(),
                "present": self.present.to(torch.uint8).contiguous(),
                "area": self.area.contiguous(),
                "scores": self.scores.contiguous(),
            },
            str(tmp),
        )
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> RarityModel:
        from synth.io.weights import read_state_dict

        sd = read_state_dict(Path(path))
        return cls(sd["points"], sd["present"].bool(), sd["area"], sd["scores"])


def _dataset_key(dataset: Any, key: str | None) -> str:
    text = (
        key or f"{type(dataset).__module__}.{type(dataset).__qualname__}|{len(dataset)}|{dataset!r}"
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cache_path(dataset: Any, key: str | None, min_count: int = 0) -> Path:
    from synth.io.weights import synth_home

    tag = _dataset_key(dataset, key) + (f"-min{min_count}" if min_count else "")
    return synth_home() / "cache" / "cimle" / f"rarity-{tag}.safetensors"


def rarity_scores(
    dataset: Sequence[dict[str, Any]],
    *,
    num_classes: int | None = None,
    cache: bool = True,
    key: str | None = None,
    min_count: int = 0,
) -> RarityModel:
    """Fit the rarity model of a data set with ``real`` and ``label_map`` items (§5.2.4).

    Returns a :class:`RarityModel`; ``model.scores [N, K]`` are ``R_p(k)`` (0 where class p is
    absent from image k). Loading items is a loop over the data set (I/O); the colour means,
    the KDEs and the densities are vectorised. Cached (``cache=True``) under
    ``$SYNTH_HOME/cache/cimle/`` keyed by the data set (or ``key``) and ``min_count``.

    ``min_count``: classes present in at most this many images are skipped (no KDE, rarity
    0; the official layout code skips classes seen in ≤ 67 images). 0 keeps every class.
    """
    if min_count < 0:
        raise ValueError(f"rarity_scores: min_count={min_count}; give a count >= 0")
    path = _cache_path(dataset, key, min_count)
    if cache and path.is_file():
        return RarityModel.load(path)
    k = num_classes if num_classes is not None else getattr(dataset, "num_classes", None)
    if k is None:
        raise ValueError("rarity_scores needs num_classes (the data set does not say)")
    means, counts = [], []
    for i in range(len(dataset)):
        item = dataset[i]
        mu, cnt = class_mean_colours(item["real"][None], item["label_map"][None], k)
        means.append(mu[0])
        counts.append(cnt[0])
    mean_t = torch.stack(means)  # [N, K, 3]
    count_t = torch.stack(counts)  # [N, K]
    present = (count_t > 0).T.contiguous()  # [K, N]
    present &= present.sum(1, keepdim=True) > min_count  # skip rarely seen classes
    points = rearrange(mean_t, "n k c -> k n c").contiguous().double()
    dens = kde_density(points, points, present)  # [K, N]
    scores = torch.where(present, 1.0 / dens.clamp_min(1e-300), torch.zeros_like(dens)).T
    model = RarityModel(points, present, count_t.sum(0).double(), scores.contiguous())
    if cache:
        model.save(path)
    return model


def _allocation(batch_size: int, parts: int) -> list[int]:
    base, extra = divmod(batch_size, parts)
    return [base + (i < extra) for i in range(parts)]


class RarityBatchSampler:
    """Batches of indices allocated to the ``top`` largest-area classes (§5.2.4).

    Each batch gives class p (one of the ``top`` classes by total area) ``batch_size / top``
    slots, filled by drawing images with probability ∝ ``R_p(k)`` (with replacement). Epoch
    ``e`` is drawn from ``Generator().manual_seed(seed + e)``: deterministic.
    """

    def __init__(
        self,
        scores: Tensor,
        area: Tensor,
        batch_size: int,
        num_batches: int,
        *,
        top: int = 5,
        seed: int = 0,
    ) -> None:
        self.scores = scores.double()
        # classes with rarity somewhere (not absent, not skipped by min_count)
        usable = (area > 0) & (self.scores.sum(0) > 0)
        top = min(top, int(usable.sum()))
        ranked = torch.where(usable, area.double(), torch.full_like(area.double(), -1.0))
        self.classes = torch.argsort(ranked, descending=True)[:top]
        self.alloc = _allocation(batch_size, top)
        self.batch_size, self.num_batches, self.seed, self.epoch = (
            batch_size,
            num_batches,
            seed,
            0,
        )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def weights(self) -> Tensor:
        """Sampling probabilities per chosen class ``[top, N]`` (rows sum to 1)."""
        w = self.scores[:, self.classes].T
        return w / w.sum(1, keepdim=True)

    def draw(self, generator: torch.Generator) -> Tensor:
        """All batches of one epoch: ``[num_batches, batch_size]`` indices."""
        w = self.weights()
        cols = [
            rearrange(
                torch.multinomial(
                    w[i], self.num_batches * a, replacement=True, generator=generator
                ),
                "(n a) -> n a",
                a=a,
            )
            for i, a in enumerate(self.alloc)
            if a > 0
        ]
        return torch.cat(cols, dim=1)

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        yield from self.draw(g).tolist()


class RebalancedDataset:
    """A view of ``dataset`` whose item ``i`` of epoch e is the rebalanced draw ``i`` (§5.2.4).

    For the core Trainer (which owns a fixed permutation order): every epoch draws
    ``len(dataset)`` indices with :class:`RarityBatchSampler` (blocks of ``block`` items, one
    block = one allocation over the top classes), seeded by ``(seed, epoch)``; the Trainer's
    permutation of positions keeps the class proportions per epoch exactly.
    """

    def __init__(
        self, dataset: Any, model: RarityModel, *, top: int = 5, block: int = 10, seed: int = 0
    ) -> None:
        self.dataset, self.model, self.seed = dataset, model, seed
        n = len(dataset)
        self.sampler = RarityBatchSampler(
            model.scores, model.area, block, -(-n // block), top=top, seed=seed
        )
        self.fields = getattr(dataset, "fields", frozenset())
        self.num_classes = getattr(dataset, "num_classes", None)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        self.order = rearrange(self.sampler.draw(g), "n b -> (n b)")[: len(self.dataset)]

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.dataset[int(self.order[index])]

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)
