"""``synth demo``: a first run that trains a hybrid of several papers' parts on real photos.

:func:`run_demo` composes a registered recipe (default :data:`DEFAULT_RECIPE`, GauGAN as a
composition: the SPADE generator with a global VAE code, pix2pixHD's multi-scale discriminator
and feature matching), shrinks it to CPU size (:data:`CPU_CAPS`), trains it on the embedded
demo photos (:func:`synth.data.demo`) for a few minutes, and writes to ``out_dir``:

==========================  ==========================================================
``samples.png``             one row per photo: label map | ground truth | n samples
``class_resample.png``      per row, one class's codes resampled and every other code
                            kept (only for models with per-class codes, e.g. CLVAE)
``loss_curve.png``          the logged losses (``log.jsonl`` holds the numbers)
``metrics.json``            LPIPS diversity, best-of-n L1, training speed, the spec used
``model/``                  the trained model (``synth.load`` / ``synth sample``)
``inputs/``                 the label maps (or low-resolution images) as PNG files, so
                            the printed ``synth sample`` command works as it is
==========================  ==========================================================

Recipes state the papers' sizes (ngf 64, 256 px, 151 classes); the demo caps widths and
depths (:data:`CPU_CAPS`), sets every ``num_classes`` to the demo labels' and every crop size
to ``size``, then applies the user's overrides. Pretrained backbones (VGG for perceptual
losses, AlexNet for LPIPS) are used when their files are on disk; otherwise the demo says so
and uses random backbones — it never waits on a download unless ``download=True``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from einops import rearrange
from torch import Tensor

from .condition import CONDITION_FIELDS, Condition
from .config import slot_fields
from .data.base import SynthDataset
from .data.demo import DemoDataset, demo
from .data.transforms import resize_image
from .errors import WeightsNotFoundError
from .registry import get_registry

__all__ = ["CPU_CAPS", "DEFAULT_RECIPE", "DemoResult", "demo_spec", "run_demo"]

#: GauGAN as a composition (SPADE G + global code + pix2pixHD D and feature matching).
DEFAULT_RECIPE = "clvae.gaugan_composed"

#: Upper bounds on part-config fields so that a paper-sized recipe trains on 2 CPU cores. Each
#: applies to every part (slots included) whose config has the field.
CPU_CAPS: dict[str, int] = {
    "ngf": 16,  # generator widths (pix2pixHD, SPADE, CLVAE, CRN)
    "ndf": 16,  # discriminator / encoder widths
    "nf": 16,  # RRDB trunk width
    "gc": 8,  # RRDB growth channels
    "nb": 1,  # RRDB blocks
    "n_blocks": 3,  # pix2pixHD residual blocks
    # pix2pixHD's encoder depth: 64 px / 2**2 keeps the 16x16 bottleneck it has at 256 px (four
    # halvings of 64 px leave 4x4, through which the label map's layout does not get across)
    "n_downsampling": 2,
    "n_downsample_global": 2,
    "max_channels": 128,  # CRN
    "num_levels": 5,  # CRN levels (64 px from 4 px)
    "hidden": 32,  # SPADE/CSE hidden maps (128), cIMLE noise encoder (100)
    "num_codes": 8,  # cIMLE m
    "inner_steps": 4,  # cIMLE L
}

#: Config fields set to the demo's image side, with a floor: the GauGAN/CLVAE encoders resize
#: their input to ``input_size`` and halve it six times.
_SIZE_FIELDS = {"crop_size": 1, "input_size": 64}


@dataclass
class DemoResult:
    """What :func:`run_demo` wrote and measured."""

    out_dir: Path
    files: dict[str, Path]
    metrics: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    sample_command: str = ""


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


def _shrink(
    part: dict[str, Any], where: str, size: int, num_classes: int | None, changes: list[str]
) -> None:
    """Cap one part config in place (:data:`CPU_CAPS`, sizes, classes); slots left at their
    defaults are written out first so that their fields are capped too (SPADE's ``hidden``)."""
    fields = _config_fields(part["type"])
    config = get_registry().get(part["type"]).load().Config if fields else None
    if config is not None:
        for slot in slot_fields(config):
            if slot not in part:
                default = fields[slot].get_default(call_default_factory=True)
                if isinstance(default, dict) and "type" in default:
                    part[slot] = copy.deepcopy(default)  # _part_dicts visits it next
    for key, cap in CPU_CAPS.items():
        if key not in fields:
            continue
        current = part.get(key, fields[key].default)
        if isinstance(current, int) and not isinstance(current, bool) and current > cap:
            part[key] = cap
            changes.append(f"{where}.{key} {current} → {cap}")
    if isinstance(part.get("channels"), list) and "max_channels" in fields:
        part.pop("channels")  # explicit per-level widths: let ngf/max_channels decide
        changes.append(f"{where}.channels → from ngf/max_channels")
    for key, floor in _SIZE_FIELDS.items():
        side = max(size, floor)
        if key in fields and part.get(key, fields[key].default) != side:
            part[key] = side
            changes.append(f"{where}.{key} → {side}")
    if "aspect_ratio" in fields and part.get("aspect_ratio", 1.0) != 1.0:
        part["aspect_ratio"] = 1.0  # the demo crops are square
        changes.append(f"{where}.aspect_ratio → 1")
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
    """The recipe's spec at demo size, and a list of the changes made (``"generator.ngf 64 →
    16"``). ``overrides`` (``{"generator.ngf": 32}``) are applied last, unchecked by the caps.
    """
    name = recipe or DEFAULT_RECIPE
    spec = copy.deepcopy(get_registry().recipe(name).spec)
    changes: list[str] = []
    for section, node in spec.items():
        for part in _part_dicts(node):
            _shrink(part, f"{section}({part['type']})", size, num_classes, changes)
    for dotted, value in (overrides or {}).items():
        _set_path(spec, dotted, value)
        changes.append(f"{dotted} = {value!r} (--set)")
    return spec, changes


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
    """Set ``weights: "none"`` on every part that reads pretrained weights; returns where."""
    where = []
    for section, node in spec.items():
        for part in _part_dicts(node):
            if "weights" in _config_fields(part["type"]) and part.get("weights") != "none":
                part["weights"] = "none"
                where.append(f"{section}({part['type']})")
    return where


# --------------------------------------------------------------------------- data


class _LowResolution(SynthDataset):
    """The demo photos as super-resolution pairs: ``image`` = bicubic ``real`` / ``scale``."""

    fields = frozenset({"image"})
    num_classes = None

    def __init__(self, photos: DemoDataset, scale: int) -> None:
        super().__init__(photos.seed)
        self.photos, self.scale = photos, scale

    def __len__(self) -> int:
        return len(self.photos)

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.photos.set_epoch(epoch)

    def _load(self, index: int, generator: torch.Generator) -> dict[str, Any]:
        real = self.photos[index]["real"]
        h, w = real.shape[-2:]
        return {"real": real, "image": resize_image(real, (h // self.scale, w // self.scale))}


def _datasets(
    spec: dict[str, Any], size: int, num_classes: int, seed: int
) -> tuple[SynthDataset, SynthDataset, str]:
    """Training and display data matching what the generator reads."""
    gen = spec.get("generator", {})
    info = get_registry().describe(gen["type"]) if "type" in gen else {}
    # a generator's `requires` also names latent fields (CRN: "spatial"); keep the inputs
    requires = (set(info.get("requires", ())) | set(spec.get("condition") or ())) & set(
        CONDITION_FIELDS
    )
    train = demo(size, num_classes, "train", seed, disk_cache=True)
    show = demo(size, num_classes, "all", seed, disk_cache=True)
    if "image" in requires and "label_map" not in requires:
        scale = int(gen.get("scale", _config_fields(gen["type"]).get("scale").default))
        if size % scale:
            raise ValueError(f"--size {size} is not divisible by the generator's scale {scale}")
        return _LowResolution(train, scale), _LowResolution(show, scale), "image"
    if requires - {"label_map", "instance_map"}:
        raise ValueError(
            f"synth demo trains on label maps or low-resolution photos; {gen['type']} needs "
            f"{sorted(requires)}"
        )
    return train, show, "label_map"


# --------------------------------------------------------------------------- pictures


def class_resample(
    model: Any, cond: Condition, classes: Tensor, n: int, generator: torch.Generator
) -> tuple[Tensor, Tensor] | None:
    """One class's codes resampled, every other code kept (CLVAE-style models).

    Args:
        cond: ``B`` label-map inputs; ``classes [B]``: the class to resample in each.
        n: resamples per input.

    Returns ``(base [B, 3, H, W], resampled [B, n, 3, H, W])``, or ``None`` when the model's
    prior has no per-class codes (``Latents.class_codes``). Batched: one generator call.
    """
    if model.injector is None:
        return None
    probe = model.injector.prior(cond[:1], generator)
    if probe.class_codes is None:
        return None
    # per input n + 1 images: the first keeps the drawn codes, the others resample one class
    m = n + 1
    cond_m = cond.repeat_interleave(m)
    base = model.injector.prior(cond, generator).map(lambda t: t.repeat_interleave(m, 0))
    fresh = model.injector.prior(cond_m, generator)
    assert base.class_codes is not None and fresh.class_codes is not None
    k = base.class_codes[0].shape[1]
    chosen = torch.nn.functional.one_hot(classes, k).bool()  # [B, K]
    later = torch.arange(m, device=chosen.device) > 0  # [m]: not the first of the group
    mask = rearrange(chosen[:, None, :] & later[None, :, None], "b m k -> (b m) k 1")
    base.class_codes = [
        torch.where(mask, f, o) for f, o in zip(fresh.class_codes, base.class_codes)
    ]
    image = rearrange(model.generator(cond_m, base).image, "(b m) c h w -> b m c h w", m=m)
    return image[:, 0], image[:, 1:]


def _largest_class(label_map: Tensor, k: int) -> Tensor:
    """The class covering most pixels of each map: ``[B, H, W] -> [B]``."""
    counts = torch.zeros(label_map.shape[0], k, dtype=torch.long, device=label_map.device)
    counts.scatter_add_(1, label_map.flatten(1), torch.ones_like(label_map.flatten(1)))
    return counts.argmax(1)


def _write_inputs(out: Path, cond: Condition, names: list[str]) -> list[Path]:
    """The inputs as PNG files ``synth sample`` reads (8-bit class ids, or RGB images)."""
    from PIL import Image

    from .viz import to_uint8

    folder = out / "inputs"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(names):
        path = folder / f"{name}.png"
        if cond.label_map is not None:
            ids = cond.label_map[i].to(torch.uint8).cpu().numpy()
            Image.fromarray(ids, mode="L").save(path)
        else:
            assert cond.image is not None
            Image.fromarray(to_uint8(cond.image[i : i + 1])[0]).save(path)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- the run


def run_demo(
    recipe: str | None = None,
    *,
    out_dir: str | os.PathLike = "runs/demo",
    minutes: float = 3.0,
    size: int = 64,
    num_classes: int = 8,
    batch_size: int = 4,
    num_samples: int = 6,
    lr: float = 1e-3,
    overrides: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str = "cpu",
    download: bool = False,
    progress: bool | None = None,
    log: Any = print,
) -> DemoResult:
    """Compose ``recipe`` at demo size, train it ``minutes`` on the demo photos, write the
    pictures, metrics and model to ``out_dir`` (see the module docstring)."""
    from .compose import compose
    from .data import make_collate
    from .metrics import LPIPSDiversity, lpips_weights_info
    from .parts.samplers import BestOfN
    from .train import Trainer, TrainerConfig
    from .viz import image_grid, sample_grid, save_image

    if minutes <= 0:
        raise ValueError(f"minutes = {minutes}: give a positive training time")
    out = Path(out_dir)
    name = recipe or DEFAULT_RECIPE
    spec, changes = demo_spec(name, size=size, num_classes=num_classes, overrides=overrides)
    notes: list[str] = []
    weights_error: str | None = None
    log(f"synth demo: {name} — {get_registry().recipe(name).description}")
    for line in changes:
        log(f"  demo size: {line}")
    train_data, show_data, mode = _datasets(spec, size, num_classes, seed)

    torch.manual_seed(seed)
    with _offline(not download):
        try:
            model = compose(spec)
        except WeightsNotFoundError as err:
            where = _random_backbones(spec)
            wanted = re.search(r"Put the file at '([^']+)'", str(err))
            notes.append(
                f"pretrained backbone weights are not on disk, so {', '.join(where)} use random "
                "backbones (the run still trains, less well); for ImageNet ones put "
                + (wanted.group(1) if wanted else "the weights file")
                + " there (metrics.json: weights_error says where to get it)"
            )
            weights_error = str(err)
            log("  note: no pretrained backbone weights on disk: random backbones (see below)")
            torch.manual_seed(seed)
            model = compose(spec)

    for stale in ("samples.png", "class_resample.png", "metrics.json", "loss_curve.png"):
        (out / stale).unlink(missing_ok=True)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    cfg = TrainerConfig(
        steps=10**9,
        batch_size=batch_size,
        time_limit=minutes * 60,
        run_dir=str(out),
        checkpoint_every=10**9,
        keep_last=1,
        log_every=5,
        sample_every=None,
        progress=progress,
        device=device,
        seed=seed,
        # one Adam for every network, faster than the papers' 1e-4..4e-4: minutes, not days
        optimizer={"lr": lr, "betas": (0.5, 0.999)},
    )
    log(f"training for {minutes:g} min on the demo photos ({size} px, batch {batch_size}) ...")
    t0 = time.perf_counter()
    trainer = Trainer(model, train_data, cfg)
    summary = trainer.fit(resume=False)
    seconds = time.perf_counter() - t0
    model = trainer.model.eval()

    items = [show_data[i] for i in range(len(show_data))]
    batch = make_collate(show_data)(items).to(trainer.device)
    cond, real = batch.cond, batch.real
    photos = show_data if isinstance(show_data, DemoDataset) else show_data.photos
    names = list(photos.names)
    palette = photos.palette
    files: dict[str, Path] = {}
    g = torch.Generator(trainer.device).manual_seed(seed)
    with torch.no_grad():
        out_s = model.sample(cond, num_samples, generator=g)
        samples = rearrange(out_s.image.float(), "(b n) c h w -> b n c h w", n=num_samples)
        # the label map alone is the clearer picture unless the generator reads instances
        shown = cond
        reads = set(getattr(model.generator, "requires", ())) | set(spec.get("condition") or ())
        if cond.label_map is not None and "instance_map" not in reads:
            shown = Condition(label_map=cond.label_map, num_classes=cond.num_classes)
        files["samples"] = out / "samples.png"
        sample_grid(shown, samples, real=real, path=files["samples"], palette=palette)

        if mode == "label_map":
            k = num_classes
            classes = _largest_class(cond.label_map, k)
            got = class_resample(model, cond, classes, num_samples, g)
            if got is None:
                notes.append(
                    "no class_resample.png: this model has no per-class codes (try "
                    "`synth demo --recipe clvae.ade20k`, whose CLVAE encoder gives them)"
                )
            else:
                from .viz import condition_tiles

                base, resampled = got
                tiles = (condition_tiles(shown, palette) + 1) / 2
                chosen = (cond.label_map == classes[:, None, None]).unsqueeze(1).cpu()
                # the chosen class in its colour on light grey: where the change may happen
                tiles = torch.where(chosen, tiles, torch.full_like(tiles, 0.85)) * 2 - 1
                rows = [
                    [tiles[i], real[i].cpu(), base[i].cpu(), *resampled[i].cpu().unbind(0)]
                    for i in range(cond.batch_size)
                ]
                labels = [
                    "class",
                    "real",
                    "sample",
                    *[f"resample {j + 1}" for j in range(num_samples)],
                ]
                files["class_resample"] = out / "class_resample.png"
                save_image(image_grid(rows, labels=labels), files["class_resample"])

        # best of n: the sample closest (L1) to the photo, against a single sample's distance
        best = BestOfN({"distance": {"type": "core.l1"}}).sample(
            model, cond, num_samples, generator=g, target=real
        )
        distances = best.extras["distances"].float()

    trunk = lpips_weights_info("alex", "imagenet")
    lpips_weights = "imagenet" if isinstance(trunk, dict) and trunk.get("file") else "none"
    if lpips_weights == "none":
        from .io.weights import weights_dir

        url = trunk.get("url", "") if isinstance(trunk, dict) else ""
        notes.append(
            "LPIPS uses a random AlexNet trunk (ImageNet weights not on disk; put "
            f"{weights_dir() / url.rsplit('/', 1)[-1]} there, from {url}): its diversity "
            "value is comparable between runs of this demo, not with published numbers"
        )
    metric = LPIPSDiversity({"weights": lpips_weights}).to(trainer.device)
    metric.update(samples=samples)
    diversity = metric.compute()

    files["loss_curve"] = out / "loss_curve.png"
    files["model"] = out / "model"
    files["log"] = out / "log.jsonl"
    inputs = _write_inputs(out, cond, names)
    flag = "--label-map" if mode == "label_map" else "--image"
    command = f"synth sample {files['model']} {flag} {inputs[0]} -n {num_samples} --out {out / 'more_samples'}"
    metrics = {
        "recipe": name,
        "lpips_diversity": float(diversity["lpips_diversity"]),
        "lpips_diversity_std": float(diversity["std"]),
        "lpips_weights": lpips_weights,
        f"best_of_{num_samples}_l1": float(distances.min(1).values.mean()),
        "mean_sample_l1": float(distances.mean()),
        "train": {
            "steps": int(summary["step"]),
            "seconds": round(seconds, 1),
            "images_per_s": round(int(summary["step"]) * batch_size / seconds, 3),
            "final_losses": summary["losses"],
        },
        "settings": {
            "size": size,
            "num_classes": num_classes,
            "batch_size": batch_size,
            "minutes": minutes,
            "num_samples": num_samples,
            "seed": seed,
            "device": str(trainer.device),
            "changes": changes,
            "spec": spec,
        },
        "notes": notes,
        "weights_error": weights_error,
        "sample_command": command,
    }
    files["metrics"] = out / "metrics.json"
    files["metrics"].write_text(json.dumps(metrics, indent=2, default=str))
    return DemoResult(out, files, metrics, notes, command)
