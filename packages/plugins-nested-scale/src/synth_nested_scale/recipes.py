"""Recipes of the nested-scale plugin: the paper's tasks with its settings (filled in below)."""

from __future__ import annotations

from typing import Any

#: name -> (model spec, description)
RECIPES: dict[str, tuple[dict[str, Any], str]] = {}
#: name -> the paper's trainer settings (synth.TrainerConfig fields)
TRAIN: dict[str, dict[str, Any]] = {}
#: name -> CPU demo settings (see synth.demo)
DEMO: dict[str, dict[str, Any]] = {}
