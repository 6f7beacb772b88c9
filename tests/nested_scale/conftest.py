"""Shared fixtures of the nested-scale tests: a registry with core + the nested_scale plugin."""

from __future__ import annotations

import pytest

import synth_nested_scale.plugin


@pytest.fixture
def nested_registry(synth_registry):
    synth_registry.register_plugin(synth_nested_scale.plugin)
    return synth_registry
