"""Converters between the official checkpoints (NVlabs/SPADE, endo-yuki-t/DiversifyingSMIS) and
synth's parts.

Official key layouts (state-dict facts, see ``PAPERS.md``): generator ``fc.*``,
``{head_0, G_middle_0, G_middle_1, up_0..up_4}.{conv_0, conv_1, conv_s}.{bias,
weight_orig, weight_u, weight_v}``, ``.{norm_0, norm_1, norm_s}.{param_free_norm.*,
mlp_shared.0.*, mlp_gamma.*, mlp_beta.*}``, ``conv_img.*`` (+ ``embedding.weight`` for CLVAE);
discriminator ``discriminator_{i}.model{j}...``; encoder ``layer{1..6}.0.weight_*``,
``fc_mu/fc_var`` (+ ``fc_mu{1..5}/fc_var{1..5}`` for CLVAE). Spectral norm is the old hook
style (``weight_orig`` + ``weight_u``/``weight_v`` buffers); synth's modules use torch's
parametrization (``parametrizations.weight.original`` and ``parametrizations.weight.0._u/_v``), mapped one to one.
Checkpoints are read with :func:`synth.io.weights.read_state_dict` (never unpickled). With
instance edges (official ``no_instance=False``) the label inputs (``fc``, ``mlp_shared.0``, D's
``model0.0``) carry one more channel after the one-hot map; ``num_classes`` tells it from a class.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from torch import Tensor, nn

import synth
from synth.io.convert import (
    ConversionReport,
    load_converted,
    read_checkpoint,
    require_keys,
    spectral_norm_key_to_official,
    spectral_norm_key_to_torch,
)

__all__ = [
    "ConversionReport",
    "from_official_clvae",
    "from_official_spade",
    "to_official_clvae",
    "to_official_spade",
]

BLOCKS = ["head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3", "up_4"]

#: What each official checkpoint looks like (for the errors of a wrong converter or kind),
#: most specific first.
_CG = "an official CLVAE generator (from_official_clvae, kind='G')"
_SG = "an official SPADE/GauGAN generator (from_official_spade, kind='G')"
_D = "an official SPADE/CLVAE discriminator (from_official_spade, kind='D')"
_CE = "an official CLVAE encoder (from_official_clvae, kind='E')"
_SE = "an official SPADE/GauGAN encoder (from_official_spade, kind='E')"
LAYOUTS = {
    _CG: r"^embedding\.weight$",
    _SG: r"^head_0\.",
    _D: r"^discriminator_\d+\.",
    _CE: r"^fc_mu1\.",
    _SE: r"^(fc_mu|layer1)\.",
    "a pix2pixHD checkpoint (synth_pix2pixhd.from_official)": r"^(model\.1\.|scale0_layer|model1_1)",
}


def _require(
    sd: Mapping[str, Tensor], who: str, expected: str, *keys: str | tuple[str, ...]
) -> None:
    """The keys a conversion reads are in ``sd`` (else a CheckpointError saying what the
    checkpoint looks like)."""
    require_keys(sd, keys, who=who, expected=expected, layouts=LAYOUTS)


def _sn(prefix: str) -> tuple[str, str]:
    """A conv's weight with or without (hook-style) spectral norm."""
    return (f"{prefix}.weight_orig", f"{prefix}.weight")


def _fill(
    part: nn.Module,
    mapped: dict[str, Tensor],
    unmapped: list[str],
    *,
    who: str,
    kind: str,
    cfg: dict[str, Any],
) -> nn.Module:
    """Load ``mapped`` (synth keys) into ``part`` (warning on what did not fit), keep the
    :class:`~synth.io.convert.ConversionReport` as ``part.conversion_report``; ``part`` in eval
    mode."""
    report = load_converted(
        part, mapped, unmapped, strict=False, who=who, kind=kind, config=cfg, stacklevel=3
    )
    part.conversion_report = report  # type: ignore[attr-defined]
    return part.eval()


