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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .condition import CONDITION_FIELDS
from .config import (
    RUNTIME_ARGS,
    PartConfig,
    PartSpec,
    format_validation_error,
    normalize_spec,
    slot_fields,
    validation_problems,
)
from .errors import ComposeError, ConfigError, RegistryError
from .latents import LATENT_FIELDS
from .model import SynthesisModel
from .parts.base import KINDS, Part
from .registry import Registry, get_registry, using_registry

__all__ = ["ModelSpec", "check_spec", "compose", "load_spec", "read_config_file"]

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


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a ``.json``, ``.yaml``/``.yml`` or ``.toml`` file (a spec or run config).

    Raises:
        ConfigError: the file cannot be read or parsed (the message names the file and, from
            the parser, the line), or it does not hold a mapping.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".json", ".yaml", ".yml", ".toml"}:
        raise ComposeError(
            f"spec file {path}: unknown format {suffix!r}; use .json, .yaml or .toml"
        )
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the file ({e})") from None
    try:
        data = _parse(text, suffix)
    except Exception as e:  # each format's own parse error: json, yaml and toml share no base
        kind = {".yml": "YAML", ".yaml": "YAML", ".json": "JSON", ".toml": "TOML"}[suffix]
        raise ConfigError(f"{path}: not valid {kind}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: holds a {type(data).__name__}, not a mapping; a spec or run config is a "
            "mapping of sections, e.g. `generator: {type: ...}`"
        )
    return data


def _parse(text: str, suffix: str) -> Any:
    if suffix == ".json":
        return json.loads(text)
    if suffix in {".yaml", ".yml"}:
        import yaml

        return yaml.safe_load(text)
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads(text)


#: The old private name, still imported by the trainer and the CLI.
_read_file = read_config_file

#: Sections of a ``synth train`` run config; a spec has none of them.
_RUN_SECTIONS = ("model", "data", "train")


def _reject_run_config(data: Mapping[str, Any], source: str) -> None:
    """A run config (``model``/``data``/``train`` sections) is not a model spec: say so."""
    found = [k for k in _RUN_SECTIONS if k in data]
    if found and "generator" not in data and "base" not in data:
        raise ComposeError(
            f"{source} is a run config (it has {', '.join(found)}), not a model spec: train it "
            "with `synth train FILE`, or give compose its `model` section"
        )


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
            data = read_config_file(path)
            if path.name == "synth.json" and "spec" in data:
                data = data["spec"]
            _reject_run_config(data, f"spec file {path}")
        else:
            data = {"base": str(spec)}
    else:
        data = dict(spec)
        _reject_run_config(data, "this dict")
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
    is checked the same as one written out as a dict. What a slot reads comes from its spec
    (:func:`_requirements`), so e.g. a wrapped generator configured without noise inputs does
    not ask for them.
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
        problems += _config_problems(sub_cls, sub, label)
        out[label] = _requirements(sub_cls, sub)
        out.update(_slot_requirements(reg, sub_cls, sub, f"{where}.{key}", problems))
    return out


def _config_problems(
    cls: type[Part], spec: Mapping[str, Any], label: str, *, offered: bool = True
) -> list[str]:
    """What is wrong with the config a user wrote for a part: unknown keys with close matches,
    bad values. With ``offered`` its host offers it runtime arguments later, so a missing
    runtime argument is not a problem yet. Lets one ComposeError list every section's and
    slot's config problems instead of stopping at the first part built."""
    data = {k: v for k, v in spec.items() if k != "type"}
    try:
        cls.Config.model_validate(data)
    except ValidationError as e:
        errors = [
            err
            for err in e.errors()
            if not offered
            or (err["loc"] and not (err["type"] == "missing" and err["loc"][0] in RUNTIME_ARGS))
        ]
        return [f"{label}: {line}" for line in validation_problems(errors, cls.Config)]
    except Exception:  # a validator that needs a runtime argument not offered yet: build checks it
        return []
    return []


