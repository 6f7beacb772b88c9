"""`SynthesisModel`: the composed model, and saving it (``synth.json`` + safetensors); :mod:`synth.pretrained` loads it back."""

from __future__ import annotations

import contextlib
import json
import operator
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from .condition import Condition
from .errors import CapabilityError
from .io.files import atomic_write, unshare_storage
from .latents import Latents
from .outputs import SynthesisOutput
from .parts.base import Discriminator, Generator, LatentInjector, Loss, Objective, Sampler
from .registry import KNOWN_PLUGINS, Registry, get_registry
from .version import __version__

__all__ = [
    "CONFIG_NAME",
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "SynthesisModel",
    "part_names",
]

#: 2: the sampler's fitted state is part of the model's state dict (``sampler.*`` keys are
#: always present for a sampler that is a module); 1: they were written only once fitted.
FORMAT_VERSION = 2
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
        objective: Objective | None = None,
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

    def __setattr__(self, name: str, value: Any) -> None:
        # the default sampler is a submodule only when it holds state (an nn.Module): replacing
        # it with a stateless one drops the submodule instead of tripping nn.Module's check
        if name == "sampler" and not isinstance(value, nn.Module):
            self._modules.pop("sampler", None)
        super().__setattr__(name, value)

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
        k = self.generator.num_classes
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
        grad: bool = False,
    ) -> SynthesisOutput:
        """One image per input. Codes come from ``latents`` or the injector's prior.

        Runs under ``torch.no_grad()`` (inference keeps no graph); ``grad=True`` records one,
        e.g. to optimise ``latents`` against a loss. Training objectives call the parts
        directly and are unaffected.
        """
        self.check_condition(cond)
        if latents is not None:
            self.check_latents(latents, cond)
        with _autograd(grad):
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
        grad: bool = False,
        **keywords: Any,
    ) -> SynthesisOutput:
        """``n`` samples per input: ``image [B·n, C, H, W]`` ordered ``(b n)``.

        ``sampler`` (default: the model's) is a Sampler, a part name or spec; ``keywords``
        are its own parameters (e.g. ``target=`` for ``core.best_of_n``), checked against
        its ``sample`` signature: an unknown or missing one is a ``TypeError`` saying what it
        takes. Runs under ``torch.no_grad()`` unless ``grad=True``.
        """
        n = _count(n)
        if sampler is None:
            sampler = self.sampler
        elif not isinstance(sampler, Sampler):
            sampler = (self._registry or get_registry()).build(sampler)
        if sampler is None:
            raise CapabilityError("this model has no sampler; pass sampler='core.prior'")
        self.check_condition(cond)
        with _autograd(grad):
            return sampler(self, cond, n, generator=generator, **keywords)

    def encode(self, image: Tensor, cond: Condition) -> Latents:
        """Codes of ``image: [B, 3, H, W]`` from the injector's posterior."""
        if self.injector is None:
            raise CapabilityError("this model has no injector, so nothing to encode into")
        self.check_condition(cond)
        self.check_image(image, cond)
        return self.injector.posterior(image, cond)

    def check_latents(self, latents: Latents, cond: Condition) -> None:
        """Raise ``TypeError``/``ValueError`` unless ``latents`` fit ``cond`` and this model,
        before any layer runs: every tensor has ``cond``'s batch size, and each field the
        injector's prior fills is present with the prior's shape (so the per-stage count of
        ``styles``/``class_codes`` and every width match). Fields the prior does not fill
        (``kl``, ``extras`` from a posterior) are allowed."""
        if not isinstance(latents, Latents):
            raise TypeError(
                f"latents must be a synth.Latents, got {type(latents).__name__}: wrap the codes, "
                "e.g. synth.Latents(z=z), or draw them with model.injector.prior(cond)"
            )
        b = cond.batch_size
        given = _latent_tensors(latents)
        for name, t in given.items():
            if t.shape[:1] != (b,) and name != "latents.kl":
                raise ValueError(
                    f"{name} has shape {tuple(t.shape)}: batch {t.shape[0] if t.dim() else '()'} "
                    f"but the Condition has {b} inputs (batch size); give one code per input"
                )
        if self.injector is None:
            return
        # the prior of this injector for this Condition is the reference shape of each field;
        # drawn from its own seeded generator so the caller's random streams are untouched
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            seed = torch.Generator(device=cond.device).manual_seed(0)
            want = _latent_tensors(self.injector.prior(cond, seed))
        name = type(self.injector).__name__
        fix = "draw codes with model.injector.prior(cond) to see the shapes it makes"
        for field in ("styles", "class_codes"):
            have, takes = getattr(latents, field), _prior_list(want, field)
            if takes and have is not None and len(have) != len(takes):
                raise ValueError(
                    f"latents.{field} has {len(have)} tensor(s) but this model takes "
                    f"{len(takes)}, one per stage ({name}); {fix}"
                )
        missing = sorted(
            {k.split("[")[0] for k in want if k not in given and not k.startswith("latents.extras")}
        )
        if missing:
            filled = sorted({k.split("[")[0] for k in want})
            raise ValueError(
                f"{', '.join(missing)} missing: this model's injector ({name}) fills "
                f"{', '.join(filled)}; {fix}"
            )
        for key, ref in want.items():
            t = given.get(key)
            if t is not None and t.shape != ref.shape:
                raise ValueError(
                    f"{key} has shape {tuple(t.shape)} but this model's injector ({name}) makes "
                    f"{tuple(ref.shape)}; {fix}"
                )

    def check_image(self, image: Tensor, cond: Condition, what: str = "image") -> None:
        """Raise ``TypeError``/``ValueError`` unless ``image`` is ``[B, C, H, W]`` with the
        generator's channel count ``C`` and ``cond``'s batch size (numpy arrays and
        channels-last tensors get the conversion to use)."""
        c = self.generator.image_channels
        layout = f"[B, {c}, H, W]"
        if not isinstance(image, Tensor):
            hint = (
                "; convert it: torch.from_numpy(x).permute(0, 3, 1, 2).float() / 127.5 - 1 for "
                "uint8 [B, H, W, C]"
                if type(image).__module__ == "numpy"
                else ""
            )
            raise TypeError(
                f"{what} must be a torch tensor {layout}, got {type(image).__name__}{hint}"
            )
        shape = tuple(image.shape)
        if image.dim() != 4:
            one = f"; for one image use {what}[None]" if image.dim() == 3 else ""
            raise ValueError(
                f"{what} has shape {shape} ({image.dim()} dims): expected {layout}, 4 dims{one}"
            )
        if shape[1] != c:
            hint = (
                f"; this looks channels-last [B, H, W, C]: use {what}.permute(0, 3, 1, 2)"
                if shape[-1] == c
                else f"; for a grayscale image use {what}.expand(-1, {c}, -1, -1)"
                if shape[1] == 1
                else ""
            )
            raise ValueError(
                f"{what} has shape {shape}: {shape[1]} channel(s), but this model reads "
                f"{c}-channel images {layout}{hint}"
            )
        if shape[0] != cond.batch_size:
            raise ValueError(
                f"{what} has batch {shape[0]} but the Condition has {cond.batch_size} inputs "
                "(batch size); give one image per input"
            )

    # ------------------------------------------------------------------ persistence
    def checkpoint_state(self) -> dict[str, Tensor]:
        """The state saved with the model: everything but frozen pretrained loss backbones."""
        skip = tuple(
            f"losses.{k}." for k, loss in self.losses.items() if not loss.state_in_checkpoint
        )
        return {k: v for k, v in self.state_dict().items() if not k.startswith(skip)}

    def plugin_versions(self) -> dict[str, dict[str, str | None]]:
        """Dist and version of each plugin whose parts this model uses."""
        reg = self._registry or get_registry()
        used = {n.split(".", 1)[0] for n in part_names(self.spec.model_dump())}
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

        The weights are :meth:`checkpoint_state`: every part that is a module, the default
        sampler included when it holds fitted state (e.g. k-means cluster centres).

        Both files are written to temporaries and renamed, so a crash never leaves half a model.
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": "synth",
            "format_version": FORMAT_VERSION,
            "synth_core": __version__,
            "plugins": self.plugin_versions(),
            "spec": self.spec.model_dump(mode="json"),
        }
        state = unshare_storage(self.checkpoint_state())
        atomic_write(path / WEIGHTS_NAME, lambda f: save_file(state, f, {"format": "pt"}))
        atomic_write(path / CONFIG_NAME, lambda f: Path(f).write_text(json.dumps(meta, indent=2)))
        return path


