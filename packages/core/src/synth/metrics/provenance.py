"""Where a metric's numbers come from: weights files and their SHA-256, package versions."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import torch

from ..errors import WeightsNotFoundError
from ..io.weights import resolve_weights

__all__ = ["dist_version", "file_sha256", "lpips_weights_info"]


@functools.lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file, cached while its size and modification time stay the same."""
    p = Path(path).expanduser().resolve()
    st = p.stat()
    return _sha256(str(p), st.st_size, st.st_mtime_ns)


def lpips_weights_info(net: str, weights: str) -> str | dict[str, Any]:
    """Which trunk weights file an LPIPS part built with ``net``/``weights`` reads.

    Follows the lookup of :class:`synth.parts.losses.LPIPS` (explicit file → ``$SYNTH_HOME/weights``
    → torch hub's cache, where a permitted download puts it). Returns ``"none"`` for a random
    trunk, else ``{"file": path, "sha256": hex}`` (``file`` ``None`` and the ``url`` when the
    file cannot be found on disk).
    """
    if weights == "none":
        return "none"
    from torchvision.models import get_model_weights

    from ..parts.losses import _LPIPS_TRUNKS

    url = get_model_weights(_LPIPS_TRUNKS[net]).IMAGENET1K_V1.url
    filename = url.rsplit("/", 1)[-1]
    try:
        path = resolve_weights(
            f"LPIPS {net} trunk",
            None if weights == "imagenet" else weights,
            filename=filename,
            url_hint=url,
        )
    except WeightsNotFoundError:
        path = None
    if path is None:
        hub = Path(torch.hub.get_dir()) / "checkpoints" / filename
        path = hub if hub.is_file() else None
    if path is None:
        return {"file": None, "sha256": None, "url": url}
    return {"file": str(path), "sha256": file_sha256(path)}


def dist_version(dist: str) -> str | None:
    """The installed version of distribution ``dist`` (``None`` when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None
