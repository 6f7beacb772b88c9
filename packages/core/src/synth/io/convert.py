"""What converters from official checkpoints share.

Plugins that build their parts from a paper's released weights (``from_official`` and
friends) all read a checkpoint safely, strip wrapper prefixes from its keys, rename spectral
norm entries, load the mapped tensors and report what did not map. The helpers here do that
once:

- :func:`read_checkpoint`: a file (read with :func:`synth.io.weights.read_state_dict`, never
  unpickling code) or a mapping, as a plain ``dict`` with wrapper prefixes stripped;
  :func:`strip_key_prefixes` does the stripping alone.
- :func:`spectral_norm_key_to_torch` / :func:`spectral_norm_key_to_official`: the old hook
  style (``weight_orig``, ``weight_u``, ``weight_v``) and torch's parametrization
  (``parametrizations.weight.original``, ``parametrizations.weight.0._u``/``._v``).
- :func:`load_converted`: load a mapped state dict into a built part, raising on shape
  mismatches and reporting (or raising on) unmapped and missing keys.
- :class:`ConversionReport`: what a conversion did, usually kept on the part as
  ``part.conversion_report``.
- :func:`require_keys`: before a converter reads any key, check that the checkpoint has the
  keys it needs; else a :class:`~synth.errors.CheckpointError` says what the checkpoint looks
  like instead (:func:`describe_checkpoint`: another kind of network, a training state with no
  tensors, an unrelated model) — never a bare ``KeyError``.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from ..errors import CheckpointError
from .weights import read_state_dict

__all__ = [
    "ConversionReport",
    "describe_checkpoint",
    "load_converted",
    "read_checkpoint",
    "require_keys",
    "spectral_norm_key_to_official",
    "spectral_norm_key_to_torch",
    "strip_key_prefixes",
]

_SN_TO_TORCH = {
    "weight_orig": "parametrizations.weight.original",
    "weight_u": "parametrizations.weight.0._u",
    "weight_v": "parametrizations.weight.0._v",
}
_SN_TO_OFFICIAL = {v: k for k, v in _SN_TO_TORCH.items()}


@dataclass
class ConversionReport:
    """What a conversion did.

    Attributes:
        kind: what was converted, in the converter's words (e.g. ``"G"``, ``"D"``, ``"E"``).
        part: the class name of the part built.
        config: the part config inferred from the checkpoint's keys and shapes (also readable
            and settable as ``inferred``).
        unmapped: checkpoint keys that nothing maps to (sorted where the converter sorts).
        missing: keys the inferred architecture needs but the checkpoint lacks.
    """

    kind: str = ""
    part: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    unmapped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every checkpoint key was used and nothing is missing."""
        return not self.unmapped and not self.missing

    @property
    def inferred(self) -> dict[str, Any]:
        """Alias of :attr:`config`."""
        return self.config

    @inferred.setter
    def inferred(self, value: dict[str, Any]) -> None:
        self.config = value


def strip_key_prefixes(
    state: Mapping[str, Tensor],
    prefixes: Sequence[str] = ("module.",),
    *,
    only_if_all: bool = False,
) -> dict[str, Tensor]:
    """``state`` as a new dict with the wrapper ``prefixes`` removed from its keys.

    The prefixes are tried in order, each at most once per key, so ``("module.", "netG.")``
    turns ``module.netG.x`` into ``x``. With ``only_if_all`` a prefix is removed only when
    every key starts with it (a whole ``DataParallel``-wrapped dict), else it is left alone.
    """
    out = dict(state)
    for prefix in prefixes:
        if only_if_all:
            if out and all(k.startswith(prefix) for k in out):
                out = {k[len(prefix) :]: v for k, v in out.items()}
        else:
            out = {(k[len(prefix) :] if k.startswith(prefix) else k): v for k, v in out.items()}
    return out


def read_checkpoint(
    path_or_state_dict: str | Path | Mapping[str, Tensor],
    strip_prefixes: Sequence[str] = ("module.",),
    *,
    only_if_all: bool = False,
) -> dict[str, Tensor]:
    """A checkpoint's tensors as a plain ``dict``, wrapper prefixes stripped.

    Args:
        path_or_state_dict: a file, read with :func:`synth.io.weights.read_state_dict` (never
            unpickling code; it also unwraps ``state_dict``-style nesting and strips a
            ``module.`` prefix), or a mapping of names to tensors (copied, not changed).
        strip_prefixes: key prefixes removed where present, in order (see
            :func:`strip_key_prefixes`); ``()`` keeps the keys as read.
        only_if_all: remove a prefix only when every key has it.

    Raises:
        FileNotFoundError, ValueError: as :func:`synth.io.weights.read_state_dict`.
    """
    if isinstance(path_or_state_dict, Mapping):
        state = dict(path_or_state_dict)
    else:
        state = read_state_dict(path_or_state_dict)
    return strip_key_prefixes(state, strip_prefixes, only_if_all=only_if_all)


def spectral_norm_key_to_torch(key: str) -> str:
    """Rename an old-style spectral-norm key (``conv.weight_orig``, ``conv.weight_u``,
    ``conv.weight_v``) to torch's parametrization (``conv.parametrizations.weight.original``,
    ``....0._u``, ``....0._v``); any other key is returned unchanged."""
    head, dot, last = key.rpartition(".")
    if last not in _SN_TO_TORCH:
        return key
    return f"{head}{dot}{_SN_TO_TORCH[last]}"


def spectral_norm_key_to_official(key: str) -> str:
    """Inverse of :func:`spectral_norm_key_to_torch`; any other key is returned unchanged."""
    for ours, official in _SN_TO_OFFICIAL.items():
        if key == ours:
            return official
        if key.endswith("." + ours):
            return key[: -len(ours)] + official
    return key


