"""Build a data set from a ``{"type": name, **kwargs}`` spec (configs and the CLI)."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError
from .ade20k import ADE20K
from .base import SynthDataset
from .celeba import CelebA
from .cityscapes import Cityscapes
from .demo import demo
from .folders import Outpainting, PairedFolder, SuperResolution

__all__ = ["DATASETS", "build_dataset"]

#: Data set names usable in specs and configs.
DATASETS: dict[str, Callable[..., Any]] = {
    "paired_folder": PairedFolder,
    "cityscapes": Cityscapes,
    "ade20k": ADE20K,
    "celeba": CelebA,
    "super_resolution": SuperResolution,
    "outpainting": Outpainting,
    "demo": demo,
}


def _parameters(target: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    params = dict(inspect.signature(target).parameters)
    params.pop("self", None)
    return params


def build_dataset(spec: Mapping[str, Any]) -> SynthDataset:
    """Build ``DATASETS[spec["type"]](**rest)``.

    Raises:
        ConfigError: no or unknown ``type`` (with close matches), unknown arguments (listing
            the accepted ones) or missing required ones.
    """
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"a dataset spec is a mapping like {{'type': 'demo', 'size': 64}}, got "
            f"{type(spec).__name__}"
        )
    kwargs = dict(spec)
    name = kwargs.pop("type", None)
    if name is None:
        raise ConfigError(
            f"dataset spec {dict(spec)!r} has no 'type'; choose one of {', '.join(DATASETS)}"
        )
    if name not in DATASETS:
        close = difflib.get_close_matches(str(name), list(DATASETS), n=3, cutoff=0.5)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        raise ConfigError(
            f"unknown dataset type {name!r}{hint}. Known types: {', '.join(DATASETS)}"
        )
    target = DATASETS[name]
    params = _parameters(target)
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        accepted = [n for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL,)]
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown:
            hints = []
            for u in unknown:
                close = difflib.get_close_matches(u, accepted, n=1, cutoff=0.6)
                if close:
                    hints.append(f"{u!r} → {close[0]!r}?")
            hint = f" ({', '.join(hints)})" if hints else ""
            raise ConfigError(
                f"dataset {name!r} got unknown argument(s) {', '.join(map(repr, unknown))}"
                f"{hint}; it accepts: {', '.join(accepted)}"
            )
    required = [
        n
        for n, p in params.items()
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    missing = [n for n in required if n not in kwargs]
    if missing:
        raise ConfigError(
            f"dataset {name!r} needs argument(s) {', '.join(map(repr, missing))}; "
            f"it accepts: {', '.join(params)}"
        )
    return target(**kwargs)
