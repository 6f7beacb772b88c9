"""Fixtures: a fresh registry with core and the clvae plugin."""

from __future__ import annotations

import pytest

import synth.testing
import synth_clvae.plugin


@pytest.fixture
def clvae_registry():
    """The process-wide registry for one test: core parts plus ``clvae.*``."""
    with synth.testing.fresh_registry(synth_clvae.plugin) as reg:
        yield reg