def load_converted(
    part: nn.Module,
    mapped: Mapping[str, Tensor],
    unmapped: Iterable[str] = (),
    *,
    strict: bool,
    who: str,
    kind: str = "",
    config: dict[str, Any] | None = None,
    stacklevel: int = 1,
) -> ConversionReport:
    """Load ``mapped`` (keys already renamed to ``part``'s) into ``part`` and report.

    Args:
        part: the part built from the inferred config.
        mapped: converted tensors under ``part``'s state-dict keys.
        unmapped: checkpoint keys the converter could not rename; reported with the keys of
            ``mapped`` that ``part`` does not have.
        strict: raise when anything is unmapped or missing (``part`` is then left as it was);
            else load what fits and warn.
        who: the converter's name, leading every message (e.g. ``"from_official_spade"``).
        kind, config: stored in the report (with ``part``'s class name).
        stacklevel: the frame the warning is attributed to, counted from the caller of
            ``load_converted`` (1: the caller's line).

    Returns:
        The :class:`ConversionReport`; ``missing`` are ``part``'s keys ``mapped`` lacks.

    Raises:
        ValueError: a tensor's shape differs from ``part``'s (always), or with ``strict``,
            keys are unmapped or missing.
    """
    own = part.state_dict()
    bad = [k for k in mapped if k in own and own[k].shape != mapped[k].shape]
    if bad:
        shapes = {k: (tuple(mapped[k].shape), tuple(own[k].shape)) for k in bad[:5]}
        raise ValueError(
            f"{who}: converted tensors do not fit the inferred architecture "
            f"(key: (checkpoint shape, part shape)): {shapes}"
        )
    extra = [k for k in mapped if k not in own]
    report = ConversionReport(
        kind=kind,
        part=type(part).__name__,
        config={} if config is None else config,
        unmapped=sorted([*unmapped, *extra]),
        missing=sorted(k for k in own if k not in mapped),
    )
    msg = f"{who}: unmapped keys {report.unmapped[:10]}, missing keys {report.missing[:10]}"
    if strict and not report.ok:
        raise ValueError(msg)
    part.load_state_dict({k: v for k, v in mapped.items() if k in own}, strict=False)
    if not report.ok:
        warnings.warn(msg, stacklevel=stacklevel + 1)
    return report


# --------------------------------------------------------------------------- key checks


def describe_checkpoint(
    state: Mapping[str, Any], layouts: Mapping[str, str] | None = None, *, expected: str = ""
) -> str:
    """One sentence on what ``state`` looks like, for an error message.

    Args:
        state: the checkpoint as read (:func:`read_checkpoint`); its values may be anything.
        layouts: ``{description: regex}`` of the layouts the converter knows, e.g.
            ``{"a pix2pixHD discriminator (kind='D')": r"^scale0_layer0\\."}``; the first
            whose regex matches a tensor key names what the checkpoint is.
        expected: the description of the layout that was asked for (among ``layouts``): it is
            tried last, and matching it means keys are missing.
    """
    tensors = [k for k, v in state.items() if isinstance(v, Tensor)]
    if not state:
        return "The checkpoint is empty."
    if not tensors:
        shown = ", ".join(repr(k) for k in list(state)[:8])
        return (
            f"It holds no tensors: its keys are {shown} — a training state or a config, not a "
            "network's state dict; give the file or the dict of weights (from a file, "
            "synth.read_state_dict unwraps 'state_dict'/'model' nesting)."
        )
    known = dict(layouts or {})
    own = known.pop(expected, None)
    for description, pattern in known.items():
        if any(re.search(pattern, k) for k in tensors):
            return f"It looks like {description}."
    if own is not None and any(re.search(own, k) for k in tensors):
        return (
            f"It looks like {expected} with keys missing: a truncated file, or another "
            "version of the network."
        )
    top = Counter(k.split(".", 1)[0] for k in tensors).most_common(6)
    names = ", ".join(f"{name} ({n})" for name, n in top)
    return (
        f"It matches no layout this converter knows: {len(tensors)} tensors, top-level names "
        f"{names}; e.g. keys {tensors[:3]}."
    )


def require_keys(
    state: Mapping[str, Any],
    needed: Iterable[str | Sequence[str]],
    *,
    who: str,
    expected: str,
    layouts: Mapping[str, str] | None = None,
) -> None:
    """Check that ``state`` has every key a converter is about to read.

    Args:
        state: the checkpoint as read.
        needed: keys; an entry that is a tuple of keys is satisfied by any one of them (e.g.
            ``("conv.weight", "conv.weight_orig")`` with or without spectral norm).
        who: the converter (leads the message), e.g. ``"from_official('G')"``.
        expected: what the converter reads, in words (e.g. ``"an official pix2pixHD
            generator (kind='G')"``); a key of ``layouts`` when it is one of them.
        layouts: the layouts the converter knows, for :func:`describe_checkpoint`.

    Raises:
        CheckpointError: a needed key is absent or not a tensor; the message names the keys,
            says what the checkpoint looks like and how to fix the call.
    """
    missing = []
    for entry in needed:
        options = (entry,) if isinstance(entry, str) else tuple(entry)
        if not any(isinstance(state.get(k), Tensor) for k in options):
            missing.append(" or ".join(repr(k) for k in options))
    if missing:
        shown = ", ".join(missing[:4]) + (", ..." if len(missing) > 4 else "")
        raise CheckpointError(
            f"{who}: expected {expected}, but the checkpoint has no {shown}. "
            + describe_checkpoint(state, layouts, expected=expected)
        )
