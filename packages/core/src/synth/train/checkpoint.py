"""Checkpoint files: atomic writes of ``checkpoints/step-<7 digits>.pt``, keep-last-K, reading
with fall-back past a damaged file, and the RNG states that make a resume exact."""

from __future__ import annotations

import random
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io.files import atomic_write

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "Checkpoints",
    "rng_state",
    "seed_everything",
    "set_rng_state",
]

CHECKPOINT_FORMAT = "synth-checkpoint"
#: 2: LR schedulers (``schedulers``) and the EMA as ``{"weights", "n_averaged"}``;
#: 1: the schedule was recomputed from the step and ``ema`` was the generator's state dict.
CHECKPOINT_VERSION = 2


class CheckpointError(RuntimeError):
    """No readable checkpoint where one was expected."""


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every global RNG state of this process (torch CPU and CUDA, numpy, Python), as tensors
    and plain values (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "python": random.getstate(),
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


class Checkpoints:
    """The checkpoint folder of a run: ``step-<7 digits>.pt`` files, the newest ``keep_last``
    kept. Each holds a dict with ``format``/``version`` tags (what goes in is the Trainer's)."""

    def __init__(self, folder: Path, keep_last: int) -> None:
        self.folder, self.keep_last = Path(folder), keep_last

    def paths(self) -> list[Path]:
        """Checkpoint files, oldest first."""
        return sorted(self.folder.glob("step-*.pt"))

    def path(self, step: int) -> Path:
        return self.folder / f"step-{step:07d}.pt"

    def write(self, step: int, state: Mapping[str, Any]) -> Path:
        """Write atomically (a crash leaves the old files only), then drop all but the last K."""
        path = self.path(step)
        tagged = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: torch.save(tagged, f))
        for old in self.paths()[: -self.keep_last]:
            old.unlink(missing_ok=True)
        return path

    @staticmethod
    def read(path: Path) -> dict[str, Any]:
        """The state in ``path`` (tensors on the CPU; no pickled code runs)."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path} is not a synth checkpoint")
        if state.get("version", 1) > CHECKPOINT_VERSION:
            raise CheckpointError(
                f"{path} has checkpoint version {state['version']}, newer than this synth reads "
                f"({CHECKPOINT_VERSION}); upgrade synth-core"
            )
        return state

    def readable(self, path: Path | None = None) -> Iterator[tuple[Path, dict[str, Any]]]:
        """``(path, state)`` of the given file, or of the stored ones newest first, skipping
        (with a warning) files that cannot be read: a half-written or damaged file falls back
        to an older one. A given ``path`` that cannot be read is a :class:`CheckpointError`."""
        candidates = [Path(path)] if path is not None else list(reversed(self.paths()))
        for cand in candidates:
            try:
                state = self.read(cand)
            except Exception as e:
                if path is not None:
                    raise CheckpointError(f"cannot read checkpoint {cand}: {e}") from e
                warnings.warn(
                    f"checkpoint {cand} is unreadable ({type(e).__name__}: {e}); "
                    "trying the previous one",
                    stacklevel=3,
                )
                continue
            yield cand, state
        if path is None and candidates:
            raise CheckpointError(
                f"no readable checkpoint in {self.folder}; delete the folder to start over"
            )
