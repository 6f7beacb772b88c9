"""pytest plugin of synth (entry point ``synth`` in group ``pytest11``; active wherever
``synth-core`` is installed).

Fixture ``synth_registry``: a fresh :class:`synth.testing.TestRegistry` holding only core's
parts (installed plugins are *not* discovered), installed as the process-wide registry for
the test (so ``synth.build`` and ``synth.compose`` see it) and replaced by the previous one
afterwards. A plugin author tests their parts like this::

    import synth.testing
    import myplugin.plugin            # module with the @synth.hookimpl synth_register

    def test_my_block(synth_registry):
        synth_registry.register_plugin(myplugin.plugin)        # name: "myplugin"
        synth.testing.check_part("myplugin.block", channels=8)  # raises ConformanceError

    def test_one_class(synth_registry):
        synth_registry.add_part("myplugin.block", MyBlock)      # a class, no plugin module
        synth_registry.check("myplugin.block", channels=8)

``synth_registry.register_plugin(module, name=None)`` is
:func:`synth.testing.register_plugin` (the same as ``synth.register_plugin(reg, module,
name)`` but it raises when the plugin fails to register, and the name defaults to the
module's entry-point name or top-level package). Outside pytest use
:func:`synth.testing.fresh_registry`.

This module imports nothing heavy at collection time: ``synth`` (and torch) are imported
only when the fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from . import TestRegistry

__all__ = ["synth_registry"]


@pytest.fixture
def synth_registry() -> Iterator[TestRegistry]:
    """A core-only registry installed as ``synth``'s process-wide registry for one test."""
    from . import fresh_registry

    with fresh_registry() as reg:
        yield reg
