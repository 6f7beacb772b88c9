"""``synth train CONFIG``: a run config (model, data, train) -> a trained model in a run folder.

When the model is a recipe (its name, or a spec with ``base: <recipe>``), the recipe's trainer
settings (``Recipe.train``: the paper's lrs, betas, schedule, batch size, ...) are the
defaults that the run's own ``train`` section overrides.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..registry import get_registry
from .checkpoint import seed_everything
from .config import RunConfig, TrainerConfig, validate
from .trainer import Trainer

__all__ = ["apply_settings", "recipe_train_settings", "run_config", "train"]

_SPEC_SUFFIXES = {".json", ".yaml", ".yml", ".toml"}


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``; nested mappings (``optimizer``, ``optimizers`` and each
    network's settings) merge key by key, anything else is replaced."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _recipe_name(model: Any) -> str | None:
    """The recipe a run's ``model`` entry starts from: a recipe name, or the ``base`` of a
    spec (given inline or in a spec file); None for a spec without one."""
    from ..compose import _read_file

    if isinstance(model, Mapping):
        base = model.get("base")
        return str(base) if base is not None else None
    if isinstance(model, (str, Path)):
        path = Path(model)
        if path.suffix.lower() not in _SPEC_SUFFIXES and not path.exists():
            return str(model)
        if path.is_file():
            data = _read_file(path)
            return _recipe_name(data.get("spec", data) if isinstance(data, Mapping) else {})
    return None


def apply_settings(data: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """A run config with dotted ``section.key.subkey`` values set (``synth train --set``).

    The first segment names the section: ``train.batch_size``, ``data.size``,
    ``model.generator.ngf``. A model given as a recipe name (or a spec file) becomes a spec
    with ``base: <recipe>`` (or the file's spec) that the value is set in. Unknown fields are
    reported by the validation that follows, with close matches.
    """
    from ..compose import _read_file

    out = copy.deepcopy(dict(data))
    for key, value in settings.items():
        section, _, rest = key.partition(".")
        if section not in ("model", "data", "train") or not rest:
            raise ConfigError(
                f"--set {key}: a setting starts with the section it changes, model., data. or "
                "train. (e.g. --set train.batch_size=8 or --set model.generator.ngf=32)"
            )
        node = out.get(section)
        if node is None:
            node = {}
        elif section == "model" and isinstance(node, (str, Path)):
            path = Path(node)
            if path.suffix.lower() in _SPEC_SUFFIXES and path.is_file():
                spec = _read_file(path)
                node = dict(spec.get("spec", spec)) if isinstance(spec, Mapping) else {}
            else:
                node = {"base": str(node)}
        if not isinstance(node, Mapping):
            raise ConfigError(f"--set {key}: the config's {section} is not a mapping")
        out[section] = node = dict(node)
        *parents, leaf = rest.split(".")
        for i, part in enumerate(parents):
            child = node.get(part)
            if child is None:
                child = {}
            if not isinstance(child, Mapping):
                where = ".".join([section, *parents[: i + 1]])
                raise ConfigError(f"--set {key}: {where} is {child!r}, not a mapping")
            node[part] = child = dict(child)
            node = child
        node[leaf] = value
    return out


def recipe_train_settings(model: Any) -> tuple[str | None, dict[str, Any]]:
    """``(recipe name, its trainer settings)`` for a run's ``model`` entry, the settings
    checked as :class:`TrainerConfig` fields (an error names the recipe); ``(None, {})``
    when the model names no recipe."""
    name = _recipe_name(model)
    if name is None:
        return None, {}
    settings = dict(get_registry().recipe(name).train or {})
    validate(TrainerConfig, settings, f"the trainer settings of recipe {name!r} (Recipe.train)")
    return name, settings


def run_config(
    data: Mapping[str, Any] | RunConfig, overrides: Mapping[str, Any] | None = None
) -> RunConfig:
    """The :class:`RunConfig` of a config dict: the recipe's trainer settings (when the model
    names one), then the dict's own ``train`` section, then ``overrides`` (command-line
    values such as ``steps``), merged key by key for nested settings such as ``optimizers``.
    """
    if isinstance(data, RunConfig):
        data = {**data.model_dump(exclude={"train"}), "train": data.train}
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"a run config is a mapping with sections model, data and train, not "
            f"{type(data).__name__}"
        )
    _, defaults = recipe_train_settings(data.get("model"))
    own = data.get("train") or {}
    if isinstance(own, TrainerConfig):
        own = own.model_dump(exclude_unset=True)
    if not isinstance(own, Mapping):
        raise ConfigError(f"the train section must be a mapping, not {type(own).__name__}")
    train = _merged(_merged(defaults, own), overrides or {})
    return validate(RunConfig, {**data, "train": train}, "run config")


def train(
    config: Mapping[str, Any] | str | Path,
    *,
    run_dir: str | Path | None = None,
    max_steps: int | None = None,
    resume: bool = True,
    device: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Path:
    """Train from a run config (dict or YAML/JSON/TOML file with ``model``, ``data``, ``train``).

    A model that names a recipe brings the recipe's trainer settings as the defaults of
    ``train``. The model is composed after seeding with ``train.seed`` so that a resumed run
    starts from the same initial weights. ``settings`` are dotted ``section.key`` values set
    on top of the config (:func:`apply_settings`). Returns the run directory. This is
    ``synth train CONFIG``.
    """
    from ..compose import _read_file, compose
    from ..data import build_dataset

    data = _read_file(Path(config)) if isinstance(config, (str, Path)) else dict(config)
    if settings:
        data = apply_settings(data, settings)
    overrides = {
        k: v
        for k, v in {"run_dir": run_dir, "steps": max_steps, "device": device}.items()
        if v is not None
    }
    if "run_dir" in overrides:
        overrides["run_dir"] = str(run_dir)
    run = run_config(data, overrides)
    tcfg = run.train
    dataset = build_dataset(run.data)
    seed_everything(tcfg.seed)
    model = compose(run.model)
    k = model.generator.num_classes
    if k is not None and getattr(dataset, "num_classes", None) not in (None, k):
        raise ConfigError(
            f"the data set has num_classes = {dataset.num_classes} but the generator was built "
            f"for num_classes = {k}; make them agree in the config"
        )
    out = Path(tcfg.run_dir)
    out.mkdir(parents=True, exist_ok=True)
    if int(os.environ.get("RANK", "0")) == 0:
        saved = {"model": run.model, "data": run.data, "train": tcfg.model_dump(mode="json")}
        (out / "config.json").write_text(json.dumps(saved, indent=2, default=str))
    trainer = Trainer(model, dataset, tcfg)
    try:
        trainer.fit(resume=resume)
    finally:
        trainer.close()
    return out
