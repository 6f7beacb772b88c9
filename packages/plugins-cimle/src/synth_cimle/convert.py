"""``from_official_srim``: official SRIM (niopeng/SRIM-pytorch) IMRRDBNet weights -> synth.

Official key layout (PAPERS.md § Conditional IMLE): ``model.0`` in-conv (3 + code channels),
``model.1.sub.{i}.RDB{1,2,3}.conv{1..5}.0.*`` (i < nb), ``model.1.sub.{nb}`` the LR conv,
upsampling convs at ``model.{3 + 3u}`` (u < log2 scale), the HR conv at ``model.{2 + 3n}``
and the last conv at ``model.{4 + 3n}`` (×8: ``model.{3,6,9}``, ``model.11``, ``model.13``).
nf, nb, gc, the code channels and the scale are read from the keys and shapes. The official
network takes LR images in [0, 1] and maps ``tanh`` to [0, 1]; the converted generator uses
``input_range="[0,1]"`` and returns ``tanh`` in [-1, 1], i.e. ``official = (ours + 1) / 2``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from synth.io.convert import load_converted, read_checkpoint, strip_key_prefixes

from .generators import RRDBGenerator

__all__ = ["from_official_srim", "infer_srim_config", "map_srim_keys"]

_RDB = re.compile(r"^model\.1\.sub\.(\d+)\.RDB([123])\.conv([1-5])\.0\.(weight|bias)$")
_TOP = re.compile(r"^model\.(\d+)\.(weight|bias)$")
_PREFIXES = ("module.", "netG.")


def infer_srim_config(state: Mapping[str, Tensor]) -> dict[str, Any]:
    """``{nf, nb, gc, code_channels, scale}`` from an official IMRRDBNet state dict."""
    state = strip_key_prefixes(state, _PREFIXES)
    if "model.0.weight" not in state:
        raise ValueError(
            f"not an official IMRRDBNet state dict: no 'model.0.weight' (keys e.g. {list(state)[:5]})"
        )
    w0 = state["model.0.weight"]
    blocks = {int(m.group(1)) for k in state if (m := _RDB.match(k))}
    if not blocks:
        raise ValueError("no RRDB keys 'model.1.sub.<i>.RDB1.conv1.0.weight' found")
    nb = max(blocks) + 1
    gc = int(state["model.1.sub.0.RDB1.conv1.0.weight"].shape[0])
    tops = sorted({int(m.group(1)) for k in state if (m := _TOP.match(k)) and int(m.group(1)) >= 2})
    n_up = len(tops) - 2
    if n_up < 1 or tops != [3 + 3 * u for u in range(n_up)] + [2 + 3 * n_up, 4 + 3 * n_up]:
        raise ValueError(f"unexpected IMRRDBNet tail convs model.{tops}")
    return {
        "nf": int(w0.shape[0]),
        "nb": nb,
        "gc": gc,
        "code_channels": int(w0.shape[1]) - 3,
        "scale": 2**n_up,
    }


def map_srim_keys(state: Mapping[str, Tensor], n_up: int, nb: int) -> dict[str, Tensor]:
    """Official keys -> :class:`RRDBGenerator` keys (non-hierarchical). Unmapped keys raise."""
    state = strip_key_prefixes(state, _PREFIXES)
    out: dict[str, Tensor] = {}
    top = {0: "conv_first", 2 + 3 * n_up: "hr_conv", 4 + 3 * n_up: "conv_last"}
    top.update({3 + 3 * u: f"stages.{u + 1}.conv" for u in range(n_up)})
    unmapped = []
    for k, v in state.items():
        if m := _RDB.match(k):
            i, r, c, p = m.groups()
            out[f"stages.0.blocks.{i}.rdbs.{int(r) - 1}.convs.{int(c) - 1}.{p}"] = v
        elif k.startswith(f"model.1.sub.{nb}."):
            out[f"stages.0.conv.{k.rsplit('.', 1)[1]}"] = v
        elif (m := _TOP.match(k)) and int(m.group(1)) in top:
            out[f"{top[int(m.group(1))]}.{m.group(2)}"] = v
        else:
            unmapped.append(k)
    if unmapped:
        raise ValueError(f"official SRIM keys not mapped: {unmapped[:10]}")
    return out


def from_official_srim(
    path_or_state_dict: str | Path | Mapping[str, Tensor], **options: Any
) -> RRDBGenerator:
    """Build a ready :class:`RRDBGenerator` from official SRIM weights.

    Args:
        path_or_state_dict: a checkpoint file (read with :func:`synth.io.weights.read_state_dict`,
            never unpickling code) or a state dict.
        options: further :class:`RRDBGenerator` config (e.g. ``upsample="bilinear"``);
            inferred fields may be given only if they agree.
    """
    state = read_checkpoint(path_or_state_dict, strip_prefixes=())
    cfg = infer_srim_config(state)
    for k, v in options.items():
        if k in cfg and cfg[k] != v:
            raise ValueError(f"from_official_srim: {k}={v!r} but the weights have {k}={cfg[k]!r}")
    gen = RRDBGenerator({**cfg, "input_range": "[0,1]", **options})
    n_up = cfg["scale"].bit_length() - 1
    mapped = map_srim_keys(state, n_up, cfg["nb"])
    load_converted(gen, mapped, strict=True, who="from_official_srim")
    return gen.eval()
