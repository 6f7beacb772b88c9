"""Fixtures of the pix2pixHD tests: a registry holding core and this plugin only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import synth_pix2pixhd.plugin
from synth.testing import TestRegistry, fresh_registry


@pytest.fixture
def reg() -> Iterator[TestRegistry]:
    """Core + pix2pixhd, installed as the process-wide registry for one test."""
    with fresh_registry(synth_pix2pixhd.plugin) as r:
        yield r