def _autograd(grad: bool) -> contextlib.AbstractContextManager[Any]:
    """``torch.no_grad()`` for inference, or nothing (autograd as the caller has it)."""
    return contextlib.nullcontext() if grad else torch.no_grad()


def _count(n: Any) -> int:
    """``n`` samples per input as a positive ``int`` (numpy and 0-d integer tensors too)."""
    try:
        if isinstance(n, bool):
            raise TypeError
        value = operator.index(n)
    except TypeError:
        raise TypeError(
            f"n = {n!r} ({type(n).__name__}): give the number of samples per input as a "
            "positive int, e.g. model.sample(cond, n=4)"
        ) from None
    if value < 1:
        raise ValueError(f"n = {n!r}: ask for a positive number of samples per input, e.g. n=4")
    return value


def _latent_tensors(latents: Latents) -> dict[str, Tensor]:
    """Every tensor of ``latents`` by a name for messages: ``latents.z``,
    ``latents.styles[0]``, ``latents.extras['x']``; a field of the wrong type is a
    ``TypeError`` naming it."""
    out: dict[str, Tensor] = {}

    def put(name: str, value: Any) -> None:
        if not isinstance(value, Tensor):
            hint = (
                " (convert it with torch.from_numpy)" if type(value).__module__ == "numpy" else ""
            )
            raise TypeError(f"{name} must be a torch tensor, got {type(value).__name__}{hint}")
        out[name] = value

    for field in ("z", "spatial", "kl"):
        if getattr(latents, field) is not None:
            put(f"latents.{field}", getattr(latents, field))
    for field in ("styles", "class_codes"):
        value = getattr(latents, field)
        if value is None:
            continue
        if not isinstance(value, (list, tuple)):
            raise TypeError(
                f"latents.{field} must be a list with one tensor per stage, got "
                f"{type(value).__name__}; e.g. list(t.unbind(0)) for a [stages, B, ...] tensor"
            )
        for i, t in enumerate(value):
            put(f"latents.{field}[{i}]", t)
    for key, t in latents.extras.items():
        put(f"latents.extras[{key!r}]", t)
    return out


def _prior_list(tensors: Mapping[str, Tensor], field: str) -> list[Tensor]:
    """The per-stage tensors of ``field`` in :func:`_latent_tensors`' output, in order."""
    return [t for k, t in tensors.items() if k.startswith(f"latents.{field}[")]


def part_names(obj: Any) -> set[str]:
    """Every ``type`` value in a nested spec."""
    out: set[str] = set()
    if isinstance(obj, Mapping):
        if isinstance(obj.get("type"), str):
            out.add(obj["type"])
        for v in obj.values():
            out |= part_names(v)
    elif isinstance(obj, list):
        for v in obj:
            out |= part_names(v)
    return out
