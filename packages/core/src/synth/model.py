"""`SynthesisModel`: the composed model, and saving/loading it (``synth.json`` + safetensors)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from .condition import Condition
from .errors import CapabilityError, UnknownPartError
from .latents import Latents
from .outputs import SynthesisOutput
from .parts import Discriminator, Generator, LatentInjector, Loss, Sampler, TrainingObjective
from .registry import KNOWN_PLUGINS, Registry, get_registry

__all__ = ["FORMAT_VERSION", "SynthesisModel", "load"]

FORMAT_VERSION = 1
CONFIG_NAME = "synth.json"
WEIGHTS_NAME = "model.safetensors"


class SynthesisModel(nn.Module):
    """A composed model: ``generator``, optional ``injector`` and ``discriminator``, named
    ``losses``, an ``objective`` and a default ``sampler``, plus the ``spec`` it came from.

    Made by :func:`synth.compose`; saved with :meth:`save_pretrained`, restored by :func:`synth.load`.
    """

    def __init__(
        self,
        spec: Any,
        *,
        generator: Generator,
        injector: LatentInjector | None = None,
        discriminator: Discriminator | None = None,
        losses: Mapping[str, Loss] | None = None,
        objective: TrainingObjective | None = None,
        sampler: Sampler | None = None,
        data_fields: frozenset[str] = frozenset(),
        registry: Registry | None = None,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.generator = generator
        self.injector = injector
        self.discriminator = discriminator
        self.losses = nn.ModuleDict(dict(losses or {}))
        self.objective = objective
        self.sampler = sampler
        self.data_fields = frozenset(data_fields)
        self._registry = registry

    # ------------------------------------------------------------------ inference
    def check_condition(self, cond: Condition) -> None:
        """Raise ``ValueError`` if ``cond`` lacks a field the model reads or has a size or class
        count the generator cannot take."""
        if not isinstance(cond, Condition):
            raise TypeError(
                f"expected a synth.Condition, got {type(cond).__name__}; wrap tensors with "
                "synth.Condition(label_map=..., num_classes=...)"
            )
        missing = sorted(self.data_fields - cond.fields())
        if missing:
            raise ValueError(
                f"this model reads Condition field(s) {missing} but the Condition has only "
                f"{sorted(cond.fields())}; give it {', '.join(missing)}"
            )
        k = getattr(self.generator.config, "num_classes", None)
        if k is not None and cond.num_classes is not None and cond.num_classes != k:
            raise ValueError(
                f"Condition.num_classes = {cond.num_classes} but the generator was built for "
                f"num_classes = {k}; relabel the data or compose the model with num_classes="
                f"{cond.num_classes}"
            )
        self.generator.check_condition(cond)

    def generate(
        self,
        cond: Condition,
        latents: Latents | None = None,
        *,
        generator: torch.Generator | None = None,
        return_features: bool = False,
    ) -> SynthesisOutput:
        """One image per input. Codes come from ``latents`` or the injector's prior."""
        self.check_condition(cond)
        if latents is None and self.injector is not None:
            latents = self.injector.prior(cond, generator)
        out = self.generator(cond, latents, return_features=return_features)
        out.latents = latents
        return out

    def sample(
        self,
        cond: Condition,
        n: int,
        sampler: Sampler | Mapping[str, Any] | str | None = None,
        generator: torch.Generator | None = None,
        **kwargs: Any,
    ) -> SynthesisOutput:
        """``n`` samples per input: ``image [B·n, C, H, W]`` ordered ``(b n)``."""
        if n < 1:
            raise ValueError(f"n = {n}: ask for at least one sample per input")
        if sampler is None:
            sampler = self.sampler
        elif not isinstance(sampler, Sampler):
            sampler = (self._registry or get_registry()).build(sampler)
        if sampler is None:
            raise CapabilityError("this model has no sampler; pass sampler='core.prior'")
        self.check_condition(cond)
        return sampler.sample(self, cond, n, generator=generator, **kwargs)

    def encode(self, image: Tensor, cond: Condition) -> Latents:
        """Codes of ``image: [B, 3, H, W]`` from the injector's posterior."""
        if self.injector is None:
            raise CapabilityError("this model has no injector, so nothing to encode into")
        self.check_condition(cond)
        return self.injector.posterior(image, cond)

    # ------------------------------------------------------------------ persistence
    def checkpoint_state(self) -> dict[str, Tensor]:
        """The state saved with the model: everything but frozen pretrained loss backbones."""
        skip = tuple(
            f"losses.{k}." for k, loss in self.losses.items() if not loss.state_in_checkpoint
        )
        return {k: v for k, v in self.state_dict().items() if not k.startswith(skip)}

    def sampler_state(self) -> dict[str, Tensor]:
        """The default sampler's fitted state as ``sampler.<key>`` tensors (e.g. pix2pixHD's
        k-means centres), for :meth:`save_pretrained`; empty when it has none."""
        get = getattr(self.sampler, "state_dict", None)
        state = get() if callable(get) else {}
        return {f"{SAMPLER_PREFIX}{k}": v for k, v in state.items() if isinstance(v, Tensor)}

    def plugin_versions(self) -> dict[str, dict[str, str | None]]:
        """Dist and version of each plugin whose parts this model uses."""
        reg = self._registry or get_registry()
        used = {n.split(".", 1)[0] for n in _part_names(self.spec.model_dump())}
        infos = {i.name: i for i in reg.plugin_infos if i.status == "ok"}
        return {
            p: {
                "dist": infos[p].dist if p in infos else KNOWN_PLUGINS.get(p),
                "version": infos[p].version if p in infos else None,
            }
            for p in sorted(used)
        }

    def save_pretrained(self, path: str | os.PathLike) -> Path:
        """Write ``synth.json`` (spec + versions) and ``model.safetensors`` into directory ``path``.

        Both files are written to temporaries and renamed, so a crash never leaves half a model.
        """
        from . import __version__

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": "synth",
            "format_version": FORMAT_VERSION,
            "synth_core": __version__,
            "plugins": self.plugin_versions(),
            "spec": self.spec.model_dump(mode="json"),
        }
        state = _unshare({**self.checkpoint_state(), **self.sampler_state()})
        _atomic_write(path / WEIGHTS_NAME, lambda f: save_file(state, f, {"format": "pt"}))
        _atomic_write(path / CONFIG_NAME, lambda f: Path(f).write_text(json.dumps(meta, indent=2)))
        return path


