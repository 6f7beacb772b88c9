"""``from_official_srim``: official SRIM (niopeng/SRIM-pytorch) IMRRDBNet weights -> synth.

Official key layout (PAPERS.md § Conditional IMLE): ``model.0`` in-conv (3 + code channels),
``model.1.sub.{i}.RDB{1,2,3}.conv{1..5}.0.*`` (i < nb), ``model.1.sub.{nb}`` the LR conv,
upsampling convs at ``model.{3 + 3u}`` (u < log2 scale), the HR conv at ``model.{2 + 3n}``
and the last conv at ``model.{4 + 3n}`` (×8: ``model.{3,6,9}``, ``model.11``, ``model.13``).
nf, nb, gc, the code channels and the scale are read from the keys and shapes.

The weights cannot tell the output activation or the upsampling mode: the official configs
use ``last_act: sigmoid`` with nearest upsampling (``train_srim_cicada_x8.json``) and
``last_act: tanh`` with ``upsample_kernel_mode: bilinear`` (the fine-tune config), so the
converter reads them from the official options file (``official_options``) or requires
them (``last_act``, ``upsample``); it never guesses. The official network takes LR images
in [0, 1] and returns [0, 1]: ``(tanh(y) + 1) / 2`` or ``sigmoid(y)``. The converted
generator uses ``input_range="[0,1]"`` and returns ``tanh`` in [-1, 1], i.e.
``official = (ours + 1) / 2`` exactly: a sigmoid network is the same function with its last
conv halved, since ``sigmoid(y) = (tanh(y / 2) + 1) / 2``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from synth.errors import CheckpointError
from synth.io.convert import (
    load_converted,
    read_checkpoint,
    require_keys,
    strip_key_prefixes,
)

from .generators import RRDBGenerator

__all__ = ["from_official_srim", "infer_srim_config", "map_srim_keys", "read_srim_options"]

_RDB = re.compile(r"^model\.1\.sub\.(\d+)\.RDB([123])\.conv([1-5])\.0\.(weight|bias)$")
_TOP = re.compile(r"^model\.(\d+)\.(weight|bias)$")
_PREFIXES = ("module.", "netG.")
_SRIM = "an official SRIM IMRRDBNet generator"
#: What other checkpoints look like, for the error when the keys are not SRIM's.
LAYOUTS = {
    "a pix2pixHD checkpoint (synth_pix2pixhd.from_official)": (
        r"^(model\.\d+\.conv_block\.|model1_1\.|scale0_layer|layer0\.0\.)"
    ),
    "a SPADE/CLVAE checkpoint (synth_clvae.from_official_spade)": (
        r"^(head_0|discriminator_\d+|fc_mu)\."
    ),
    _SRIM: r"^model\.1\.sub\.",
}


def infer_srim_config(state: Mapping[str, Tensor]) -> dict[str, Any]:
    """``{nf, nb, gc, code_channels, scale}`` from an official IMRRDBNet state dict."""
    state = strip_key_prefixes(state, _PREFIXES)
    require_keys(
        state,
        ["model.0.weight", "model.1.sub.0.RDB1.conv1.0.weight"],
        who="from_official_srim",
        expected=_SRIM,
        layouts=LAYOUTS,
    )
    w0 = state["model.0.weight"]
    blocks = {int(m.group(1)) for k in state if (m := _RDB.match(k))}
    if not blocks:
        raise CheckpointError(
            "from_official_srim: no RRDB keys 'model.1.sub.<i>.RDB1.conv1.0.weight' found"
        )
    nb = max(blocks) + 1
    gc = int(state["model.1.sub.0.RDB1.conv1.0.weight"].shape[0])
    tops = sorted({int(m.group(1)) for k in state if (m := _TOP.match(k)) and int(m.group(1)) >= 2})
    n_up = len(tops) - 2
    if n_up < 1 or tops != [3 + 3 * u for u in range(n_up)] + [2 + 3 * n_up, 4 + 3 * n_up]:
        raise CheckpointError(f"from_official_srim: unexpected IMRRDBNet tail convs model.{tops}")
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
        raise CheckpointError(f"from_official_srim: official SRIM keys not mapped: {unmapped[:10]}")
    return out


def read_srim_options(options: str | Path | Mapping[str, Any]) -> dict[str, str]:
    """``{last_act, upsample}`` from an official SRIM options file (JSON with ``//`` comments,
    as ``options/options.py`` reads it) or its parsed dict (whole, or its ``network_G``).

    ``upsample_kernel_mode`` defaults to ``nearest`` as in the official ``define_G``; a
    ``last_act`` other than ``tanh``/``sigmoid`` (``use_sigmoid`` wins) raises.
    """
    if not isinstance(options, Mapping):
        text = Path(options).read_text()
        options = json.loads("\n".join(line.split("//")[0] for line in text.splitlines()))
    net = options.get("network_G", options)
    act = "sigmoid" if net.get("use_sigmoid") else net.get("last_act")
    if act not in ("tanh", "sigmoid"):
        raise ValueError(
            f"official SRIM options: network_G.last_act is {act!r}; only 'tanh' and 'sigmoid' "
            "outputs convert to cimle.rrdb_generator"
        )
    return {"last_act": act, "upsample": net.get("upsample_kernel_mode", "nearest")}


def from_official_srim(
    path_or_state_dict: str | Path | Mapping[str, Tensor],
    *,
    last_act: str | None = None,
    official_options: str | Path | Mapping[str, Any] | None = None,
    **options: Any,
) -> RRDBGenerator:
    """Build a ready :class:`RRDBGenerator` from official SRIM weights, the same function.

    Args:
        path_or_state_dict: a checkpoint file (read with :func:`synth.io.weights.read_state_dict`,
            never unpickling code) or a state dict.
        last_act: the official network's ``last_act``, ``"tanh"`` or ``"sigmoid"``.
        official_options: the official options JSON (path or dict) the weights were trained
            with; gives ``last_act`` and ``upsample`` (see :func:`read_srim_options`).
        options: further :class:`RRDBGenerator` config (e.g. ``upsample="bilinear"``);
            inferred fields may be given only if they agree.

    ``last_act`` and ``upsample`` are not in the weights: give them, or ``official_options``.
    """
    state = read_checkpoint(path_or_state_dict, strip_prefixes=())
    cfg: dict[str, Any] = infer_srim_config(state)
    given = dict(options)
    if last_act is not None:
        given["last_act"] = last_act
    if official_options is not None:
        for k, v in read_srim_options(official_options).items():
            if k in given and given[k] != v:
                raise ValueError(
                    f"from_official_srim: {k}={given[k]!r} but official_options say {v!r}"
                )
            given[k] = v
    missing = [k for k in ("last_act", "upsample") if k not in given]
    if missing:
        raise ValueError(
            f"from_official_srim: the weights do not say {missing}: pass "
            "official_options='path/to/train_*.json' (the options file they were trained "
            "with), or last_act='sigmoid' and upsample='nearest' (train_srim_cicada_x8.json) "
            "or last_act='tanh' and upsample='bilinear' (train_srim_cicada_fine_tune_x8.json)"
        )
    act = given.pop("last_act")
    if act not in ("tanh", "sigmoid"):
        raise ValueError(f"from_official_srim: last_act={act!r}; use 'tanh' or 'sigmoid'")
    for k, v in given.items():
        if k in cfg and cfg[k] != v:
            raise ValueError(f"from_official_srim: {k}={v!r} but the weights have {k}={cfg[k]!r}")
    gen = RRDBGenerator({**cfg, "input_range": "[0,1]", **given})
    n_up = cfg["scale"].bit_length() - 1
    mapped = map_srim_keys(state, n_up, cfg["nb"])
    if act == "sigmoid":
        # sigmoid(y) = (tanh(y/2) + 1) / 2: halving the last conv keeps the function exact
        for p in ("weight", "bias"):
            mapped[f"conv_last.{p}"] = mapped[f"conv_last.{p}"] * 0.5
    load_converted(gen, mapped, strict=True, who="from_official_srim")
    return gen.eval()
