"""Timing and machine description shared by the benchmark scripts in ``bench/``.

Every benchmark reports two kinds of rows:

* a *comparison* (:func:`compare`): the reference formulation (the official code's loops /
  dense layout) and ours, timed in the same process, **interleaved** (reference, ours, ours,
  reference, ...) so that load from other processes on a shared machine hits both alike; the
  row holds the median of each and ``ratio = reference_s / ours_s`` (> 1: ours is faster);
* a *variant* (:func:`variant`): one way of running our own code (eager, ``channels_last``,
  ``torch.compile``, a training throughput), with no reference and hence no ratio.

Rows are plain dicts with ``name``, ``setting`` and times in seconds, so a script can print
them, write them to JSON, or hand them to ``bench/run_all.py``.
"""

from __future__ import annotations

import ctypes
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

START = time.perf_counter()


def elapsed() -> str:
    """Time since this module was imported, as ``+MM:SS``."""
    seconds = int(time.perf_counter() - START)
    return f"+{seconds // 60:02d}:{seconds % 60:02d}"


def fmt_seconds(seconds: float) -> str:
    """``1.23 s`` / ``45.6 ms`` / ``789 µs``."""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def announce(row: dict[str, object]) -> None:
    """Print one finished row as a progress line (elapsed time first)."""
    if "ratio" in row:
        what = (
            f"reference {fmt_seconds(row['reference_s'])}, ours {fmt_seconds(row['ours_s'])}, "
            f"ratio {row['ratio']:.2f}"
        )
    else:
        what = fmt_seconds(row["seconds"])
    print(f"[{elapsed()}]   {row['name']}: {what}", flush=True)


def synchronizer(device: torch.device) -> Callable[[], None]:
    """A callable that waits for ``device``'s queued work (a no-op on CPU)."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(device: torch.device | str = "cpu") -> dict[str, object]:
    """CPU model, core count, torch/python versions, load average (and the GPU's name)."""
    device = torch.device(device)
    info: dict[str, object] = {
        "cpu": cpu_model(),
        "nproc": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak_rss() -> int | None:
    """Return freed memory to the OS, reset the process's peak RSS; the RSS (KiB) or None."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    return _rss_kib("VmRSS")


def _timed(fn: Callable[[], object], sync: Callable[[], None], memory: bool) -> tuple[float, float]:
    """``(seconds, peak RSS growth MiB or nan)`` of one call of ``fn``."""
    base = _reset_peak_rss() if memory else None
    sync()
    t = time.perf_counter()
    fn()
    sync()
    seconds = time.perf_counter() - t
    if base is None:
        return seconds, float("nan")
    return seconds, max(_rss_kib("VmHWM") - base, 0) / 1024


def compare(
    name: str,
    setting: str,
    reference: Callable[[], object],
    ours: Callable[[], object],
    *,
    repeats: int = 3,
    warmup: int = 1,
    device: torch.device | str = "cpu",
    memory: bool = False,
) -> dict[str, object]:
    """Time ``reference`` and ``ours`` interleaved; the medians and their ratio as a row.

    Each is called ``warmup`` times first (untimed), then ``repeats`` rounds alternate which
    one runs first. With ``memory=True`` (CPU only) the first timed call of each also records
    the growth of the process's peak RSS (``/proc/self/clear_refs``), in MiB.
    """
    sync = synchronizer(torch.device(device))
    memory = memory and torch.device(device).type == "cpu"
    for _ in range(warmup):
        reference()
        ours()
    runs: dict[str, list[float]] = {"reference": [], "ours": []}
    peaks: dict[str, float] = {}
    fns = {"reference": reference, "ours": ours}
    for r in range(repeats):
        order = ("reference", "ours") if r % 2 == 0 else ("ours", "reference")
        for key in order:
            seconds, peak = _timed(fns[key], sync, memory and r == 0)
            runs[key].append(seconds)
            if r == 0 and memory:
                peaks[key] = peak
    ref_s, ours_s = statistics.median(runs["reference"]), statistics.median(runs["ours"])
    row: dict[str, object] = {
        "name": name,
        "setting": setting,
        "reference_s": ref_s,
        "ours_s": ours_s,
        "ratio": ref_s / ours_s,
        "reference_runs_s": [round(t, 4) for t in runs["reference"]],
        "ours_runs_s": [round(t, 4) for t in runs["ours"]],
    }
    if peaks:
        row["reference_peak_mib"] = round(peaks["reference"], 1)
        row["ours_peak_mib"] = round(peaks["ours"], 1)
    announce(row)
    return row


def variant(
    name: str,
    setting: str,
    fn: Callable[[], object],
    *,
    repeats: int = 3,
    warmup: int = 1,
    device: torch.device | str = "cpu",
    **extra: object,
) -> dict[str, object]:
    """Median seconds of ``fn`` (after ``warmup`` untimed calls) as a variant row."""
    sync = synchronizer(torch.device(device))
    for _ in range(warmup):
        fn()
    runs = [_timed(fn, sync, False)[0] for _ in range(repeats)]
    row = {
        "name": name,
        "setting": setting,
        "seconds": statistics.median(runs),
        "runs_s": [round(t, 4) for t in runs],
        **extra,
    }
    announce(row)
    return row


def interleaved_variants(
    setting: str,
    fns: dict[str, Callable[[], object]],
    *,
    repeats: int = 3,
    warmup: int = 1,
    device: torch.device | str = "cpu",
) -> list[dict[str, object]]:
    """Like :func:`variant` for several ways of running the same thing, timed round-robin."""
    sync = synchronizer(torch.device(device))
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    runs: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            runs[name].append(_timed(fns[name], sync, False)[0])
    rows = [
        {
            "name": name,
            "setting": setting,
            "seconds": statistics.median(times),
            "runs_s": [round(t, 4) for t in times],
        }
        for name, times in runs.items()
    ]
    for row in rows:
        announce(row)
    return rows
