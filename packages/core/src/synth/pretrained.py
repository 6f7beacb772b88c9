"""`synth.load`: rebuild a model saved by ``SynthesisModel.save_pretrained`` (DESIGN §5).

It sits above the composer (it composes the saved spec), which sits above the model: the model
writes its own files, this module reads them back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor

from .compose import compose
from .errors import UnknownPartError
from .model import CONFIG_NAME, FORMAT_VERSION, WEIGHTS_NAME, SynthesisModel, part_names
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

    The model comes back in eval mode (``model.train()`` to fine-tune it by hand; the Trainer
    does that itself).
    """
    path = Path(path)
    if path.is_file() and path.name != CONFIG_NAME:
        holder = path.parent if (path.parent / CONFIG_NAME).is_file() else None
        fix = (
            f"give the directory {holder}, which holds synth.json"
            if holder is not None
            else "give the directory model.save_pretrained(dir) wrote (synth.json and "
            "model.safetensors); a weights file of another kind is read with "
            "synth.read_state_dict"
        )
        raise ValueError(f"{path} is a file, but synth.load expects a model directory: {fix}")
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
    state = _checked_state(state, model, meta, config_file, weights_file)
    model.load_state_dict(state, strict=False)
    # inference is what a loaded model is for: dropout off, norms on their running statistics
    # (the Trainer switches it back with model.train())
    return model.eval()


def _checked_state(
    state: dict[str, Tensor],
    model: SynthesisModel,
    meta: dict[str, Any],
    config_file: Path,
    weights_file: Path,
) -> dict[str, Tensor]:
    """``state`` with exactly the model's keys, or a ``ValueError`` naming the difference."""
    expected = model.checkpoint_state()
    if meta.get("format_version", 1) < 2:
        # format 1 wrote a sampler's state only once fitted (as the same ``sampler.*`` keys):
        # a sampler saved unfitted keeps the state it was built with
        state = {**{k: v for k, v in expected.items() if k.startswith("sampler.")}, **state}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{weights_file} does not match the model of {config_file}: "
            f"missing keys {missing[:10]}{'...' if len(missing) > 10 else ''}, unexpected keys "
            f"{unexpected[:10]}{'...' if len(unexpected) > 10 else ''}"
        )
    # shapes before load_state_dict, whose size-mismatch RuntimeError names neither file
    # (an empty model tensor is a placeholder its module sizes on load, e.g. a fitted sampler's)
    wrong = [
        k for k, t in state.items() if t.shape != expected[k].shape and expected[k].numel() > 0
    ]
    if wrong:
        shapes = "; ".join(
            f"{k}: file {tuple(state[k].shape)}, model {tuple(expected[k].shape)}"
            for k in wrong[:5]
        )
        raise ValueError(
            f"{weights_file} has {len(wrong)} tensor(s) whose shape differs from the model "
            f"that {config_file} describes ({shapes}{'; ...' if len(wrong) > 5 else ''}): the "
            "two files come from different models or the spec was edited; save the model "
            "again with save_pretrained, or restore the synth.json written with these weights"
        )
    return state
