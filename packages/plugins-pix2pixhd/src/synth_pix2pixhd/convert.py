"""Converters between the official pix2pixHD checkpoints (NVIDIA/pix2pixHD) and our parts.

Official layouts (plain ``state_dict``; a ``module.`` prefix is stripped):

- ``GlobalGenerator``: ``model.1`` 7×7 in-conv, ``model.{4,7,…}`` stride-2 convs,
  ``model.{r}.conv_block.{1,5}`` residual blocks, ``ConvTranspose`` every 3 indices, and the
  final 7×7 conv 4 indices after the last one (``model.38`` for 4 downsamplings, 9 blocks).
- ``LocalEnhancer``: ``model.*`` = a global generator (width ``ngf·2^N``) without its last 3
  layers; per enhancer ``n``: ``model{n}_1.{1,4}``, ``model{n}_2.{j}.conv_block.{1,5}``,
  ``model{n}_2.{n_blocks_local}`` (ConvTranspose), and on the last ``model{N}_2.{nbl+4}``.
- ``MultiscaleDiscriminator``: ``scale{i}_layer{j}.0`` (intermediate features) or
  ``layer{i}.{0,2,5,8,…}``; the full-resolution input goes to ``scale{num_D-1}`` (our scale 0).
- ``Encoder``: ``model.{1,4,7,…}`` (convs, then ConvTransposes, then the final conv).

The architecture is inferred from keys and shapes; options give only what shapes cannot
tell: ``num_classes`` and whether the extra input channels are instance edges / features.
Instance norm has no parameters, so a checkpoint with norm parameters reports them unmapped.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from torch import Tensor, nn

from synth.errors import CheckpointError
from synth.io.convert import ConversionReport, describe_checkpoint, read_checkpoint, require_keys

from .discriminators import MultiscaleDiscriminator
from .encoders import InstanceEncoder
from .generators import GlobalGenerator, LocalEnhancer

__all__ = ["ConversionReport", "convert_state_dict", "from_official", "to_official"]

Kind = Literal["G", "D", "E"]

#: What each kind of official checkpoint looks like (for the errors of a wrong ``kind``).
_G = "an official pix2pixHD generator (kind='G')"
_D = "an official pix2pixHD multi-scale discriminator (kind='D')"
_E = "an official pix2pixHD feature encoder (kind='E')"
LAYOUTS = {
    _G: r"^model(1_1\.|\.\d+\.conv_block\.)",
    _D: r"^(scale\d+_layer\d+|layer\d+)\.",
    _E: r"^model\.1\.weight$",
    "a SPADE/GauGAN checkpoint (synth_clvae.from_official_spade)": r"^(head_0|discriminator_\d+)\.",
}
_EXPECTED = {"G": _G, "D": _D, "E": _E}


def _require(sd: Mapping[str, Tensor], kind: str, *keys: str | tuple[str, ...]) -> None:
    """The keys ``kind``'s conversion reads are in ``sd`` (else a CheckpointError saying what
    the checkpoint looks like)."""
    require_keys(
        sd, keys, who=f"from_official({kind!r})", expected=_EXPECTED[kind], layouts=LAYOUTS
    )


def _plain_indices(sd: Mapping[str, Tensor], prefix: str) -> list[int]:
    """Sorted ``i`` of ``{prefix}.{i}.weight`` keys with 4-D weights (convs, not norms)."""
    pat = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.weight$")
    return sorted(int(m.group(1)) for k in sd if (m := pat.match(k)) and sd[k].dim() == 4)


def _res_indices(sd: Mapping[str, Tensor], prefix: str) -> list[int]:
    pat = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.conv_block\.1\.weight$")
    return sorted(int(m.group(1)) for k in sd if (m := pat.match(k)))


def _global_pairs(n_down: int, n_blocks: int, stage0: int, head: bool) -> list[tuple[str, str]]:
    """(ours, official) module prefixes of an official global generator ``model.*``."""
    pairs = [(f"stages.{stage0}.conv", "model.1")]
    for i in range(n_down):
        pairs.append((f"stages.{stage0 + 1 + i}.conv", f"model.{4 + 3 * i}"))
    r0 = 3 * n_down + 4
    for j in range(n_blocks):
        s = stage0 + 1 + n_down + j
        pairs.append((f"stages.{s}.conv1", f"model.{r0 + j}.conv_block.1"))
        pairs.append((f"stages.{s}.conv2", f"model.{r0 + j}.conv_block.5"))
    for i in range(n_down):
        pairs.append(
            (f"stages.{stage0 + 1 + n_down + n_blocks + i}.conv", f"model.{r0 + n_blocks + 3 * i}")
        )
    if head:
        pairs.append(("head.conv", f"model.{r0 + n_blocks + 3 * n_down + 1}"))
    return pairs


def _enhancer_pairs(cfg: Mapping[str, Any]) -> list[tuple[str, str]]:
    n_loc, nbl = cfg["n_local_enhancers"], cfg["n_blocks_local"]
    nd, nb = cfg["n_downsample_global"], cfg["n_blocks_global"]
    pairs = _global_pairs(nd, nb, 0, head=False)
    s = 1 + 2 * nd + nb
    for n in range(1, n_loc + 1):
        pairs += [(f"stages.{s}.conv", f"model{n}_1.1"), (f"stages.{s}.down.conv", f"model{n}_1.4")]
        for j in range(nbl):
            pairs.append((f"stages.{s + 1 + j}.conv1", f"model{n}_2.{j}.conv_block.1"))
            pairs.append((f"stages.{s + 1 + j}.conv2", f"model{n}_2.{j}.conv_block.5"))
        pairs.append((f"stages.{s + 1 + nbl}.conv", f"model{n}_2.{nbl}"))
        s += nbl + 2
    pairs.append(("head.conv", f"model{n_loc}_2.{nbl + 4}"))
    return pairs


def _disc_pairs(num_d: int, n_layers: int, intermediate: bool) -> list[tuple[str, str]]:
    pairs = []
    conv_idx = [0] + [2 + 3 * i for i in range(n_layers + 1)]
    for k in range(num_d):
        s = num_d - 1 - k
        for j in range(n_layers + 2):
            ours = f"scales.{k}.logits" if j == n_layers + 1 else f"scales.{k}.layers.{j}.conv"
            off = f"scale{s}_layer{j}.0" if intermediate else f"layer{s}.{conv_idx[j]}"
            pairs.append((ours, off))
    return pairs


def _encoder_pairs(n_down: int) -> list[tuple[str, str]]:
    pairs = [("conv_in", "model.1")]
    pairs += [(f"down.{i}", f"model.{4 + 3 * i}") for i in range(n_down)]
    pairs += [(f"up.{i}", f"model.{4 + 3 * n_down + 3 * i}") for i in range(n_down)]
    pairs.append(("conv_out", f"model.{6 * n_down + 5}"))
    return pairs


def _inputs(
    in_ch: int,
    num_classes: int | None,
    use_instances: bool | None,
    feat_num: int | None,
    image: int = 0,
) -> tuple[int, bool, int]:
    """Split ``in_ch`` into (num_classes, use_instances, feat_num) (+ ``image`` channels)."""
    if num_classes is None:
        if use_instances is None or feat_num is None:
            raise ValueError(
                f"the first layer reads {in_ch} channels; its split into classes, instance "
                "edges and features cannot be read from shapes: pass num_classes=K (the "
                "official label_nc, e.g. 35 for Cityscapes), or both use_instances and feat_num"
            )
        num_classes = in_ch - image - int(use_instances) - feat_num
    extra = in_ch - image - num_classes
    if extra < 0:
        raise ValueError(f"num_classes={num_classes} exceeds the {in_ch - image} label channels")
    if use_instances is None:
        use_instances = extra - (feat_num or 0) >= 1
    if feat_num is None:
        feat_num = extra - int(use_instances)
    if num_classes < 1 or int(use_instances) + feat_num != extra or feat_num < 0:
        raise ValueError(
            f"{in_ch} input channels do not split into num_classes={num_classes}, "
            f"use_instances={use_instances}, feat_num={feat_num}"
        )
    return num_classes, bool(use_instances), feat_num


def _infer(sd: Mapping[str, Tensor], kind: Kind, opts: dict[str, Any]) -> tuple[type, dict, list]:
    """``(part class, config, (ours, official) pairs)`` from the official state dict."""
    ni, fn = opts.pop("use_instances", None), opts.pop("feat_num", None)
    k = opts.pop("num_classes", None)
    if kind == "G":
        _require(sd, kind, "model.1.weight")
        if "model1_1.1.weight" in sd:
            n_loc = len({m.group(1) for key in sd if (m := re.match(r"^model(\d+)_1\.", key))})
            _require(sd, kind, f"model{n_loc}_1.1.weight")
            plain = _plain_indices(sd, "model")
            nd = (len(plain) - 1) // 2
            nb = len(_res_indices(sd, "model"))
            nbl = len(_res_indices(sd, "model1_2"))
            ngf = sd[f"model{n_loc}_1.1.weight"].shape[0]
            k, ni, fn = _inputs(sd["model.1.weight"].shape[1], k, ni, fn)
            cfg = dict(
                num_classes=k,
                ngf=ngf,
                n_downsample_global=nd,
                n_blocks_global=nb,
                n_local_enhancers=n_loc,
                n_blocks_local=nbl,
                use_instances=ni,
                feat_num=fn,
            )
            return LocalEnhancer, cfg, _enhancer_pairs(cfg)
        plain = _plain_indices(sd, "model")
        nd = (len(plain) - 2) // 2
        nb = len(_res_indices(sd, "model"))
        _require(sd, kind, f"model.{3 * nd + 4}.conv_block.1.weight")
        k, ni, fn = _inputs(sd["model.1.weight"].shape[1], k, ni, fn)
        cfg = dict(
            num_classes=k,
            ngf=sd["model.1.weight"].shape[0],
            n_downsampling=nd,
            n_blocks=nb,
            use_instances=ni,
            feat_num=fn,
        )
        return GlobalGenerator, cfg, _global_pairs(nd, nb, 0, head=True)
    if kind == "D":
        _require(sd, kind, ("scale0_layer0.0.weight", "layer0.0.weight"))
        inter = any(key.startswith("scale0_layer") for key in sd)
        if inter:
            num_d = len({m.group(1) for key in sd if (m := re.match(r"^scale(\d+)_layer", key))})
            n_layers = (
                len({m.group(1) for key in sd if (m := re.match(r"^scale0_layer(\d+)\.", key))}) - 2
            )
            first = sd["scale0_layer0.0.weight"]
        else:
            num_d = len({m.group(1) for key in sd if (m := re.match(r"^layer(\d+)\.", key))})
            n_layers = len(_plain_indices(sd, "layer0")) - 2
            first = sd["layer0.0.weight"]
        k, ni, fn = _inputs(first.shape[1], k, ni, 0 if fn is None else fn, image=3)
        if fn:
            raise ValueError("the official discriminator reads no instance features (feat_num=0)")
        cfg = dict(
            num_classes=k, ndf=first.shape[0], n_layers=n_layers, num_d=num_d, use_instances=ni
        )
        return MultiscaleDiscriminator, cfg, _disc_pairs(num_d, n_layers, inter)
    if kind == "E":
        _require(sd, kind, "model.1.weight")
        if _res_indices(sd, "model") or "model1_1.1.weight" in sd:  # the encoder has no blocks
            raise CheckpointError(
                f"from_official('E'): expected {_E}, but the checkpoint has residual blocks "
                f"(model.<i>.conv_block.*). {describe_checkpoint(sd, LAYOUTS, expected=_E)}"
            )
        plain = _plain_indices(sd, "model")
        nd = (len(plain) - 2) // 2
        _require(sd, kind, f"model.{6 * nd + 5}.weight")
        last = sd[f"model.{6 * nd + 5}.weight"]
        cfg = dict(channels=last.shape[0], nef=sd["model.1.weight"].shape[0], n_downsampling=nd)
        return InstanceEncoder, cfg, _encoder_pairs(nd)
    raise ValueError(f"kind must be 'G', 'D' or 'E', got {kind!r}")


def convert_state_dict(
    path_or_state_dict: str | Path | Mapping[str, Tensor], kind: Kind = "G", **options: Any
) -> tuple[type, dict[str, Any], dict[str, Tensor], ConversionReport]:
    """Map an official state dict onto ours without building the part.

    Returns ``(part class, config, our state dict, report)``; ``report.unmapped`` lists the
    official keys nothing maps to, ``report.missing`` the official keys the inferred
    architecture expects but the file lacks. Options: ``num_classes``, ``use_instances``,
    ``feat_num`` (generators/discriminators; see :func:`from_official`).
    """
    sd = read_checkpoint(path_or_state_dict, only_if_all=True)
    opts = dict(options)
    cls, cfg, pairs = _infer(sd, kind, opts)
    if opts:
        raise TypeError(f"from_official got unknown options {sorted(opts)}")
    ours: dict[str, Tensor] = {}
    used: set[str] = set()
    missing: list[str] = []
    for mine, off in pairs:
        for suffix in ("weight", "bias"):
            key = f"{off}.{suffix}"
            if key in sd:
                ours[f"{mine}.{suffix}"] = sd[key]
                used.add(key)
            else:
                missing.append(key)
    unmapped = sorted(k for k in sd if k not in used)
    report = ConversionReport(kind, cls.__name__, cfg, unmapped, missing)
    return cls, cfg, ours, report


def from_official(
    path_or_state_dict: str | Path | Mapping[str, Tensor],
    kind: Kind = "G",
    *,
    strict: bool = True,
    **options: Any,
) -> nn.Module:
    """Build our part from an official pix2pixHD checkpoint (``latest_net_G.pth`` …).

    Args:
        path_or_state_dict: a checkpoint file (read with :func:`synth.read_state_dict`, never
            unpickling code) or a state dict.
        kind: ``"G"`` (global generator or local enhancer, told apart by the keys), ``"D"``
            (multi-scale discriminator, with or without intermediate features) or ``"E"``
            (instance feature encoder).
        strict: raise on unmapped or missing keys (else warn).
        **options: what shapes cannot tell: ``num_classes`` (label_nc), ``use_instances``
            (the input has the instance boundary channel), ``feat_num`` (instance-feature
            channels). With ``num_classes`` alone, the extra input channels are read as one
            edge channel followed by features.
    Returns:
        ``GlobalGenerator`` / ``LocalEnhancer`` / ``MultiscaleDiscriminator`` /
        ``InstanceEncoder`` with the weights loaded; its ``conversion_report`` attribute holds
        the :class:`ConversionReport`.
    """
    cls, cfg, ours, report = convert_state_dict(path_or_state_dict, kind, **options)
    if not report.ok:
        msg = (
            f"from_official({kind!r}) into {cls.__name__}({cfg}): unmapped official keys "
            f"{report.unmapped[:12]}, missing official keys {report.missing[:12]}"
        )
        if strict:
            raise ValueError(msg + "; pass strict=False to load what maps")
        warnings.warn(msg, stacklevel=2)
    part = cls(cfg)
    part.load_state_dict(ours, strict=strict)
    part.conversion_report = report
    return part


def to_official(part: nn.Module, *, intermediate: bool = True) -> dict[str, Tensor]:
    """The official state dict of our ``part`` (inverse of :func:`from_official`).

    ``intermediate`` picks the discriminator layout (``scale{i}_layer{j}`` vs ``layer{i}``).
    """
    cfg = part.config.model_dump()
    if isinstance(part, LocalEnhancer):
        pairs = _enhancer_pairs(cfg)
    elif isinstance(part, GlobalGenerator):
        pairs = _global_pairs(cfg["n_downsampling"], cfg["n_blocks"], 0, head=True)
    elif isinstance(part, MultiscaleDiscriminator) or type(part).__name__ == "PatchDiscriminator":
        pairs = _disc_pairs(len(part.scales), cfg["n_layers"], intermediate)
    elif isinstance(part, InstanceEncoder):
        pairs = _encoder_pairs(cfg["n_downsampling"])
    else:
        raise TypeError(f"to_official does not know {type(part).__name__}")
    state = part.state_dict()
    out: dict[str, Tensor] = {}
    for mine, off in pairs:
        for suffix in ("weight", "bias"):
            out[f"{off}.{suffix}"] = state[f"{mine}.{suffix}"].detach().clone()
    return out
