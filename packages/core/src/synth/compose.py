"""The composer: model spec -> checked graph -> :class:`synth.SynthesisModel` (DESIGN §5).

The whole graph is checked from the registered classes and the configs before any part is
built: kinds in the right sections, slot capabilities against the data's Condition fields plus
the injector's ``provides``, loss ``needs`` against what the generator, discriminator and
objective produce, image channels between generator and discriminator. All problems are
reported together in one :class:`ComposeError`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .condition import CONDITION_FIELDS
from .config import PartSpec, format_validation_error, normalize_spec, slot_fields
from .errors import ComposeError, ConfigError, RegistryError
from .latents import LATENT_FIELDS
from .model import SynthesisModel
from .parts.base import KINDS, Part
from .registry import Registry, get_registry, using_registry

__all__ = ["ModelSpec", "check_spec", "compose", "load_spec"]

_SECTIONS = {
    "generator": "generator",
    "injector": "injector",
    "discriminator": "discriminator",
    "objective": "objective",
    "sampler": "sampler",
}


class ModelSpec(BaseModel):
    """A full model: parts by section, plus the Condition fields the data supplies.

    ``condition`` lists the fields your data set gives (e.g. ``[label_map, instance_map]``);
    when omitted it is what the generator itself reads.
    """

    model_config = ConfigDict(extra="forbid")

    generator: PartSpec
    injector: PartSpec | None = None
    discriminator: PartSpec | None = None
    losses: dict[str, PartSpec] = Field(default_factory=dict)
    objective: PartSpec | None = None
    sampler: PartSpec = Field(default_factory=lambda: {"type": "core.prior"})
    condition: list[str] | None = None
    description: str = ""

    @field_validator("condition")
    @classmethod
    def _known_fields(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            bad = [f for f in v if f not in CONDITION_FIELDS]
            if bad:
                raise ValueError(
                    f"unknown Condition field(s) {bad}; fields are {', '.join(CONDITION_FIELDS)}"
                )
        return v

    @field_validator("losses")
    @classmethod
    def _loss_keys(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in v:
            if not key.isidentifier():
                raise ValueError(
                    f"loss name {key!r} must be an identifier (letters, digits, underscores)"
                )
        return v


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if (isinstance(v, Mapping) and isinstance(out.get(k), dict) and "type" not in v) or (
            isinstance(v, Mapping)
            and isinstance(out.get(k), dict)
            and v.get("type") == out[k].get("type")
        ):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _read_file(path: Path) -> dict[str, Any]:
    suffix = path.suffix.lower()
    text = path.read_text()
    if suffix == ".json":
        return json.loads(text)
    if suffix in {".yaml", ".yml"}:
        import yaml

        return yaml.safe_load(text)
    if suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib
        return tomllib.loads(text)
    raise ComposeError(f"spec file {path}: unknown format {suffix!r}; use .json, .yaml or .toml")


def load_spec(
    spec: ModelSpec | Mapping[str, Any] | str | Path, registry: Registry | None = None
) -> ModelSpec:
    """A ModelSpec from a dict, a JSON/YAML/TOML file, or a recipe name.

    A dict may start from a recipe with ``"base": "<recipe>"``; its other keys are merged on top
    (nested dicts merge while the ``type`` stays the same).
    """
    if isinstance(spec, ModelSpec):
        return spec
    reg = registry or get_registry()
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        if path.suffix.lower() in {".json", ".yaml", ".yml", ".toml"} or path.exists():
            if not path.is_file():
                raise ComposeError(f"spec file {str(path)!r} does not exist")
            data = _read_file(path)
            if path.name == "synth.json" and "spec" in data:
                data = data["spec"]
        else:
            data = {"base": str(spec)}
    else:
        data = dict(spec)
    base = data.pop("base", None)
    if base is not None:
        data = _deep_merge(reg.recipe(base).spec, data)
    try:
        return ModelSpec(**data)
    except ValidationError as e:
        raise ComposeError(str(format_validation_error(e, "model spec", ModelSpec))) from None


# --------------------------------------------------------------------------- checks


def _slot_requirements(
    reg: Registry, cls: type[Part], spec: Mapping[str, Any], where: str, problems: list[str]
) -> dict[str, frozenset[str]]:
    """``{"generator.norm (core.adain)": requires}`` for every slot, recursively.

    Slots are the Config fields typed ``PartSpec``; a slot given by name or left at its default
    is checked the same as one written out as a dict.
    """
    out: dict[str, frozenset[str]] = {}
    for key in slot_fields(cls.Config):
        value = spec.get(key, cls.Config.model_fields[key].get_default(call_default_factory=True))
        if value is None:
            continue
        try:
            sub = normalize_spec(value)
        except ValueError as e:
            problems.append(f"{where}.{key}: {e}")
            continue
        label = f"{where}.{key} ({sub['type']})"
        try:
            sub_cls = reg.resolve(sub["type"])
        except RegistryError as e:
            problems.append(f"{where}.{key}: {e}")
            continue
        out[label] = sub_cls.requirements(None)
        out.update(_slot_requirements(reg, sub_cls, sub, f"{where}.{key}", problems))
    return out


def _providers(reg: Registry, field: str) -> list[str]:
    names = []
    for name in reg.list("injector"):
        try:
            if field in reg.resolve(name).provided(None):
                names.append(name)
        except RegistryError:
            continue
    return names


def check_spec(spec: ModelSpec, registry: Registry | None = None) -> dict[str, Any]:
    """Check the whole graph from classes and configs; raise one ComposeError listing all
    problems. Returns the resolved classes, validated top-level configs and the data fields."""
    reg = registry or get_registry()
    problems: list[str] = []
    classes: dict[str, type[Part]] = {}
    configs: dict[str, Any] = {}

    def resolve(section: str, part_spec: Mapping[str, Any], kind: str) -> type[Part] | None:
        name = part_spec["type"]
        try:
            entry = reg.get(name)
            cls = entry.load()
        except RegistryError as e:
            problems.append(f"{section}: {e}")
            return None
        if entry.kind != kind:
            choices = ", ".join(reg.list(kind)) or "(none registered)"
            problems.append(
                f"{section}: {name!r} is a {entry.kind}, not a {kind}; registered {kind} parts: "
                f"{choices}"
            )
            return None
        return cls

    for section, kind in _SECTIONS.items():
        part_spec = getattr(spec, section)
        if part_spec is not None:
            cls = resolve(section, part_spec, kind)
            if cls is not None:
                classes[section] = cls
    for key, part_spec in spec.losses.items():
        cls = resolve(f"losses.{key}", part_spec, "loss")
        if cls is not None:
            classes[f"losses.{key}"] = cls

    # The generator is configured by the user alone, so its config can be validated now.
    gen_cls = classes.get("generator")
    if gen_cls is not None:
        try:
            configs["generator"] = gen_cls.coerce_config(spec.generator)
        except ConfigError as e:
            problems.append(f"generator: {e}")

    # ---- what the data and the injector make available
    gen_cfg = configs.get("generator")
    gen_reads = gen_cls.requirements(gen_cfg) if gen_cls is not None else frozenset()
    slot_reads = (
        _slot_requirements(reg, gen_cls, spec.generator, "generator", problems)
        if gen_cls is not None
        else {}
    )
    if spec.condition is not None:
        data_fields = frozenset(spec.condition)
    else:
        data_fields = frozenset(gen_reads) & frozenset(CONDITION_FIELDS)
    inj_cls = classes.get("injector")
    provided = inj_cls.provided(None) if inj_cls is not None else frozenset()
    available = data_fields | provided
    fix_data = (
        "declare the fields your data set has with `condition: [...]` in the spec"
        if spec.condition is None
        else "add the field to `condition` if your data set has it"
    )

    def missing_msg(who: str, missing: set[str]) -> str:
        parts = []
        for f in sorted(missing):
            if f in LATENT_FIELDS:
                prov = _providers(reg, f)
                hint = (
                    f"add an injector that provides it ({', '.join(prov)})"
                    if prov
                    else "add an injector that provides it"
                )
                have = (
                    f"the injector {spec.injector['type']!r} provides {sorted(provided)}"
                    if spec.injector
                    else "the spec has no injector"
                )
                parts.append(f"latent {f!r}: {have}; {hint}")
            else:
                parts.append(
                    f"Condition field {f!r}: the data provides {sorted(data_fields)}; {fix_data}"
                )
        return f"{who} requires " + "; ".join(parts)

    if gen_cls is not None:
        missing = set(gen_reads) - available
        if missing:
            problems.append(missing_msg(f"generator ({spec.generator['type']})", missing))
    for label, reads in slot_reads.items():
        missing = set(reads) - available
        if missing:
            problems.append(missing_msg(label, missing))
    disc_cls = classes.get("discriminator")
    if disc_cls is not None:
        missing = set(disc_cls.requirements(None)) - data_fields
        if missing:
            problems.append(missing_msg(f"discriminator ({spec.discriminator['type']})", missing))
        if gen_cls is not None and disc_cls.image_channels != gen_cls.image_channels:
            problems.append(
                f"discriminator ({spec.discriminator['type']}) reads {disc_cls.image_channels}-"
                f"channel images but the generator makes {gen_cls.image_channels}-channel ones"
            )
    if inj_cls is not None and spec.injector is not None:
        missing = set(inj_cls.requirements(None)) - data_fields
        if missing:
            problems.append(missing_msg(f"injector ({spec.injector['type']})", missing))

    # ---- what losses need vs what the graph produces
    produced: set[str] = {"image"}
    if gen_cls is not None:
        produced |= gen_cls.produces(gen_cfg)
    if disc_cls is not None:
        produced |= disc_cls.produces(None)
    if inj_cls is not None and inj_cls.has_posterior:
        produced.add("kl")
    obj_cls = classes.get("objective")
    if obj_cls is not None:
        produced |= obj_cls.provides
    for key, part_spec in spec.losses.items():
        cls = classes.get(f"losses.{key}")
        if cls is None:
            continue
        label = f"losses.{key} ({part_spec['type']})"
        for need in sorted(cls.needs - produced):
            if need == "pyramid":
                problems.append(
                    f"{label} needs a per-scale RGB pyramid but generator "
                    f"{spec.generator['type']!r} does not produce one; wrap the generator with a "
                    "pyramid adapter (per-scale RGB heads) or use a generator with has_pyramid"
                )
            elif need.startswith("disc_"):
                problems.append(f"{label} needs {need!r}: add a `discriminator` to the spec")
            elif need == "kl":
                problems.append(
                    f"{label} needs a KL term: use an injector with a posterior (an encoder)"
                )
            elif need == "samples":
                problems.append(
                    f"{label} needs several samples per input: use an objective that provides "
                    "'samples'"
                )
            else:
                problems.append(f"{label} needs {need!r}, which no part of the spec produces")
        if "discriminator" in cls.roles and disc_cls is None and "disc_logits" not in cls.needs:
            problems.append(f"{label} trains a discriminator: add a `discriminator` to the spec")
    if obj_cls is not None:
        for part in sorted(obj_cls.requires_parts):
            if getattr(spec, part, None) is None:
                problems.append(
                    f"objective ({spec.objective['type']}) needs a {part!r} in the spec"
                )

    if problems:
        raise ComposeError(
            "the model spec does not fit together:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    return {"classes": classes, "data_fields": data_fields}


def compose(
    spec: ModelSpec | Mapping[str, Any] | str | Path, *, registry: Registry | None = None
) -> SynthesisModel:
    """Build a :class:`synth.SynthesisModel` from a spec (dict, file, recipe name or ModelSpec).

    The graph is checked first (:func:`check_spec`); then the generator is built and offers its
    runtime arguments (``num_classes``, ``z_dim``, ``num_stages``, ...) to the other parts.
    """

    reg = registry or get_registry()
    with using_registry(reg):
        return _compose(load_spec(spec, reg), reg)


def _compose(spec: ModelSpec, reg: Registry) -> SynthesisModel:
    checked = check_spec(spec, reg)

    def build(section: str, part_spec: Mapping[str, Any], **offered: Any) -> Part:
        try:
            return reg.build(normalize_spec(part_spec), **offered)
        except ConfigError as e:
            raise ComposeError(f"{section}: {e}") from None

    generator = build("generator", spec.generator)
    offered = generator.runtime_args()
    injector = build("injector", spec.injector, **offered) if spec.injector else None
    discriminator = (
        build("discriminator", spec.discriminator, **offered) if spec.discriminator else None
    )
    losses = {k: build(f"losses.{k}", v, **offered) for k, v in spec.losses.items()}
    objective = build("objective", spec.objective) if spec.objective else None
    sampler = build("sampler", spec.sampler)
    return SynthesisModel(
        spec,
        generator=generator,
        injector=injector,
        discriminator=discriminator,
        losses=losses,
        objective=objective,
        sampler=sampler,
        data_fields=checked["data_fields"],
        registry=reg,
    )


assert set(_SECTIONS.values()) <= set(KINDS)