#: Key prefix of the default sampler's state in ``model.safetensors``.
SAMPLER_PREFIX = "sampler."


def _part_names(obj: Any) -> set[str]:
    """Every ``type`` value in a nested spec."""
    out: set[str] = set()
    if isinstance(obj, Mapping):
        if isinstance(obj.get("type"), str):
            out.add(obj["type"])
        for v in obj.values():
            out |= _part_names(v)
    elif isinstance(obj, list):
        for v in obj:
            out |= _part_names(v)
    return out


def _unshare(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """safetensors refuses tensors that share storage: copy the second and later sharers."""
    seen: set[tuple[int, int]] = set()
    out = {}
    for k, v in state.items():
        v = v.detach()
        key = (v.untyped_storage().data_ptr(), v.untyped_storage().nbytes())
        if key in seen or not v.is_contiguous():
            v = v.clone().contiguous()
        seen.add(key)
        out[k] = v
    return out


def _atomic_write(target: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(
    path: str | os.PathLike,
    *,
    registry: Registry | None = None,
    map_location: str | torch.device = "cpu",
    for_training: bool = True,
) -> SynthesisModel:
    """Rebuild a model saved by :meth:`SynthesisModel.save_pretrained` and load it strictly.

    Reads only JSON and safetensors: nothing is unpickled. A plugin the model needs that is not
    installed is an error naming the dist (and version) to install.

    ``for_training=False`` builds what generates and leaves out the ``losses`` and the
    ``objective`` (their weights in the file are skipped): sampling a model trained with a
    pretrained perceptual loss then needs neither the backbone's weights file nor the plugin
    that only contributed a loss. ``synth sample`` loads this way.
    """
    from .composer import compose

    path = Path(path)
    config_file = path / CONFIG_NAME if path.is_dir() else path
    weights_file = config_file.parent / WEIGHTS_NAME
    if not config_file.is_file():
        raise FileNotFoundError(
            f"{config_file} not found: synth.load expects a directory written by "
            "model.save_pretrained(dir), holding synth.json and model.safetensors"
        )
    try:
        meta = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{config_file} is not a synth.json file: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != "synth" or "spec" not in meta:
        raise ValueError(f"{config_file} is not a synth.json file (no 'format': 'synth')")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{config_file} has format_version {meta['format_version']}, newer than this "
            f"synth-core understands ({FORMAT_VERSION}); upgrade synth-core"
        )
    reg = registry or get_registry()
    loaded = {i.name for i in reg.plugin_infos if i.status == "ok"} | {
        e.plugin for e in reg.entries().values()
    }
    spec = meta["spec"]
    training_only = ("losses.", "objective.")
    if not for_training:
        spec = {k: v for k, v in spec.items() if k not in ("losses", "objective")}
    used = {n.split(".", 1)[0] for n in _part_names(spec)}
    for plugin, info in (meta.get("plugins") or {}).items():
        if plugin not in loaded and (for_training or plugin in used):
            dist = info.get("dist") or KNOWN_PLUGINS.get(plugin) or plugin
            pin = f"=={info['version']}" if info.get("version") else ""
            raise UnknownPartError(
                f"{config_file} needs plugin {plugin!r}, which is not installed: "
                f"pip install {dist}{pin}"
            )
    model = compose(spec, registry=reg)
    if not weights_file.is_file():
        raise FileNotFoundError(f"{weights_file} not found next to {config_file}")
    try:
        state = load_file(str(weights_file), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(
            f"{weights_file} is not a valid safetensors file ({e}); synth never unpickles "
            "weights — re-save the model with save_pretrained"
        ) from None
    if not for_training:
        state = {k: v for k, v in state.items() if not k.startswith(training_only)}
    # the sampler's state exists only once it was fitted: it is not part of the strict check
    sampler_state = {
        k[len(SAMPLER_PREFIX) :]: state.pop(k) for k in list(state) if k.startswith(SAMPLER_PREFIX)
    }
    if sampler_state:
        if not callable(getattr(model.sampler, "load_state_dict", None)):
            raise ValueError(
                f"{weights_file} holds sampler state {sorted(sampler_state)} but the model's "
                f"sampler ({model.spec.sampler}) cannot load state"
            )
        model.sampler.load_state_dict(sampler_state)
    expected = model.checkpoint_state()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{weights_file} does not match the model of {config_file}: "
            f"missing keys {missing[:10]}{'...' if len(missing) > 10 else ''}, unexpected keys "
            f"{unexpected[:10]}{'...' if len(unexpected) > 10 else ''}"
        )
    model.load_state_dict(state, strict=False)
    return model
