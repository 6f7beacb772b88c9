"""The run's ``log.jsonl``: one line per ``log_every`` steps with the losses averaged since
the previous line, the lrs and the throughput (written by rank 0 only)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

__all__ = ["RunLog"]


class RunLog:
    """Accumulates the logged scalars of each step (:meth:`add`) and writes their averages
    as one JSON line (:meth:`flush`); ``last`` holds the averages of the latest line."""

    def __init__(self, path: Path, *, writer: bool) -> None:
        self.path, self.writer = Path(path), writer
        self.last: dict[str, float] = {}
        self._sums: dict[str, float] = {}
        self._count = 0
        self._tick = time.perf_counter()

    def start(self, resumed_at: int | None) -> None:
        """Begin a ``fit``: a fresh log, or after a resume at step N the old one without the
        lines of steps after N (they are replayed, not repeated)."""
        self._sums, self._count, self._tick = {}, 0, time.perf_counter()
        if not self.writer:
            return
        if resumed_at is None:
            self.path.unlink(missing_ok=True)
        elif self.path.exists():
            keep = [
                ln
                for ln in self.path.read_text().splitlines()
                if ln.strip() and json.loads(ln).get("step", 0) <= resumed_at
            ]
            self.path.write_text("".join(ln + "\n" for ln in keep))

    def add(self, logs: Mapping[str, Tensor]) -> None:
        for k, v in logs.items():
            self._sums[k] = self._sums.get(k, 0.0) + float(v)
        self._count += 1

    def flush(self, head: Mapping[str, Any], lrs: Mapping[str, float], images: int) -> None:
        """Write ``head`` (step, epoch), the averaged scalars, ``lr/<network>`` and the time
        per step and images per second (``images`` per step over all ranks)."""
        elapsed = time.perf_counter() - self._tick
        n = max(self._count, 1)
        self.last = {k: v / n for k, v in self._sums.items()}
        line = {**head, **self.last, **{f"lr/{k}": v for k, v in lrs.items()}}
        line["time/step_s"] = elapsed / n
        line["time/images_per_s"] = n * images / elapsed if elapsed > 0 else float("inf")
        if self.writer:
            with open(self.path, "a") as f:
                f.write(json.dumps(line) + "\n")
        self._sums, self._count, self._tick = {}, 0, time.perf_counter()

    def shown(self) -> dict[str, str]:
        """What the progress bar shows: the totals, else the first four scalars."""
        keys = [k for k in self.last if k.endswith("/total")] or list(self.last)[:4]
        return {k: f"{self.last[k]:.3g}" for k in keys}
