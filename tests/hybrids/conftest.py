"""Fixtures of the hybrid tests: a registry holding core plus the plugins a hybrid needs.

A hybrid recipe names parts of several plugins; its test runs only when all of them are
installed (``pytest.importorskip``) and registers exactly those, so nothing else leaks in.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator

import pytest

import synth.testing

#: plugin name (the part-name prefix) -> its import package; the plugin module is ``.plugin``.
PLUGIN_PACKAGES: dict[str, str] = {
    "pix2pixhd": "synth_pix2pixhd",
    "clvae": "synth_clvae",
    "cimle": "synth_cimle",
    "nested_scale": "synth_nested_scale",
    "collage": "synth_collage",
}


@pytest.fixture
def registry_with() -> Iterator[Callable[..., synth.testing.TestRegistry]]:
    """``registry_with("clvae", "pix2pixhd")`` installs a fresh process-wide registry with core
    and those plugins for the rest of the test (skipped when one is not installed)."""
    with contextlib.ExitStack() as stack:

        def make(*names: str) -> synth.testing.TestRegistry:
            modules = []
            for name in names:
                pytest.importorskip(PLUGIN_PACKAGES[name])
                modules.append(importlib.import_module(f"{PLUGIN_PACKAGES[name]}.plugin"))
            return stack.enter_context(synth.testing.fresh_registry(*modules))

        yield make
