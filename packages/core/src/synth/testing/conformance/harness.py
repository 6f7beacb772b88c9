"""The run (:class:`_Setup`) and the kind-agnostic base of the per-kind harnesses."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from ...parts.base import Generator, Part
from ...registry import Registry
from ..inputs import config_value
from .constants import CHECKS
from .report import _NotApplicable

# --------------------------------------------------------------------------- the run


@dataclasses.dataclass
class _Setup:
    name: str
    registry: Registry
    seed: int
    batch_size: int
    size: tuple[int, int]
    params: dict[str, Any]
    compile_backend: str
    override: Mapping[str, Any] | Callable[..., Mapping[str, Any]] | None = None

    def generator(self, offset: int = 0) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed + offset)

    def build(self, seed_offset: int = 0) -> Part:
        torch.manual_seed(self.seed + seed_offset)
        return self.registry.build(self.name, **self.params)


# --------------------------------------------------------------------------- harnesses


class _Harness:
    """Kind-specific knowledge: example inputs, running, validating, compiling."""

    kind: ClassVar[str] = ""
    keys: ClassVar[frozenset[str]] = frozenset()
    applicable: ClassVar[frozenset[str]] = frozenset(CHECKS)
    na_reason: ClassVar[str] = ""

    def __init__(self, setup: _Setup) -> None:
        self.s = setup

    # ---- inputs
    def size(self, part: Part) -> tuple[int, int]:
        return self.s.size

    def inputs(self, part: Part) -> dict[str, Any]:
        """Example inputs: the caller's override, else the part's ``example_inputs``, else
        defaults from its declared capabilities (for the keys neither gave)."""
        kwargs = {
            "batch_size": self.s.batch_size,
            "size": self.size(part),
            "generator": self.s.generator(),
        }
        given: dict[str, Any] = {}
        source = None
        if self.s.override is not None:
            source = "check_part(example_inputs=...)"
            ov = self.s.override
            given = dict(ov(**kwargs) if callable(ov) else ov)
        else:
            fn = getattr(part, "example_inputs", None)
            if callable(fn):
                source = f"{type(part).__name__}.example_inputs"
                given = dict(fn(**kwargs))
        unknown = sorted(set(given) - self.keys)
        if unknown:
            raise ValueError(
                f"{source} returned unknown key(s) {unknown}; a {self.kind} part's example "
                f"inputs are {sorted(self.keys)}"
            )
        missing = set(self.keys) - set(given)
        defaults = self.defaults(part, missing, self.s.generator(1)) if missing else {}
        return {**defaults, **given}

    def defaults(self, part: Part, missing: set[str], g: torch.Generator) -> dict[str, Any]:
        return {}

    def declared(self, part: Part) -> frozenset[str]:
        """What the default example inputs are made from."""
        return _requirements(part)

    def input_hint(self, part: Part) -> str:
        """The fix offered when running the part on its example inputs raises."""
        try:
            fields = sorted(self.declared(part))
        except Exception:
            fields = []
        return (
            "the default example inputs carry exactly the Condition/Latents fields the part "
            f"declares ({fields}): declare every field forward reads in `requires` / "
            "`requirements(config)`, or define example_inputs() if the defaults do not fit"
        )

    # ---- running
    def run(self, part: Part, inp: dict[str, Any], seed: int) -> Any:
        """Run the part on ``inp``; ``seed`` seeds its ``torch.Generator`` where it takes one."""
        raise _NotApplicable(f"{self.kind} parts are only built and configured by the kit")

    def validate(self, part: Part, inp: dict[str, Any], out: Any) -> list[tuple[str, str]]:
        return []

    def stochastic(self, part: Part) -> bool:
        """Whether outputs are drawn from the ``torch.Generator`` seed given to :meth:`run`."""
        return False

    def grad_leaves(self, inp: dict[str, Any]) -> dict[str, Tensor]:
        """Inputs that must receive a gradient (e.g. a block's ``x``)."""
        return {}

    def extra_grad_problems(self, part: Part) -> list[tuple[str, str]]:
        return []

    def compile_cases(
        self, part: Part
    ) -> list[tuple[str, Callable[..., Any], Callable[[], tuple], bool]]:
        """``(label, fn, make_args, exact)``: functions to compile with ``fullgraph=True``."""
        raise _NotApplicable(f"{self.kind} parts are not compiled")


def _requirements(part: Part) -> frozenset[str]:
    return frozenset(type(part).requirements(part.config))


def _num_classes(part: Part) -> int:
    """The part's class count: its config's, else what it offers others (a generator that
    wraps another, e.g. a pyramid adapter, has it in its runtime arguments), else 4."""
    offered = part.runtime_args() if isinstance(part, Generator) else {}
    return int(config_value(part.config, "num_classes", offered.get("num_classes") or 4))
