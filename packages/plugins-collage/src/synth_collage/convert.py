"""``from_official``: the authors' Chainer snapshots (pfnet-research/neural-collage) as synth
models.

The files are Chainer ``.npz`` archives, read with ``numpy.load(path, allow_pickle=False)``
(no code runs while loading). Conv ``W`` is OIHW and Linear ``W`` is ``[out, in]`` as in
PyTorch, so weights copy over unchanged. The architecture is inferred from keys and shapes:

Generator (``kind="G"``; ``gen_models/resnet_small_scbn.py`` = 128 px, ``resnet_256_scbn.py`` =
256 px, any width and class count; the plain-CBN ``ResNetGenerator`` saves the same keys):
``l1/{W,b}`` (``W [bw²·C_0, dim_z]``), ``blockN/{c1,c2,c_sc}/{W,b}``,
``blockN/b{1,2}/{gammas/W, betas/W, avg_mean, avg_var, N}`` for ``N = 2 ..``, then the final
plain BN ``b{last}/{gamma,beta,avg_mean,avg_var,N}`` and conv ``l{last}/{W,b}``.

Discriminator (``kind="D"``; ``SNResNetProjectionDiscriminator``): ``block1`` (the optimized
block) .. ``blockN`` with ``{c1,c2,c_sc}/{W,b,u}``, ``l{N+1}/{W,b,u}`` and ``l_y/{W,u}``;
``u`` is the spectral norm's left singular vector estimate, which becomes the parametrization's
``_u``/``_v`` so eval-mode outputs equal Chainer's first test-mode call (its ``SNLinear`` and
``SNEmbedID`` write ``u`` back on every call, test mode too). Widths come from ``c2/W``; ``c1``
keeps each block's input width in ``snresnet_small.py`` (``hidden: in``) and takes the output
width in ``snresnet_256.py`` (``hidden: out``).

Encoder (``kind="E"``; ``enc_models/resnetenc_small.py`` / ``resnetenc_256.py``): stem
``l1/{W,b}`` (128 px) or ``block1/{W,b}`` (256 px), ``blockN/{c1,c2,c_sc}/{W,b}`` with norms
``blockN/b{1,2}/{gamma,beta}`` (batch norm) or ``{gammas/W,betas/W}`` (categorical CBN, the
dog+cat encoders with ``n_classes`` 143) plus ``avg_mean``/``avg_var``, the final linear
``l7/{W,b}`` or ``l8_enc/{W,b}`` and ``prelu_out/W``. ``resnetenc_small.py`` also saves a
``b7`` batch norm that its forward never applies: reported as ignored, not loaded.

Auxiliary networks (``kind="AB"``; ``gen_models/resnet_*_auxab.py``, the whole
``ResNetAuxABGenerator``): ``lA1``, ``lA2``, ``preluMiddleW/W`` (A) and ``lB1``, ``lB2``,
``preluW/W`` (B) -> :class:`~synth_collage.auxiliary.AuxiliaryNetworks`; the generator half of
the same file loads with ``kind="G"``, the learned inner step ``_fast_alpha/W`` is ignored.

More kinds register in :data:`CONVERTERS` (``kind -> converter(arrays, overrides)``) and
:data:`ANCHORS` (how to find the network in a trainer snapshot).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import synth

__all__ = ["CONVERTERS", "ConversionReport", "from_official", "read_npz"]


@dataclass
class ConversionReport:
    """What a conversion used: the inferred config, and keys nobody mapped or filled."""

    config: dict[str, Any]
    unmapped: list[str] = field(default_factory=list)  # in the file, not used
    missing: list[str] = field(default_factory=list)  # in the model, not in the file
    ignored: list[str] = field(default_factory=list)  # known and unused (Chainer's BN `N`)


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------


#: ``kind -> (anchor keys, keys that rule a candidate network out)``: a trainer snapshot holds
#: every network under a prefix (``updater/model:gen/``, ``updater/optimizer:gen/…``); the
#: network of ``kind`` is the prefix under which an anchor key sits.
ANCHORS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "G": (("l1/W", "block2/b1/gammas/W"), ("prelu_out/W", "l_y/W")),
    "D": (("l_y/W", "block1/c1/W"), ("l1/W", "prelu_out/W")),
    "E": (("prelu_out/W",), ()),
    "AB": (("lA1/W",), ()),
}


def read_npz(path: str | Path, kind: str = "G") -> dict[str, np.ndarray]:
    """The arrays of a Chainer ``.npz``, keys relative to the network of ``kind`` (a trainer
    snapshot's ``updater/model:gen/`` style prefix is removed; see :data:`ANCHORS`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"from_official: no file at {path}; give the path of the .npz")
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    anchors, exclude = ANCHORS.get(kind, (("l1/W", "block1/c1/W"), ()))
    for suffix in anchors:
        if suffix in arrays:
            return arrays
        prefixes = {k[: -len(suffix)] for k in arrays if k.endswith("/" + suffix)}
        # optimizer states repeat the model's keys with their own prefix and extra leaves
        prefixes = {
            p
            for p in prefixes
            if "optimizer" not in p and not any(p + x in arrays for x in exclude)
        }
        if len(prefixes) == 1:
            prefix = prefixes.pop()
            return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
        if len(prefixes) > 1:
            raise ValueError(
                f"from_official(kind={kind!r}): {path.name} holds several networks with "
                f"{suffix!r} under {sorted(prefixes)}; save the one network alone (Chainer's "
                "serializers.save_npz on the link) or pick another kind"
            )
    return arrays


def _blocks(arrays: dict[str, np.ndarray]) -> list[int]:
    return sorted({int(m.group(1)) for k in arrays if (m := re.match(r"block(\d+)/", k))})


def _ch_and_multipliers(widths: list[int]) -> tuple[int, list[int]]:
    ch = math.gcd(*widths)
    return ch, [w // ch for w in widths]


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).float()


def _load(
    module: nn.Module,
    arrays: dict[str, np.ndarray],
    mapping: dict[str, str],
    report: ConversionReport,
) -> None:
    """Copy ``arrays[file_key]`` into ``module``'s state entry for each ``state_key: file_key``."""
    state = module.state_dict()
    new = {}
    for state_key, file_key in mapping.items():
        if file_key not in arrays:
            report.missing.append(f"{state_key} (file key {file_key})")
            continue
        value = _tensor(arrays[file_key])
        if state_key not in state:
            report.unmapped.append(file_key)
            continue
        if tuple(value.shape) != tuple(state[state_key].shape):
            raise ValueError(
                f"from_official: {file_key} has shape {tuple(value.shape)} but {state_key} is "
                f"{tuple(state[state_key].shape)}; the inferred architecture does not fit the file"
            )
        new[state_key] = value
    module.load_state_dict(new, strict=False)
    used = set(mapping.values())
    for k in arrays:
        if k in used:
            continue
        (report.ignored if k.endswith("/N") else report.unmapped).append(k)


# ---------------------------------------------------------------------------------------------
# generator
# ---------------------------------------------------------------------------------------------


def generator_config(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """``collage.resnet_generator`` config inferred from an official generator's arrays."""
    if "l1/W" not in arrays:
        raise ValueError(
            "from_official(kind='G'): the file has no 'l1/W'; is it a generator snapshot? "
            f"(first keys: {sorted(arrays)[:6]})"
        )
    blocks = _blocks(arrays)
    if not blocks:
        raise ValueError("from_official(kind='G'): the file has no blockN/ keys")
    z_dim = int(arrays["l1/W"].shape[1])
    c0 = int(arrays[f"block{blocks[0]}/c1/W"].shape[1])
    bw = math.isqrt(int(arrays["l1/W"].shape[0]) // c0)
    widths = [c0] + [int(arrays[f"block{n}/c1/W"].shape[0]) for n in blocks]
    ch, mult = _ch_and_multipliers(widths)
    k = int(arrays[f"block{blocks[0]}/b1/gammas/W"].shape[0])
    return {
        "type": "collage.resnet_generator",
        "num_classes": k,
        "resolution": bw * 2 ** len(blocks),
        "ch": ch,
        "channel_multipliers": mult,
        "z_dim": z_dim,
        "bottom_width": bw,
        # 'any': the model takes Condition(class_id=...) and Condition(class_weights=...)
        "norm": {"type": "collage.scbn", "condition": "any"},
    }


def generator_mapping(arrays: dict[str, np.ndarray]) -> dict[str, str]:
    """``state_dict key -> file key`` for :class:`ResNetGenerator`."""
    blocks = _blocks(arrays)
    last = blocks[-1] + 1
    out = {"stages.0.linear.weight": "l1/W", "stages.0.linear.bias": "l1/b"}
    for i, n in enumerate(blocks, start=1):
        for conv in ("c1", "c2", "c_sc"):
            out[f"stages.{i}.{conv}.weight"] = f"block{n}/{conv}/W"
            out[f"stages.{i}.{conv}.bias"] = f"block{n}/{conv}/b"
        for bn in ("b1", "b2"):
            out[f"stages.{i}.{bn}.gammas.weight"] = f"block{n}/{bn}/gammas/W"
            out[f"stages.{i}.{bn}.betas.weight"] = f"block{n}/{bn}/betas/W"
            out[f"stages.{i}.{bn}.bn.running_mean"] = f"block{n}/{bn}/avg_mean"
            out[f"stages.{i}.{bn}.bn.running_var"] = f"block{n}/{bn}/avg_var"
    out.update(
        {
            "bn.weight": f"b{last}/gamma",
            "bn.bias": f"b{last}/beta",
            "bn.running_mean": f"b{last}/avg_mean",
            "bn.running_var": f"b{last}/avg_var",
            "to_rgb.weight": f"l{last}/W",
            "to_rgb.bias": f"l{last}/b",
        }
    )
    return out


def _convert_generator(arrays: dict[str, np.ndarray], overrides: dict[str, Any]):
    gen_cfg = {**generator_config(arrays), **overrides}
    report = ConversionReport(config=gen_cfg)
    norm = gen_cfg.get("norm", {})
    field = norm.get("condition", "class_id") if isinstance(norm, dict) else "class_id"
    spec = {
        "condition": [] if field == "any" else [field],
        "generator": gen_cfg,
        "injector": {"type": "core.gaussian"},
        "sampler": {"type": "core.prior"},
    }
    model = synth.compose(spec)
    _load(model.generator, arrays, generator_mapping(arrays), report)
    # a ResNetAuxABGenerator file also holds A and B (kind="AB" loads them)
    aux = set(AUX_MAPPING.values())
    known = [k for k in report.unmapped if k in aux or k.startswith("_fast_alpha/")]
    report.unmapped = [k for k in report.unmapped if k not in known]
    report.ignored.extend(known)
    return model.eval(), report


# ---------------------------------------------------------------------------------------------
# discriminator
# ---------------------------------------------------------------------------------------------


def discriminator_config(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """``collage.projection_discriminator`` config inferred from an official D's arrays."""
    blocks = _blocks(arrays)
    if not blocks or blocks[0] != 1:
        raise ValueError(
            "from_official(kind='D'): expected block1 (the optimized block) .. blockN; found "
            f"blocks {blocks}"
        )
    widths = [int(arrays[f"block{n}/c2/W"].shape[0]) for n in blocks]
    ch, mult = _ch_and_multipliers(widths)
    k = int(arrays["l_y/W"].shape[0]) if "l_y/W" in arrays else None
    # c1's width: the block's input (resblocks.Block's default, snresnet_small.py) or its
    # output (snresnet_256.py passes hidden_channels); the same where they agree
    hidden_in = any(
        arrays[f"block{n}/c1/W"].shape[0] == arrays[f"block{n}/c1/W"].shape[1] != w
        for n, w in zip(blocks[1:], widths[1:])
    )
    return {
        "type": "collage.projection_discriminator",
        "num_classes": k,
        "resolution": 4 * 2 ** (len(blocks) - 1),
        "ch": ch,
        "channel_multipliers": mult,
        "hidden": "in" if hidden_in else "out",
    }


def _set_spectral(module: nn.Module, weight: np.ndarray, u: np.ndarray | None) -> None:
    """Load ``weight`` into a spectral-norm parametrized module; ``u`` -> ``_u``, ``_v``.

    Chainer's test-mode σ: ``v = ‖Wᵀu‖⁻¹ Wᵀu``, ``u' = ‖Wv‖⁻¹ Wv``, ``σ = u'ᵀ W v``; torch's
    eval-mode σ is ``_uᵀ W _v``, so ``_v = v`` and ``_u = u'``.
    """
    w = _tensor(weight)
    param = module.parametrizations.weight
    param.original.data.copy_(w)
    sn = param[0]
    if u is None:
        return
    mat = w.reshape(w.shape[0], -1)
    u0 = _tensor(u).reshape(-1)
    v = F.normalize(mat.t() @ u0, dim=0, eps=sn.eps)
    u1 = F.normalize(mat @ v, dim=0, eps=sn.eps)
    sn._u.copy_(u1)
    sn._v.copy_(v)


def _convert_discriminator(arrays: dict[str, np.ndarray], overrides: dict[str, Any]):
    cfg = {**discriminator_config(arrays), **overrides}
    report = ConversionReport(config=cfg)
    disc = synth.build(cfg)
    blocks = _blocks(arrays)
    used: set[str] = set()

    def put(module: nn.Module, prefix: str) -> None:
        w, b, u = f"{prefix}/W", f"{prefix}/b", f"{prefix}/u"
        if w not in arrays:
            report.missing.append(w)
            return
        _set_spectral(module, arrays[w], arrays.get(u))
        used.update({w, u})
        if getattr(module, "bias", None) is not None:
            if b in arrays:
                module.bias.data.copy_(_tensor(arrays[b]))
                used.add(b)
            else:
                report.missing.append(b)

    for i, n in enumerate(blocks):
        block = disc.blocks[i]
        put(block.c1, f"block{n}/c1")
        put(block.c2, f"block{n}/c2")
        if block.c_sc is not None:
            put(block.c_sc, f"block{n}/c_sc")
    put(disc.linear, f"l{blocks[-1] + 1}")
    if disc.embed is not None:
        put(disc.embed, "l_y")
    report.unmapped.extend(k for k in arrays if k not in used)
    return disc.eval(), report


# ---------------------------------------------------------------------------------------------
# encoder
# ---------------------------------------------------------------------------------------------


def _encoder_fc(arrays: dict[str, np.ndarray]) -> str:
    """The encoder's last linear layer: ``l7`` (128 px) or ``l8_enc`` (256 px)."""
    hits = [
        k[:-2]
        for k, v in arrays.items()
        if re.fullmatch(r"l\d+(_enc)?/W", k) and v.ndim == 2 and k != "l1/W"
    ]
    if len(hits) != 1:
        raise ValueError(
            "from_official(kind='E'): expected one final linear layer l7/W (resnetenc_small) or "
            f"l8_enc/W (resnetenc_256); found {sorted(hits)}"
        )
    return hits[0]


def encoder_config(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """``collage.resnet_encoder`` config inferred from an official encoder's arrays.

    ``resnetenc_small.py`` (128 px): stem ``l1``, ``block2..6``, ``b7`` (defined but never
    applied by its forward), ``l7``; ``resnetenc_256.py``: stem ``block1``, ``block2..7``,
    ``l8_enc``; both end in ``prelu_out``. The blocks' norms are batch norms (``b1/gamma``) or,
    when trained with ``n_classes`` > 0 as the dog+cat encoders, categorical CBN
    (``b1/gammas/W``), which becomes ``collage.scbn`` reading ``class_id``.
    """
    if "prelu_out/W" not in arrays:
        raise ValueError(
            "from_official(kind='E'): the file has no 'prelu_out/W'; is it an encoder snapshot "
            f"(enc_models/resnetenc_*.py)? (first keys: {sorted(arrays)[:6]})"
        )
    stem = "l1" if "l1/W" in arrays else "block1"
    if f"{stem}/W" not in arrays or arrays[f"{stem}/W"].ndim != 4:
        raise ValueError("from_official(kind='E'): no stem conv l1/W or block1/W in the file")
    blocks = [n for n in _blocks(arrays) if f"block{n}/c1/W" in arrays]
    if not blocks:
        raise ValueError("from_official(kind='E'): the file has no blockN/c1/W keys")
    ch = int(arrays[f"{stem}/W"].shape[0])
    widths = [int(arrays[f"block{n}/c2/W"].shape[0]) for n in blocks]
    fc = arrays[f"{_encoder_fc(arrays)}/W"]
    bw = math.isqrt(int(fc.shape[1]) // widths[-1])
    first = f"block{blocks[0]}/b1"
    if f"{first}/gammas/W" in arrays:
        k = int(arrays[f"{first}/gammas/W"].shape[0])
        norm: dict[str, Any] = {"type": "collage.scbn", "condition": "class_id"}
    else:
        k = None
        norm = {"type": "core.batch_norm", "affine": True, "eps": 2e-5}
    return {
        "type": "collage.resnet_encoder",
        "z_dim": int(fc.shape[0]),
        "num_classes": k,
        "ch": ch,
        "image_size": bw * 2 ** len(blocks),
        "bottom_width": bw,
        "widths": [w // ch for w in widths],
        # the official forward skips b7 (resnetenc_small.py defines it, __call__ never uses it)
        "final_norm": False,
        "norm": norm,
    }


def encoder_mapping(arrays: dict[str, np.ndarray]) -> dict[str, str]:
    """``state_dict key -> file key`` for :class:`~synth_collage.encoder.ResNetEncoder`."""
    stem = "l1" if "l1/W" in arrays else "block1"
    fc = _encoder_fc(arrays)
    out = {
        "stem.weight": f"{stem}/W",
        "stem.bias": f"{stem}/b",
        "fc.weight": f"{fc}/W",
        "fc.bias": f"{fc}/b",
        "prelu.weight": "prelu_out/W",
    }
    blocks = [n for n in _blocks(arrays) if f"block{n}/c1/W" in arrays]
    for i, n in enumerate(blocks):
        for conv in ("c1", "c2", "c_sc"):
            out[f"blocks.{i}.{conv}.weight"] = f"block{n}/{conv}/W"
            out[f"blocks.{i}.{conv}.bias"] = f"block{n}/{conv}/b"
        for bn in ("b1", "b2"):
            src, dst = f"block{n}/{bn}", f"blocks.{i}.{bn}"
            if f"{src}/gammas/W" in arrays:  # categorical CBN -> collage.scbn
                out[f"{dst}.gammas.weight"] = f"{src}/gammas/W"
                out[f"{dst}.betas.weight"] = f"{src}/betas/W"
            else:  # L.BatchNormalization -> core.batch_norm (affine)
                out[f"{dst}.bn.weight"] = f"{src}/gamma"
                out[f"{dst}.bn.bias"] = f"{src}/beta"
            out[f"{dst}.bn.running_mean"] = f"{src}/avg_mean"
            out[f"{dst}.bn.running_var"] = f"{src}/avg_var"
    return out


def _convert_encoder(arrays: dict[str, np.ndarray], overrides: dict[str, Any]):
    cfg = {**encoder_config(arrays), **overrides}
    report = ConversionReport(config=cfg)
    enc = synth.build(cfg)
    mapping = encoder_mapping(arrays)
    if cfg.get("final_norm"):  # asked for by override: load b7 into it
        last = "b7"
        mapping.update(
            {
                "final_norm.weight": f"{last}/gamma",
                "final_norm.bias": f"{last}/beta",
                "final_norm.running_mean": f"{last}/avg_mean",
                "final_norm.running_var": f"{last}/avg_var",
            }
        )
    _load(enc, arrays, mapping, report)
    # b7 is a known, unused layer of resnetenc_small.py: not a surprise worth a warning
    unused_b7 = [k for k in report.unmapped if k.startswith("b7/")]
    report.unmapped = [k for k in report.unmapped if k not in unused_b7]
    report.ignored.extend(unused_b7)
    return enc.eval(), report


# ---------------------------------------------------------------------------------------------
# auxiliary networks A and B
# ---------------------------------------------------------------------------------------------

#: ``AuxiliaryNetworks`` state key -> official key (``gen_models/resnet_*_auxab.py``).
AUX_MAPPING: dict[str, str] = {
    "a1.weight": "lA1/W",
    "a1.bias": "lA1/b",
    "a2.weight": "lA2/W",
    "a2.bias": "lA2/b",
    "a_prelu.weight": "preluMiddleW/W",
    "b1.weight": "lB1/W",
    "b1.bias": "lB1/b",
    "b2.weight": "lB2/W",
    "b2.bias": "lB2/b",
    "b_prelu.weight": "preluW/W",
}


def auxiliary_config(arrays: dict[str, np.ndarray]) -> dict[str, int]:
    """``AuxiliaryNetworks`` widths from ``lA1/W [dim_a, dim_z]``, ``lA2/W [dim_zeta, dim_a]``,
    ``lB1/W [dim_b, dim_zeta]``."""
    for key in ("lA1/W", "lA2/W", "lB1/W"):
        if key not in arrays:
            raise ValueError(
                f"from_official(kind='AB'): the file has no {key!r}; is it a "
                "ResNetAuxABGenerator snapshot (gen_models/resnet_*_auxab.py)? "
                f"(first keys: {sorted(arrays)[:6]})"
            )
    return {
        "z_dim": int(arrays["lA1/W"].shape[1]),
        "hidden_a": int(arrays["lA1/W"].shape[0]),
        "zeta_dim": int(arrays["lA2/W"].shape[0]),
        "hidden_b": int(arrays["lB1/W"].shape[0]),
    }


def _convert_auxiliary(arrays: dict[str, np.ndarray], overrides: dict[str, Any]):
    from .auxiliary import AuxiliaryNetworks

    cfg = {**auxiliary_config(arrays), **overrides}
    report = ConversionReport(config=cfg)
    aux = AuxiliaryNetworks(**cfg)
    # the file is the whole ResNetAuxABGenerator: its generator half loads with kind="G" and
    # `_fast_alpha` is the learned per-unit inner step (auxiliary_loss(inner_lr=...) takes it)
    generator_keys = set(generator_mapping(arrays).values()) if "l1/W" in arrays else set()
    own = {k: v for k, v in arrays.items() if k not in generator_keys}
    _load(aux, own, AUX_MAPPING, report)
    known = [k for k in report.unmapped if k.startswith("_fast_alpha/")]
    report.unmapped = [k for k in report.unmapped if k not in known]
    report.ignored.extend(known)
    report.ignored.extend(sorted(k for k in arrays if k in generator_keys))
    return aux.eval(), report


# ---------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------

#: ``kind -> converter(arrays, overrides) -> (model, ConversionReport)``.
CONVERTERS: dict[
    str, Callable[[dict[str, np.ndarray], dict[str, Any]], tuple[Any, ConversionReport]]
] = {
    "G": _convert_generator,
    "D": _convert_discriminator,
    "E": _convert_encoder,
    "AB": _convert_auxiliary,
}


def from_official(
    path: str | Path, kind: str = "G", *, return_report: bool = False, **overrides: Any
) -> Any:
    """Load an official neural-collage Chainer ``.npz`` as a synth model.

    Args:
        path: the ``.npz`` (a network's ``save_npz`` or a trainer snapshot).
        kind: ``"G"`` -> a :class:`synth.SynthesisModel` (``collage.resnet_generator`` with
            sCBN + ``core.gaussian``) whose ``generate(Condition(class_id=…) or
            Condition(class_weights=…), Latents(z=…))`` is the official generator's test-mode
            output; ``"D"`` -> ``collage.projection_discriminator``; ``"E"`` ->
            ``collage.resnet_encoder`` (``encode(photo, cond)`` is the official encoder's
            test-mode ``z``; pass it as ``project(..., encoder=)``); ``"AB"`` ->
            :class:`~synth_collage.auxiliary.AuxiliaryNetworks` (``embed`` = A,
            ``project`` = B). All in eval mode. Other kinds as registered in
            :data:`CONVERTERS`.
        return_report: also return the :class:`ConversionReport`.
        overrides: config fields replacing the inferred ones (e.g. ``norm``).

    Keys in the file that nothing used, and model entries the file lacks, are reported (a
    warning; the report lists them).
    """
    if kind not in CONVERTERS:
        raise ValueError(
            f"from_official: kind={kind!r} is not one of {sorted(CONVERTERS)} "
            "(G: generator, D: discriminator, E: encoder, AB: auxiliary networks A and B)"
        )
    arrays = read_npz(path, kind)
    model, report = CONVERTERS[kind](arrays, overrides)
    if report.unmapped or report.missing:
        warnings.warn(
            f"from_official({Path(path).name}, kind={kind!r}): "
            f"{len(report.unmapped)} unmapped file keys {report.unmapped[:8]}, "
            f"{len(report.missing)} missing model entries {report.missing[:8]}",
            stacklevel=2,
        )
    return (model, report) if return_report else model
