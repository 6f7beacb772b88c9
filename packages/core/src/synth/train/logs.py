"""The run's ``log.jsonl``: one line per ``log_every`` steps with the losses averaged since
the previous line, the lrs and the throughput (written by rank 0 only); the same line as plain
text on stderr when no progress bar is shown (:func:`progress_line`), and as TensorBoard
scalars when it is installed (:class:`TensorBoard`)."""

from __future__ import annotations

import importlib.util
import json
import math
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from ..errors import ConfigError

__all__ = ["RunLog", "TensorBoard", "progress_line"]


# --------------------------------------------------------------------------- plain progress
def progress_line(line: Mapping[str, Any], total: int, skip: Collection[str] = ()) -> str:
    """One log line as text for a non-TTY stderr (CI, ``nohup``, a log file)::

        step 20/100  epoch 1  g/total 0.6931  g/l1 0.1234  lr/generator 0.0002  0.153 s/step

    Every logged scalar but those in ``skip`` (an objective's settings) and the throughput.
    """
    head = f"step {line['step']}/{total}  epoch {line.get('epoch', 0)}"
    body = [
        f"{k} {v:.4g}"
        for k, v in line.items()
        if k not in ("step", "epoch") and k not in skip and not k.startswith("time/")
    ]
    speed = line.get("time/step_s")
    tail = [f"{speed:.3g} s/step"] if isinstance(speed, float) and math.isfinite(speed) else []
    return "  ".join([head, *body, *tail])


# --------------------------------------------------------------------------- TensorBoard
class TensorBoard:
    """The log lines as TensorBoard scalars (``torch.utils.tensorboard.SummaryWriter``) in
    ``run_dir/tensorboard``; after a resume at step N, events past N are purged (they are
    replayed, as in ``log.jsonl``)."""

    def __init__(self, log_dir: Path, resumed_at: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(log_dir), purge_step=resumed_at)

    @staticmethod
    def wanted(setting: bool | None) -> bool:
        """``train.tensorboard``: None = when the tensorboard package is installed; True
        without it is an error naming the install."""
        installed = importlib.util.find_spec("tensorboard") is not None
        if setting and not installed:
            raise ConfigError(
                "train.tensorboard = true but the tensorboard package is not installed: "
                "pip install tensorboard (or set train.tensorboard: false)"
            )
        return installed if setting is None else setting

    def add(self, line: Mapping[str, Any]) -> None:
        step = int(line["step"])
        for k, v in line.items():
            if k != "step" and isinstance(v, (int, float)) and math.isfinite(v):
                self.writer.add_scalar(k, v, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


# --------------------------------------------------------------------------- log.jsonl


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

    def flush(
        self, head: Mapping[str, Any], lrs: Mapping[str, float], images: int
    ) -> dict[str, Any]:
        """Write ``head`` (step, epoch), the averaged scalars, ``lr/<network>`` and the time
        per step and images per second (``images`` per step over all ranks); returns the line."""
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
        return line

    def curve_keys(self, exclude: Collection[str], settings: Collection[str]) -> list[str] | None:
        """The losses of the whole log (resumed parts included), in first-logged order: every
        numeric entry but ``step``, those whose first path segment is in ``exclude`` (``lr``,
        ``time``, ...) and an objective's ``settings`` (e.g. a chunk size). None without a log file."""
        if not self.path.is_file():
            return None
        keys: dict[str, None] = {}
        for ln in self.path.read_text().splitlines():
            try:
                rec = json.loads(ln)
            except json.JSONDecodeError:
                continue
            for k, v in rec.items() if isinstance(rec, dict) else ():
                numeric = isinstance(v, (int, float)) and not isinstance(v, bool)
                excluded = k == "step" or k in settings or k.split("/", 1)[0].lower() in exclude
                if numeric and not excluded:
                    keys[k] = None
        return list(keys)

    def shown(self) -> dict[str, str]:
        """What the progress bar shows: the totals, else the first four scalars."""
        keys = [k for k in self.last if k.endswith("/total")] or list(self.last)[:4]
        return {k: f"{self.last[k]:.3g}" for k in keys}
