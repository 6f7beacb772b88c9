"""Batching items into a :class:`Batch` of a validated :class:`synth.Condition`."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..condition import CONDITION_FIELDS, Condition

__all__ = ["Batch", "collate", "make_collate"]


@dataclass
class Batch:
    """One training/evaluation batch.

    Attributes:
        cond: the :class:`synth.Condition` (validated once, in :func:`collate`).
        real: ``FloatTensor[B, 3, H, W]`` target photos in ``[-1, 1]``.
        index: ``LongTensor[B]`` the dataset index of each item.
    """

    cond: Condition
    real: Tensor
    index: Tensor

    def __len__(self) -> int:
        return int(self.real.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """Move every tensor to ``device`` (no re-validation of the condition)."""
        return Batch(
            cond=self.cond.to(device, non_blocking=non_blocking),
            real=self.real.to(device, non_blocking=non_blocking),
            index=self.index.to(device, non_blocking=non_blocking),
        )

    def pin_memory(self) -> Batch:
        """Page-locked copy (``DataLoader(pin_memory=True)`` calls this)."""
        return Batch(
            cond=self.cond.map(lambda t: t.pin_memory()),
            real=self.real.pin_memory(),
            index=self.index.pin_memory(),
        )


def _stack(items: Sequence[Mapping[str, Any]], key: str) -> Tensor:
    values = [it[key] for it in items]
    if key == "class_id":
        return torch.stack([torch.as_tensor(v, dtype=torch.long).reshape(()) for v in values])
    shapes = {tuple(v.shape) for v in values}
    if len(shapes) > 1:
        raise ValueError(
            f"collate: the items' {key!r} have different shapes {sorted(shapes)}; items of one "
            "batch must be the same size: give the dataset a size (or crop), or use batch size 1"
        )
    return torch.stack(values)


def collate(items: Sequence[Mapping[str, Any]], num_classes: int | None) -> Batch:
    """Stack dataset items into a :class:`Batch`.

    Every item must have ``"real"`` and ``"index"`` and the same condition fields. The
    :class:`~synth.Condition` is built with ``num_classes`` and ``size`` = the size of
    ``real``, and validated there, once per batch.
    """
    if not items:
        raise ValueError("collate got no items")
    first = set(items[0])
    for it in items[1:]:
        if set(it) != first:
            raise ValueError(
                f"collate: items have different fields ({sorted(first)} vs {sorted(it)}; "
                f"item index {it.get('index')}); one dataset gives every item the same fields"
            )
    missing = {"real", "index"} - first
    if missing:
        raise ValueError(f"collate: items lack {sorted(missing)}; see synth.data.base")
    real = _stack(items, "real")
    fields = {k: _stack(items, k) for k in CONDITION_FIELDS if k in first}
    index = torch.as_tensor([int(it["index"]) for it in items], dtype=torch.long)
    cond = Condition(
        **fields,
        num_classes=num_classes,
        size=(int(real.shape[-2]), int(real.shape[-1])),
    )
    return Batch(cond=cond, real=real, index=index)


def make_collate(dataset: Any) -> Callable[[Sequence[Mapping[str, Any]]], Batch]:
    """``collate`` bound to ``dataset.num_classes``; picklable, for ``DataLoader`` workers."""
    return functools.partial(collate, num_classes=getattr(dataset, "num_classes", None))
