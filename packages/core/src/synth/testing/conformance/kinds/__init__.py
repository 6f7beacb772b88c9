"""One harness per part kind: how to make example inputs, run the part, validate its output
and which tensors to compare."""

from __future__ import annotations

from ....parts.base import KINDS
from ..harness import _Harness
from .conditioning import _Conditioning
from .discriminator import _Discriminator
from .generator import _Generator
from .injector import _Injector
from .loss import _Loss
from .metric import _Metric
from .objective import _Objective
from .sampler import _Sampler

HARNESSES: dict[str, type[_Harness]] = {
    h.kind: h
    for h in (
        _Conditioning,
        _Injector,
        _Generator,
        _Discriminator,
        _Loss,
        _Sampler,
        _Metric,
        _Objective,
    )
}
assert set(HARNESSES) == set(KINDS)
