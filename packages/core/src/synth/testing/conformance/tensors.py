"""Tensor helpers: flattening outputs, comparing them, finiteness, projections, state."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ...condition import Condition


def _flatten(obj: Any, prefix: str = "out") -> dict[str, Tensor]:
    """Every tensor (and number) in a nested output, by a readable path."""
    out: dict[str, Tensor] = {}
    if isinstance(obj, Tensor):
        out[prefix] = obj
    elif isinstance(obj, bool) or obj is None or isinstance(obj, str):
        pass
    elif isinstance(obj, (int, float)):
        out[prefix] = torch.tensor(float(obj))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{prefix}[{i}]"))
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}[{k!r}]"))
    elif isinstance(obj, Condition):
        pass
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            out.update(_flatten(getattr(obj, f.name), f"{prefix}.{f.name}"))
    return out


def _max_diff(a: Tensor, b: Tensor) -> float:
    if not (a.is_floating_point() or a.is_complex()):
        return float((a != b).sum())
    d = (a.detach().double() - b.detach().double()).abs()
    d = torch.where(torch.isnan(a.detach()) & torch.isnan(b.detach()), 0.0, d)
    return float(d.max()) if d.numel() else 0.0


def _compare(
    a: dict[str, Tensor],
    b: dict[str, Tensor],
    *,
    exact: bool = True,
    values: bool = True,
    rtol: float = 0.0,
    atol: float = 0.0,
) -> list[str]:
    """Differences between two flattened outputs, as readable strings."""
    diffs: list[str] = []
    if set(a) != set(b):
        only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        diffs.append(f"different outputs: {only_a} only in the first, {only_b} only in the second")
    for k in [k for k in a if k in b]:
        x, y = a[k], b[k]
        if x.shape != y.shape or x.dtype != y.dtype:
            diffs.append(f"{k}: {tuple(x.shape)} {x.dtype} vs {tuple(y.shape)} {y.dtype}")
            continue
        if not values:
            continue
        xd, yd = x.detach(), y.detach()
        if exact:
            same = torch.equal(xd, yd) or (
                xd.is_floating_point() and bool(torch.equal(xd.nan_to_num(), yd.nan_to_num()))
            )
        else:
            same = bool(
                torch.allclose(xd.float(), yd.float(), rtol=rtol, atol=atol, equal_nan=True)
            )
        if not same:
            diffs.append(f"{k} differs (max |diff| = {_max_diff(xd, yd):.3g})")
    return diffs


def _nonfinite(tensors: dict[str, Tensor]) -> list[str]:
    return [
        k
        for k, t in tensors.items()
        if t.is_floating_point() and not bool(torch.isfinite(t.detach()).all())
    ]


def _projection(tensors: dict[str, Tensor], seed: int) -> Tensor | None:
    """A scalar that depends on every element of every differentiable output.

    A random projection rather than a plain sum: the sum of a normalised output is constant,
    so a sum would leave e.g. a norm's affine weight without gradient.
    """
    g = torch.Generator().manual_seed(seed)
    total: Tensor | None = None
    for t in tensors.values():
        if not (t.is_floating_point() and t.requires_grad):
            continue
        w = torch.randn(t.shape, generator=g).to(t.device)
        term = (t.float() * w).sum() / math.sqrt(max(t.numel(), 1))
        total = term if total is None else total + term
    return total


def _state(part: Any) -> dict[str, Tensor]:
    return dict(part.state_dict()) if isinstance(part, nn.Module) else {}


def _mode(part: Any, train: bool) -> None:
    if isinstance(part, nn.Module):
        part.train(train)
