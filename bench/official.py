"""The authors' own code as a benchmark reference, from a local checkout (issue 18).

A comparison row is only as honest as its reference. When a checkout of the paper's official
repository is on disk, a benchmark imports the authors' modules from it (never vendored: the
SPADE-derived code is licensed for non-commercial use only) and times them against ours with the
same weights, outputs asserted equal. Without a checkout it falls back to the project's
re-implementation of the official layout and says so in the row's ``reference`` field.

Where a checkout is found, in order: the script's ``--official PATH`` argument, then the
environment variable named in :data:`REPOS` (e.g. ``SYNTH_OFFICIAL_SPADE=/src/SPADE``).

    git clone https://github.com/NVlabs/SPADE /src/SPADE
    SYNTH_OFFICIAL_SPADE=/src/SPADE uv run python bench/run_all.py
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Repo:
    """One official repository: where it lives upstream, its env var, and a file that marks it."""

    github: str
    env: str
    marker: str  # a path relative to the checkout's root that only this repository has


REPOS: dict[str, Repo] = {
    "pix2pixhd": Repo("NVIDIA/pix2pixHD", "SYNTH_OFFICIAL_PIX2PIXHD", "models/pix2pixHD_model.py"),
    "spade": Repo("NVlabs/SPADE", "SYNTH_OFFICIAL_SPADE", "data/coco_dataset.py"),
    "clvae": Repo(
        "endo-yuki-t/DiversifyingSMIS", "SYNTH_OFFICIAL_DIVERSIFYINGSMIS", "data/gta5_dataset.py"
    ),
    "cimle": Repo("niopeng/SRIM-pytorch", "SYNTH_OFFICIAL_SRIM", "codes/models/SRIM_model.py"),
}

REIMPLEMENTATION = "re-implementation of the official layout (no official checkout given)"


def checkout(name: str, path: str | os.PathLike | None = None) -> Path | None:
    """The local checkout of ``REPOS[name]``: ``path`` if given, else its env var, else None.

    Raises ``FileNotFoundError`` naming the expected marker file when a given path is not that
    repository (a wrong path must not silently fall back to the re-implementation).
    """
    repo = REPOS[name]
    given = path if path is not None else os.environ.get(repo.env)
    if not given:
        return None
    root = Path(given).expanduser().resolve()
    if not (root / repo.marker).is_file():
        raise FileNotFoundError(
            f"{root} is not a checkout of {repo.github}: {repo.marker} is missing there "
            f"(set {repo.env} or --official to the repository's root)"
        )
    return root


def label(name: str, root: Path | None) -> str:
    """The ``reference`` field of a row: which code the reference times ran."""
    if root is None:
        return REIMPLEMENTATION
    return f"official code: {REPOS[name].github} @ {commit(root)} ({root})"


def commit(root: Path) -> str:
    """The checkout's git commit (short), or ``unknown commit`` for an exported tree."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        marker = root / "COMMIT"  # written by whoever exported the tree without .git
        return marker.read_text().strip() if marker.is_file() else "unknown commit"


@contextlib.contextmanager
def imported(root: Path, subdir: str = "") -> Iterator[None]:
    """Import the authors' top-level packages (``models``, ``util``, ...) from ``root/subdir``.

    Their packages have generic names (``models``, ``options``, ``util``) that would clash with
    each other's and stay cached in ``sys.modules``: on exit the modules imported from the
    checkout are dropped and ``sys.path`` is restored, so two repositories can be used in one
    process one after the other. Objects built inside stay usable afterwards.
    """
    base = str((root / subdir).resolve()) if subdir else str(root.resolve())
    before = set(sys.modules)
    sys.path.insert(0, base)
    try:
        yield
    finally:
        sys.path.remove(base)
        for mod in set(sys.modules) - before:
            file = getattr(sys.modules[mod], "__file__", None) or ""
            if file.startswith(base):
                del sys.modules[mod]