def _split_classes(
    channels: int, num_classes: int | None, use_instances: bool | None, where: str
) -> tuple[int, bool]:
    """``(K, use_instances)`` from a conv reading ``cat(one_hot, edges?)`` with ``channels``
    inputs. Shapes alone cannot tell K classes + an edge channel from K + 1 classes: with
    ``num_classes`` given, the extra channels are ``channels - num_classes`` (0 or 1); else
    ``use_instances`` decides (default no edge channel, K = channels)."""
    if num_classes is None:
        extra = int(bool(use_instances))
        if channels - extra < 1:
            raise ValueError(f"{where} has {channels} label input channels: too few")
        return channels - extra, bool(extra)
    extra = channels - num_classes
    if extra not in (0, 1):
        raise ValueError(
            f"{where} reads {channels} label channels but num_classes={num_classes}: expected "
            f"{num_classes} (one-hot) or {num_classes + 1} (one-hot + instance edges)"
        )
    if use_instances is not None and bool(use_instances) != bool(extra):
        raise ValueError(
            f"{where} reads {channels} label channels: with num_classes={num_classes} that is "
            f"use_instances={bool(extra)}, but use_instances={use_instances} was given"
        )
    return num_classes, bool(extra)


def _w(sd: Mapping[str, Tensor], prefix: str) -> Tensor:
    return sd.get(f"{prefix}.weight_orig", sd.get(f"{prefix}.weight"))  # type: ignore[return-value]


# --------------------------------------------------------------------------- generator


def _infer_generator(
    sd: dict[str, Tensor],
    crop_size: int | None,
    aspect_ratio: float,
    upsampling: str | None,
    num_classes: int | None = None,
    use_instances: bool | None = None,
) -> dict[str, Any]:
    blocks = [b for b in BLOCKS if any(k.startswith(b + ".") for k in sd)]
    ngf = _w(sd, "head_0.conv_0").shape[1] // 16
    label_channels = sd["up_3.norm_0.mlp_shared.0.weight"].shape[1]
    if "embedding.weight" in sd:
        k = sd["embedding.weight"].shape[0]
        if label_channels != k or use_instances:
            raise ValueError(
                f"this CLVAE generator's up_3 SPADE reads {label_channels} channels for {k} "
                "classes: instance-edge channels are not supported for CLVAE generators"
            )
        instances = False
    else:
        k, instances = _split_classes(label_channels, num_classes, use_instances, "up_3.norm_0")
    cfg: dict[str, Any] = {
        "ngf": ngf,
        "num_classes": k,
        "spectral_norm": "head_0.conv_0.weight_orig" in sd,
    }
    if instances:
        cfg["use_instances"] = True
    norm = {
        "type": "clvae.spade",
        "hidden": sd["up_3.norm_0.mlp_shared.0.weight"].shape[0],
        "kernel_size": sd["up_3.norm_0.mlp_shared.0.weight"].shape[-1],
        "param_free_norm": (
            "batch" if "head_0.norm_0.param_free_norm.running_mean" in sd else "instance"
        ),
    }
    cfg["norm"] = norm
    fc = sd["fc.weight"]
    if fc.dim() == 4 and fc.shape[1] != label_channels:
        raise ValueError(
            f"fc reads {fc.shape[1]} channels but the SPADE blocks {label_channels}: not an "
            "official SPADE generator layout"
        )
    mode = _upsampling(sd, "up_4" in blocks, upsampling, crop_size, aspect_ratio, ngf)
    if fc.dim() == 2:
        cfg["z_dim"] = fc.shape[1]
        area = fc.shape[0] // (16 * ngf)
        if crop_size is None:
            n = {"normal": 5, "more": 6, "most": 7}[mode]
            sws = [s for s in range(1, area + 1) if s * round(s / aspect_ratio) == area]
            if not sws:
                raise ValueError(
                    f"fc has {area} = sh·sw positions, which aspect_ratio={aspect_ratio} cannot "
                    "give; pass crop_size and aspect_ratio"
                )
            crop_size = sws[0] * 2**n
        cfg["crop_size"] = crop_size
        cfg["aspect_ratio"] = aspect_ratio
    elif crop_size is not None:
        cfg["crop_size"] = crop_size
        cfg["aspect_ratio"] = aspect_ratio
    cfg["upsampling"] = mode
    if "embedding.weight" in sd:
        emb = sd["embedding.weight"]
        cfg["num_classes"], cfg["code_dim"] = emb.shape[0], emb.shape[1]
        cse = dict(norm, type="clvae.cse")
        cse["hidden"] = sd["head_0.norm_0.mlp_shared.0.weight"].shape[0]
        cfg["cse"] = cse
    return cfg