def _providers(reg: Registry, field: str) -> list[str]:
    names = []
    for name in reg.list("injector"):
        try:
            if field in reg.resolve(name).provided(None):
                names.append(name)
        except RegistryError:
            continue
    return names


def _has_pyramid(reg: Registry, name: str) -> bool:
    try:
        return bool(getattr(reg.resolve(name), "has_pyramid", False))
    except RegistryError:
        return False


def _resolve_classes(spec: ModelSpec, reg: Registry, problems: list[str]) -> dict[str, type[Part]]:
    """``{"generator": cls, "losses.gan": cls, ...}`` for every part whose name resolves to a
    class of its section's kind; the others are reported in ``problems``."""
    wanted = [(s, getattr(spec, s), k) for s, k in _SECTIONS.items() if getattr(spec, s)]
    wanted += [(f"losses.{k}", v, "loss") for k, v in spec.losses.items()]
    classes: dict[str, type[Part]] = {}
    for section, part_spec, kind in wanted:
        name = part_spec["type"]
        try:
            entry = reg.get(name)
            cls = entry.load()
        except RegistryError as e:
            problems.append(f"{section}: {e}")
            continue
        if entry.kind != kind:
            choices = ", ".join(reg.list(kind)) or "(none registered)"
            problems.append(
                f"{section}: {name!r} is a {entry.kind}, not a {kind}; registered {kind} parts: "
                f"{choices}"
            )
            continue
        classes[section] = cls
    return classes


@dataclass
class _Graph:
    """What the checks read: the spec, its resolved classes, and the fields each side offers.

    ``data_fields``: Condition fields the data gives; ``provided``: latents the injector fills;
    ``produced``: what the generator, discriminator, posterior and objective put in the loss
    inputs; ``slot_reads``: what each slot block reads, by a label naming the slot.
    """

    spec: ModelSpec
    reg: Registry
    classes: dict[str, type[Part]]
    gen_config: PartConfig | None
    slot_reads: dict[str, frozenset[str]]
    data_fields: frozenset[str]
    provided: frozenset[str]
    produced: frozenset[str]

    def cls(self, section: str) -> type[Part] | None:
        return self.classes.get(section)

    def label(self, section: str) -> str:
        return f"{section} ({self._spec_of(section)['type']})"

    def _spec_of(self, section: str) -> Mapping[str, Any]:
        if section.startswith("losses."):
            return self.spec.losses[section.split(".", 1)[1]]
        return getattr(self.spec, section)

    def pyramid_fix(self) -> str:
        """How to get a pyramid: the registered generators that make one (an adapter that wraps
        any generator among them), found by capability, not by name."""
        names = [n for n in self.reg.list("generator") if _has_pyramid(self.reg, n)]
        listed = f" (registered: {', '.join(names)})" if names else ""
        return (
            "wrap the generator in a pyramid adapter (per-scale RGB heads) or use a generator "
            f"with has_pyramid{listed}"
        )

    def missing(self, who: str, reads: frozenset[str], available: frozenset[str]) -> list[str]:
        """One problem naming every field ``who`` reads that ``available`` lacks, with the fix."""
        missing = sorted(set(reads) - available)
        if not missing:
            return []
        return [f"{who} requires " + "; ".join(self._missing_one(f) for f in missing)]

    def _missing_one(self, field: str) -> str:
        if field in LATENT_FIELDS:
            prov = _providers(self.reg, field)
            hint = "add an injector that provides it" + (f" ({', '.join(prov)})" if prov else "")
            inj = self.spec.injector
            have = (
                f"the injector {inj['type']!r} provides {sorted(self.provided)}"
                if inj
                else "the spec has no injector"
            )
            return f"latent {field!r}: {have}; {hint}"
        fix = (
            "declare the fields your data set has with `condition: [...]` in the spec"
            if self.spec.condition is None
            else "add the field to `condition` if your data set has it"
        )
        return f"Condition field {field!r}: the data provides {sorted(self.data_fields)}; {fix}"


