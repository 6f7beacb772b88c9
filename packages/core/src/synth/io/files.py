"""Atomic writes and safetensors-ready state: what every writer of models and checkpoints uses."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from torch import Tensor

__all__ = ["atomic_write", "unshare_storage"]


def unshare_storage(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """safetensors refuses tensors that share storage: copy the second and later sharers."""
    seen: set[tuple[int, int]] = set()
    out = {}
    for k, v in state.items():
        v = v.detach()
        key = (v.untyped_storage().data_ptr(), v.untyped_storage().nbytes())
        if key in seen or not v.is_contiguous():
            v = v.clone().contiguous()
        seen.add(key)
        out[k] = v
    return out


def atomic_write(target: Path, write: Callable[[str], object]) -> None:
    """Write ``target`` through ``write(tmp_path)`` then rename, so a crash never leaves half a
    file: readers see the old file or the new one."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