def _upsampling(
    sd: dict[str, Tensor],
    has_up_4: bool,
    upsampling: str | None,
    crop_size: int | None,
    aspect_ratio: float,
    ngf: int,
) -> str:
    """The official ``num_upsampling_layers``: "most" has ``up_4``; "normal" and "more" have
    the same modules and shapes, so they come from ``upsampling``, or for a VAE generator from
    ``crop_size`` (its fc holds ``sh·sw`` positions, ``sw = crop_size / 2**{5 | 6}``). Never
    guessed: a wrong guess builds a network with another output size."""
    if has_up_4:
        if upsampling not in (None, "most"):
            raise ValueError(
                f"upsampling={upsampling!r}, but the checkpoint has up_4, which only 'most' "
                "builds: pass upsampling='most' or leave it out"
            )
        return "most"
    if upsampling == "most":
        raise ValueError(
            "upsampling='most', but the checkpoint has no up_4: pass 'normal' or 'more'"
        )
    if upsampling is not None:
        return upsampling
    fc = sd["fc.weight"]
    if fc.dim() == 2 and crop_size is not None:
        area = fc.shape[0] // (16 * ngf)
        fits = [
            mode
            for mode, n in (("normal", 5), ("more", 6))
            if (crop_size // 2**n) * round(crop_size // 2**n / aspect_ratio) == area
        ]
        if len(fits) == 1:
            return fits[0]
        raise ValueError(
            f"fc holds {area} = sh·sw positions, which crop_size={crop_size} with "
            f"aspect_ratio={aspect_ratio} gives under neither 'normal' (sw = crop/32) nor "
            "'more' (sw = crop/64): check crop_size and aspect_ratio, or pass upsampling"
        )
    how = "pass upsampling" if fc.dim() == 4 else "pass upsampling, or crop_size"
    raise ValueError(
        "the checkpoint's shapes cannot tell upsampling 'normal' from 'more' (official "
        "num_upsampling_layers; 'more' adds an upsampling after G_middle_0: SPADE's "
        "Cityscapes, CLVAE's DeepFashion and GTA-5 models use it, ADE20K and COCO 'normal'): "
        f"{how} (the VAE generator's output width, from which its fc's size tells the mode)"
    )


def _generator_key(key: str) -> str | None:
    name, _, rest = key.partition(".")
    if name in BLOCKS:
        return spectral_norm_key_to_torch(f"stages.{BLOCKS.index(name)}.{rest}")
    if name in ("fc", "conv_img", "embedding"):
        return key
    return None


def _convert_generator(
    sd: dict[str, Tensor],
    *,
    clvae: bool,
    crop_size: int | None,
    aspect_ratio: float,
    upsampling: str | None,
    num_classes: int | None = None,
    use_instances: bool | None = None,
) -> nn.Module:
    _require(
        sd,
        "from_official_clvae('G')" if clvae else "from_official_spade('G')",
        _CG if clvae else _SG,
        _sn("head_0.conv_0"),
        "up_3.norm_0.mlp_shared.0.weight",
        "fc.weight",
        *(["embedding.weight", "head_0.norm_0.mlp_shared.0.weight"] if clvae else []),
    )
    is_clvae = "embedding.weight" in sd
    if clvae != is_clvae:
        which = "from_official_clvae" if is_clvae else "from_official_spade"
        raise ValueError(
            f"this generator checkpoint {'is' if is_clvae else 'is not'} CLVAE's; use {which}"
        )
    cfg = _infer_generator(sd, crop_size, aspect_ratio, upsampling, num_classes, use_instances)
    name = "clvae.clvae_generator" if clvae else "clvae.spade_generator"
    part = synth.build({"type": name, **cfg})
    mapped, unmapped = {}, []
    for k, v in sd.items():
        ours = _generator_key(k)
        if ours is None:
            unmapped.append(k)
        else:
            mapped[ours] = v
    who = "from_official_clvae" if clvae else "from_official_spade"
    return _fill(part, mapped, unmapped, who=who, kind="G", cfg=cfg)


# --------------------------------------------------------------------------- discriminator


def _convert_discriminator(
    sd: dict[str, Tensor], num_classes: int | None = None, use_instances: bool | None = None
) -> nn.Module:
    ids = sorted({int(m.group(1)) for k in sd if (m := re.match(r"discriminator_(\d+)\.", k))})
    _require(sd, "from_official_spade('D')", _D, "discriminator_0.model0.0.weight")
    models = {int(m.group(1)) for k in sd if (m := re.match(r"discriminator_0\.model(\d+)\.", k))}
    first = sd["discriminator_0.model0.0.weight"]
    spectral = any(k.endswith("weight_orig") for k in sd)
    # get_nonspade_norm_layer nests (conv, norm) only when there is a norm after the conv
    inst = any(k.startswith("discriminator_0.model1.0.0.") for k in sd)
    norm = ("spectral" if spectral else "") + ("instance" if inst else "") or "none"
    k, instances = _split_classes(
        first.shape[1] - 3, num_classes, use_instances, "discriminator_0.model0"
    )
    cfg: dict[str, Any] = {
        "num_classes": k,
        "ndf": first.shape[0],
        "n_layers": max(models),
        "num_d": len(ids),
        "norm": norm,
    }
    if instances:
        cfg["use_instances"] = True
    part = synth.build({"type": "clvae.multiscale_discriminator", **cfg})
    mapped, unmapped = {}, []
    for k, v in sd.items():
        m = re.match(r"discriminator_(\d+)\.(.*)", k)
        if m is None:
            unmapped.append(k)
            continue
        mapped[spectral_norm_key_to_torch(f"discriminators.{m.group(1)}.{m.group(2)}")] = v
    return _fill(part, mapped, unmapped, who="from_official_spade", kind="D", cfg=cfg)


# --------------------------------------------------------------------------- encoder


def _convert_encoder(sd: dict[str, Tensor], *, clvae: bool) -> nn.Module:
    layers = sorted({int(m.group(1)) for k in sd if (m := re.match(r"layer(\d+)\.", k))})
    who = "from_official_clvae('E')" if clvae else "from_official_spade('E')"
    _require(sd, who, _CE if clvae else _SE, _sn("layer1.0"), "fc_mu.weight")
    ndf = _w(sd, "layer1.0").shape[0]
    n = max(layers)
    fc_in = sd["fc_mu.weight"].shape[1]
    s0 = math.isqrt(fc_in // (8 * ndf))
    cfg: dict[str, Any] = {
        "ndf": ndf,
        "num_layers": n,
        "input_size": s0 * 2**n,
        "z_dim": sd["fc_mu.weight"].shape[0],
        "spectral_norm": "layer1.0.weight_orig" in sd,
    }
    is_clvae = "fc_mu1.weight" in sd
    if clvae != is_clvae:
        raise ValueError(
            "this encoder checkpoint "
            + ("has class heads: use from_official_clvae" if is_clvae else "has no class heads")
        )
    if clvae:
        cfg["code_dim"] = sd["fc_mu1.weight"].shape[0]
    name = "clvae.class_layer_encoder" if clvae else "clvae.conv_encoder"
    part = synth.build({"type": name, **cfg})
    mapped, unmapped = {}, []
    for k, v in sd.items():
        if re.match(r"layer\d+\.", k):
            mapped[spectral_norm_key_to_torch("body." + k)] = v
        elif re.match(r"fc_(mu|var)\d*\.", k):
            mapped[k] = v
        else:
            unmapped.append(k)
    who = "from_official_clvae" if clvae else "from_official_spade"
    return _fill(part, mapped, unmapped, who=who, kind="E", cfg=cfg)


# --------------------------------------------------------------------------- public


def from_official_spade(
    path_or_state_dict: str | Path | Mapping[str, Tensor],
    kind: Literal["G", "D", "E"] = "G",
    *,
    crop_size: int | None = None,
    aspect_ratio: float = 1.0,
    upsampling: Literal["normal", "more", "most"] | None = None,
    num_classes: int | None = None,
    use_instances: bool | None = None,
) -> nn.Module:
    """Build a synth part from an official SPADE/GauGAN checkpoint (``netG``/``netD``/``netE``).

    The architecture is read from the keys and shapes (ngf, classes, hidden width, batch vs
    instance param-free norm, spectral norm, z_dim, "most" upsampling, D's scales/layers/ndf,
    E's ndf/layers/input size). ``crop_size``/``aspect_ratio`` fix the VAE generator's base size
    (by default the square size the fc implies). ``upsampling`` ("normal" or "more": the
    official ``num_upsampling_layers``; "most" is read from the keys) is required when the
    shapes cannot tell the two apart -- always for a label-input generator, and for a VAE
    generator without ``crop_size`` -- and is never guessed (an error says so). The part is
    returned in eval mode with ``part.conversion_report`` (unmapped / missing keys, inferred
    config); a warning lists keys that did not map.

    Instance edges (official ``no_instance=False``, e.g. Cityscapes: 35 classes + 1 edge
    channel) add one input channel after the one-hot map to G's ``fc`` and every
    ``mlp_shared.0`` and to D's first conv; shapes cannot tell it from one more class. Give
    ``num_classes`` (the official ``label_nc`` + 1 if ``contain_dontcare_label``): the extra
    channel count ``mlp_shared.0.weight.shape[1] - num_classes`` (D: ``model0.0.weight.shape[1]
    - 3 - num_classes``) must be 0 or 1 and sets ``use_instances``. Without ``num_classes``,
    ``use_instances=True`` reads the last channel as the edge map; the default is no edges
    (every channel a class). Ignored for ``kind="E"``.
    """
    sd = read_checkpoint(path_or_state_dict)
    if kind == "G":
        return _convert_generator(
            sd,
            clvae=False,
            crop_size=crop_size,
            aspect_ratio=aspect_ratio,
            upsampling=upsampling,
            num_classes=num_classes,
            use_instances=use_instances,
        )
    if kind == "D":
        return _convert_discriminator(sd, num_classes, use_instances)
    if kind == "E":
        return _convert_encoder(sd, clvae=False)
    raise ValueError(f"kind must be 'G', 'D' or 'E', got {kind!r}")


def from_official_clvae(
    path_or_state_dict: str | Path | Mapping[str, Tensor],
    kind: Literal["G", "E"] = "G",
    *,
    crop_size: int | None = None,
    aspect_ratio: float = 1.0,
    upsampling: Literal["normal", "more", "most"] | None = None,
) -> nn.Module:
    """Build ``clvae.clvae_generator`` (``kind="G"``) or ``clvae.class_layer_encoder``
    (``kind="E"``) from an official DiversifyingSMIS checkpoint; as :func:`from_official_spade`.
    The CLVAE discriminator is SPADE's: convert it with ``from_official_spade(..., "D")``."""
    sd = read_checkpoint(path_or_state_dict)
    if kind == "G":
        return _convert_generator(
            sd, clvae=True, crop_size=crop_size, aspect_ratio=aspect_ratio, upsampling=upsampling
        )
    if kind == "E":
        return _convert_encoder(sd, clvae=True)
    raise ValueError(f"kind must be 'G' or 'E', got {kind!r}")


def to_official_spade(part: nn.Module) -> dict[str, Tensor]:
    """The official state dict of a synth generator, discriminator or encoder (round trip of
    :func:`from_official_spade` / :func:`from_official_clvae`)."""
    from .discriminators import MultiscaleDiscriminator
    from .encoders import ConvEncoder
    from .generators import SPADEGenerator

    out: dict[str, Tensor] = {}
    for k, v in part.state_dict().items():
        if isinstance(part, SPADEGenerator):
            m = re.match(r"stages\.(\d+)\.(.*)", k)
            key = f"{BLOCKS[int(m.group(1))]}.{m.group(2)}" if m else k
        elif isinstance(part, MultiscaleDiscriminator):
            key = re.sub(r"^discriminators\.(\d+)\.", r"discriminator_\1.", k)
        elif isinstance(part, ConvEncoder):
            key = k[len("body.") :] if k.startswith("body.") else k
        else:
            raise TypeError(f"no official layout for {type(part).__name__}")
        out[spectral_norm_key_to_official(key)] = v.detach().clone()
    return out


to_official_clvae = to_official_spade