def _graph(spec: ModelSpec, reg: Registry, problems: list[str]) -> _Graph:
    classes = _resolve_classes(spec, reg, problems)
    gen_cls, gen_cfg = classes.get("generator"), None
    if gen_cls is not None:
        # the generator is configured by the user alone, so its config can be validated now
        try:
            gen_cfg = gen_cls.coerce_config(spec.generator)
        except ConfigError as e:
            label = f"generator ({spec.generator['type']})"
            problems += _config_problems(gen_cls, spec.generator, label, offered=False) or [
                f"{label}: {e}"
            ]
    gen_reads = gen_cls.requirements(gen_cfg) if gen_cls is not None else frozenset()
    slot_reads = (
        _slot_requirements(reg, gen_cls, spec.generator, "generator", problems) if gen_cls else {}
    )
    if spec.condition is not None:
        data_fields = frozenset(spec.condition)
    else:
        data_fields = frozenset(gen_reads) & frozenset(CONDITION_FIELDS)
    inj_cls, disc_cls, obj_cls = (
        classes.get(s) for s in ("injector", "discriminator", "objective")
    )
    produced = {"image"}
    produced |= gen_cls.produces(gen_cfg) if gen_cls is not None else set()
    produced |= disc_cls.produces(None) if disc_cls is not None else set()
    produced |= {"kl"} if inj_cls is not None and inj_cls.has_posterior else set()
    produced |= _objective_provides(spec, obj_cls, problems)
    return _Graph(
        spec=spec,
        reg=reg,
        classes=classes,
        gen_config=gen_cfg,
        slot_reads=slot_reads,
        data_fields=data_fields,
        provided=inj_cls.provided(None) if inj_cls is not None else frozenset(),
        produced=frozenset(produced),
    )


def _objective_provides(
    spec: ModelSpec, cls: type[Part] | None, problems: list[str]
) -> frozenset[str]:
    """What the objective adds to the loss inputs with its config (e.g. ``samples`` when a GAN
    draws several samples per input); like the generator, it is configured by the user alone."""
    if cls is None:
        return frozenset()
    try:
        return cls.provided(cls.coerce_config(spec.objective))
    except ConfigError as e:
        label = f"objective ({spec.objective['type']})"
        problems += _config_problems(cls, spec.objective, label, offered=False) or [f"{label}: {e}"]
        return frozenset()


# --------------------------------------------------------------------------- the checks
# Each check reads the graph and returns its problems; check_spec runs them all, so one
# ComposeError lists everything that does not fit.


def _check_generator_reads(g: _Graph) -> list[str]:
    """The generator and every block in its slots get what they read (data or latents)."""
    cls = g.cls("generator")
    if cls is None:
        return []
    available = g.data_fields | g.provided
    problems = g.missing(g.label("generator"), cls.requirements(g.gen_config), available)
    for label, reads in g.slot_reads.items():
        problems += g.missing(label, reads, available)
    return problems


def _requirements(cls: type[Part], spec: Mapping[str, Any]) -> frozenset[str]:
    """What a part with this spec reads. Its config may still lack runtime arguments the
    generator offers later, so it is read as written (unvalidated); a part whose
    ``requirements`` cannot work from that falls back to its class-level declaration."""
    data = {k: v for k, v in spec.items() if k != "type"}
    try:
        return frozenset(cls.requirements(cls.coerce_config(data)))
    except ConfigError:
        pass
    try:
        return frozenset(cls.requirements(cls.Config.model_construct(**data)))
    except Exception:  # a requirements() that needs validated fields
        return frozenset(cls.requirements(None))


