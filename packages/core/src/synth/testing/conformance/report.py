"""What the checks found: :class:`CheckResult`, :class:`ConformanceReport`,
:class:`ConformanceError`, and the exceptions a check raises to report a problem.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from .constants import STATUSES


@dataclasses.dataclass
class CheckResult:
    """Outcome of one named check: ``status`` is "passed", "failed", "n/a" or "skipped"."""

    name: str
    status: str
    detail: str = ""
    fix: str = ""

    def line(self) -> str:
        text = f"  {self.status:<8} {self.name}"
        if self.detail:
            text += f": {self.detail}"
        if self.fix:
            text += f" — fix: {self.fix}"
        return text


@dataclasses.dataclass
class ConformanceReport:
    """What :func:`check_part` found for one part: one :class:`CheckResult` per check."""

    part: str
    kind: str
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    checks: dict[str, CheckResult] = dataclasses.field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when no check failed (n/a and skipped checks do not count as failures)."""
        return not self.failures

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks.values() if c.status == "failed"]

    def status(self, check: str) -> str:
        return self.checks[check].status

    def counts(self) -> dict[str, int]:
        return {s: sum(c.status == s for c in self.checks.values()) for s in STATUSES}

    def __str__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        counts = ", ".join(f"{n} {s}" for s, n in self.counts().items())
        head = f"conformance of {self.part!r} ({self.kind or 'unknown kind'})"
        if params:
            head += f" with {params}"
        return "\n".join([f"{head}: {counts}", *(c.line() for c in self.checks.values())])

    def raise_for_failures(self) -> ConformanceReport:
        """Raise :class:`ConformanceError` listing every failed check; return self otherwise."""
        if self.failures:
            raise ConformanceError(self)
        return self


class ConformanceError(AssertionError):
    """A part failed conformance checks; ``.report`` holds the full :class:`ConformanceReport`.

    The message lists each failing check with the part name, what was observed and the fix.
    """

    def __init__(self, report: ConformanceReport) -> None:
        self.report = report
        fails = report.failures
        lines = [
            f"{report.part} ({report.kind}) failed {len(fails)} of {len(report.checks)} "
            "conformance checks:"
        ]
        for c in fails:
            lines.append(
                f"  - {report.part} {c.name}: {c.detail}" + (f" — fix: {c.fix}" if c.fix else "")
            )
        lines += ["", str(report)]
        super().__init__("\n".join(lines))


class _Failed(Exception):
    """Raised inside a check: a list of ``(observed, fix)`` problems."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__(problems)
        self.problems = problems


class _NotApplicable(Exception):
    """Raised inside a check that does not apply to this part."""


class _Skipped(Exception):
    """Raised inside a check that cannot be judged (the reason names the check that can)."""


def _fail(observed: str, fix: str) -> None:
    raise _Failed([(observed, fix)])


class _Problems:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, observed: str, fix: str = "") -> None:
        self.items.append((observed, fix))

    def extend(self, items: Iterable[tuple[str, str]]) -> None:
        self.items.extend(items)

    def raise_if_any(self) -> None:
        if self.items:
            raise _Failed(self.items)
