"""`Context`: what a conditioning block sees, with resizes cached per forward."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from .condition import Condition
from .latents import Latents
from .nn import ops

__all__ = ["Context"]


class Context:
    """Condition + latents + the current stage, with cached resized views (DESIGN §3).

    A generator makes one Context per forward and hands ``ctx.at(stage)`` to each block; every
    view shares one cache, so a label map is resized once per size per forward however many
    blocks read it.
    """

    __slots__ = ("_cache", "cond", "latents", "stage")

    def __init__(
        self,
        cond: Condition,
        latents: Latents | None = None,
        stage: int = 0,
        _cache: dict[Any, Tensor] | None = None,
    ) -> None:
        self.cond = cond
        self.latents = latents if latents is not None else Latents()
        self.stage = stage
        self._cache = {} if _cache is None else _cache

    def at(self, stage: int) -> Context:
        """The same context seen from another stage (shares the cache)."""
        return Context(self.cond, self.latents, stage, self._cache)

    def cached(self, key: Any, make: Callable[[], Any]) -> Any:
        """``make()``, computed once per forward for ``key`` and shared by every stage's view:
        for blocks that derive something from the condition (a resized map, a boundary
        mask). Keys are hashable; a plugin prefixes its own with its name (``("myplugin.mask",
        size)``), so that keys of different plugins never meet."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def distinct(self) -> Context:
        """The context of one row per group of copies (``Condition.repeats``; ``self`` when
        rows are distinct), without latents (they differ between copies). For blocks whose
        output depends on the condition alone: compute once per group, then broadcast over
        the copies. Its cache lives as long as this one."""
        if self.cond.repeats == 1:
            return self
        inner = self.cached(("distinct",), lambda: Context(self.cond.distinct()))
        return inner.at(self.stage)

    def _require(self, name: str) -> Tensor:
        t = getattr(self.cond, name)
        if t is None:
            raise ValueError(
                f"this block reads Condition.{name}, which the batch does not have; "
                f"give the Condition a {name}"
            )
        return t

    def labels(self, size: tuple[int, int]) -> Tensor:
        """``LongTensor[B, h, w]``: the label map resized nearest."""
        size = tuple(size)
        return self.cached(
            ("labels", size), lambda: ops.resize_labels(self._require("label_map"), size)
        )

    def one_hot(self, size: tuple[int, int]) -> Tensor:
        """``[B, K, h, w]`` one-hot of the label map at ``size``."""
        size = tuple(size)
        k = self.cond.num_classes
        return self.cached(("one_hot", size), lambda: ops.one_hot(self.labels(size), k))

    def class_weights(self, size: tuple[int, int]) -> Tensor:
        """``[B, K, h, w]`` class weights, area-averaged to ``size`` (still sums to 1)."""
        import torch.nn.functional as F

        size = tuple(size)

        def make() -> Tensor:
            w = self._require("class_weights")
            if tuple(w.shape[-2:]) == size:
                return w
            if w.shape[-2] % size[0] == 0 and w.shape[-1] % size[1] == 0:
                return F.adaptive_avg_pool2d(w, size)
            return F.interpolate(w, size=size, mode="bilinear", align_corners=False)

        return self.cached(("class_weights", size), make)

    def instance_edges(self, size: tuple[int, int]) -> Tensor:
        """``[B, 1, h, w]`` instance boundaries, computed at full size then resized nearest."""
        size = tuple(size)

        def make() -> Tensor:
            full = self.cached(
                ("edges", None), lambda: ops.instance_edges(self._require("instance_map"))
            )
            return ops.resize_labels(full, size) if tuple(full.shape[-2:]) != size else full

        return self.cached(("edges", size), make)