def _check_discriminator(g: _Graph) -> list[str]:
    """The discriminator reads only data fields, and images of the generator's channels."""
    cls, gen = g.cls("discriminator"), g.cls("generator")
    if cls is None:
        return []
    label = g.label("discriminator")
    problems = g.missing(label, _requirements(cls, g.spec.discriminator), g.data_fields)
    if cls.reads_pyramid and gen is not None and "pyramid" not in g.produced:
        problems.append(
            f"{label} scores every level of an RGB pyramid but generator "
            f"{g.spec.generator['type']!r} does not produce one; {g.pyramid_fix()}"
        )
    if gen is not None and cls.image_channels != gen.image_channels:
        problems.append(
            f"{label} reads {cls.image_channels}-channel images but the generator makes "
            f"{gen.image_channels}-channel ones"
        )
    return problems


def _check_injector_reads(g: _Graph) -> list[str]:
    """The injector reads only data fields (it makes the latents, so none are available)."""
    cls = g.cls("injector")
    if cls is None:
        return []
    return g.missing(g.label("injector"), _requirements(cls, g.spec.injector), g.data_fields)


#: What to tell the user when a loss needs something no part produces.
_NEED_FIXES: dict[str, str] = {
    "pyramid": "needs a per-scale RGB pyramid but generator {gen!r} does not produce one; "
    "{pyramid_fix}",
    "kl": "needs a KL term: use an injector with a posterior (an encoder)",
    "samples": "needs several samples per input: use an objective that provides 'samples'",
}


def _check_loss_needs(g: _Graph) -> list[str]:
    """Every loss's ``needs`` is produced, and a discriminator loss has a discriminator."""
    problems = []
    for key in g.spec.losses:
        cls = g.cls(f"losses.{key}")
        if cls is None:
            continue
        label = g.label(f"losses.{key}")
        for need in sorted(cls.needs - g.produced):
            if need.startswith("disc_"):
                problems.append(f"{label} needs {need!r}: add a `discriminator` to the spec")
            elif need in _NEED_FIXES:
                fix = _NEED_FIXES[need].format(
                    gen=g.spec.generator["type"], pyramid_fix=g.pyramid_fix()
                )
                problems.append(f"{label} {fix}")
            else:
                problems.append(f"{label} needs {need!r}, which no part of the spec produces")
        trains_d = "discriminator" in cls.roles and "disc_logits" not in cls.needs
        if trains_d and g.cls("discriminator") is None:
            problems.append(f"{label} trains a discriminator: add a `discriminator` to the spec")
    return problems


def _check_objective_parts(g: _Graph) -> list[str]:
    """The parts an objective requires (e.g. a discriminator for a GAN) are in the spec."""
    cls = g.cls("objective")
    if cls is None:
        return []
    return [
        f"objective ({g.spec.objective['type']}) needs a {part!r} in the spec"
        for part in sorted(cls.requires_parts)
        if getattr(g.spec, part, None) is None
    ]


def _check_part_configs(g: _Graph) -> list[str]:
    """The configs of the parts built with the generator's runtime arguments (injector,
    discriminator, losses) and of the sampler: unknown keys and bad values, all at once
    (the generator and objective configs are validated in :func:`_graph`)."""
    problems = []
    for section in (
        "injector",
        "discriminator",
        "sampler",
        *(f"losses.{k}" for k in g.spec.losses),
    ):
        cls = g.cls(section)
        if cls is not None:
            problems += _config_problems(cls, g._spec_of(section), g.label(section))
    return problems


CHECKS: tuple[Callable[[_Graph], list[str]], ...] = (
    _check_part_configs,
    _check_generator_reads,
    _check_discriminator,
    _check_injector_reads,
    _check_loss_needs,
    _check_objective_parts,
)


def check_spec(spec: ModelSpec, registry: Registry | None = None) -> dict[str, Any]:
    """Check the whole graph from classes and configs (every check in :data:`CHECKS`); raise
    one ComposeError listing all problems. Returns the resolved classes and the data fields."""
    problems: list[str] = []
    graph = _graph(spec, registry or get_registry(), problems)
    for check in CHECKS:
        problems += check(graph)
    if problems:
        raise ComposeError(
            "the model spec does not fit together:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    return {"classes": graph.classes, "data_fields": graph.data_fields}


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
