"""The conformance checks behind :func:`synth.testing.check_part` (DESIGN §8).

One *harness* per part kind knows how to make example inputs, run the part, validate its
output and which tensors to compare; the checks themselves are kind-agnostic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

from ...parts.base import Part
from ...registry import Registry, get_registry, using_registry
from .checks import _CHECK_FUNCS, _check_build
from .constants import CHECKS
from .constants import COMPILE_ATOL as COMPILE_ATOL
from .constants import COMPILE_RTOL as COMPILE_RTOL
from .constants import IMAGE_BOUND as IMAGE_BOUND
from .constants import LOSS_NEEDS as LOSS_NEEDS
from .constants import PHASES as PHASES
from .constants import STATUSES as STATUSES
from .harness import _Harness, _Setup
from .kinds import HARNESSES
from .report import (
    CheckResult,
    ConformanceError,
    ConformanceReport,
    _Failed,
    _NotApplicable,
    _Skipped,
)
from .tracebacks import _brief

__all__ = [
    "CHECKS",
    "CheckResult",
    "ConformanceError",
    "ConformanceReport",
    "check_part",
]


def check_part(
    name: str,
    *,
    registry: Registry | None = None,
    seed: int = 0,
    batch_size: int = 2,
    size: int | tuple[int, int] = 32,
    compile_backend: str = "eager",
    skip: Iterable[str] = (),
    example_inputs: Mapping[str, Any] | Callable[..., Mapping[str, Any]] | None = None,
    raise_on_failure: bool = True,
    config: Mapping[str, Any] | None = None,
    **params: Any,
) -> ConformanceReport:
    """Run the conformance checks (DESIGN §8) on the registered part ``name``.

    Builds the part with ``registry.build(name, **params)`` (runtime arguments such as
    ``channels=8`` may be given here) and runs the checks in :data:`CHECKS`. All checks run;
    failures are collected and raised together as :class:`ConformanceError` (unless
    ``raise_on_failure=False``). Returns the :class:`ConformanceReport`.

    Args:
        name: registered part name, e.g. ``"myplugin.block"``.
        registry: where to look it up (default: the process-wide registry).
        seed: seeds the builds (``torch.manual_seed``) and the example inputs.
        batch_size, size: of the example inputs (``size`` is ``H = W`` or ``(H, W)``).
        compile_backend: backend of the ``compile`` check (``"eager"``: tracing only, fast;
            ``"inductor"`` to also generate kernels).
        skip: names of checks not to run (reported as skipped, never as passed).
        example_inputs: overrides the example inputs: a dict, or a callable with the
            ``example_inputs`` protocol (see :mod:`synth.testing`).
        raise_on_failure: when False, return the report with failures instead of raising.
        config: config values whose names clash with this function's own arguments (a
            ``size`` or ``seed`` field), merged with ``params``.
        **params: the part's config (and runtime arguments).
    """
    skip = _checked_skip(skip)
    params = {**dict(config or {}), **params}
    reg = registry if registry is not None else get_registry()
    kind = reg.get(name).kind
    size2 = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    setup = _Setup(
        name, reg, seed, batch_size, size2, dict(params), compile_backend, example_inputs
    )
    harness = HARNESSES[kind](setup)
    report = ConformanceReport(name, kind, dict(params))
    with torch.random.fork_rng(devices=[]), using_registry(reg):
        holder: list[Part] = []
        _record(
            report,
            "build",
            lambda: _check_build(setup, harness, kind, holder),
            lambda: harness.input_hint(holder[0]) if holder else "see the error",
        )
        part = holder[0] if holder else None
        for check in CHECKS[1:]:
            reason = _not_run(report, check, skip, harness, part)
            if reason is not None:
                report.checks[check] = reason
                continue
            run = _CHECK_FUNCS[check]
            _record(
                report,
                check,
                lambda run=run: run(setup, harness, part),
                lambda: harness.input_hint(part),
            )
    if raise_on_failure:
        report.raise_for_failures()
    return report


def _checked_skip(skip: Iterable[str]) -> tuple[str, ...]:
    skip = tuple(skip)
    unknown = sorted(set(skip) - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown check(s) {unknown} in skip; checks are {list(CHECKS)}")
    if "build" in skip:
        raise ValueError("the 'build' check cannot be skipped: every other check needs the part")
    return skip


def _not_run(
    report: ConformanceReport,
    check: str,
    skip: tuple[str, ...],
    harness: _Harness,
    part: Part | None,
) -> CheckResult | None:
    """Why ``check`` is not run (skipped by the caller, not applicable to the kind, or an
    earlier failure it depends on), or ``None`` to run it."""
    if check in skip:
        return CheckResult(check, "skipped", f"skip={skip!r}")
    if check not in harness.applicable:
        return CheckResult(check, "n/a", harness.na_reason)
    if part is None:
        return CheckResult(check, "skipped", "not run: build failed")
    forward = report.checks.get("forward")
    # a forward that raised leaves nothing to compare; one that ran with wrong values does
    forward_raised = (
        forward is not None
        and forward.status == "failed"
        and (forward.detail.startswith("raised "))
    )
    if forward_raised and check != "config_roundtrip":
        return CheckResult(check, "skipped", "not run: forward raised an error")
    return None


def _record(
    report: ConformanceReport, check: str, fn: Callable[[], Any], hint: Callable[[], str]
) -> None:
    """Run one check and file its result: passed, failed (what was observed, the fix), n/a or
    skipped; an unexpected exception is a failure with a hint about the inputs."""
    try:
        fn()
    except _Failed as e:
        observed = "; ".join(o for o, _ in e.problems)
        fixes = list(dict.fromkeys(f for _, f in e.problems if f))
        report.checks[check] = CheckResult(check, "failed", observed, "; ".join(fixes))
    except _NotApplicable as e:
        report.checks[check] = CheckResult(check, "n/a", str(e))
    except _Skipped as e:
        report.checks[check] = CheckResult(check, "skipped", str(e))
    except Exception as e:
        report.checks[check] = CheckResult(check, "failed", f"raised {_brief(e)}", hint())
    else:
        report.checks[check] = CheckResult(check, "passed")
