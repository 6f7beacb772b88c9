"""`synth.load`: rebuild a model saved by ``SynthesisModel.save_pretrained`` (DESIGN §5).

It sits above the composer (it composes the saved spec), which sits above the model: the model
writes its own files, this module reads them back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from .compose import compose
from .errors import UnknownPartError
from .model import (
    CONFIG_NAME,
    FORMAT_VERSION,
    SAMPLER_PREFIX,
    WEIGHTS_NAME,
    SynthesisModel,
    part_names,
)
from .registry import KNOWN_PLUGINS, Registry, get_registry

__all__ = ["load"]


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
    used = {n.split(".", 1)[0] for n in part_names(spec)}
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
