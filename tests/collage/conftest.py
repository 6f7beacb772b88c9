"""Shared fixtures of the collage tests: a registry with core + the collage plugin."""

from __future__ import annotations

import pytest

import synth_collage.plugin


@pytest.fixture
def collage_registry(synth_registry):
    synth_registry.register_plugin(synth_collage.plugin)
    return synth_registry
