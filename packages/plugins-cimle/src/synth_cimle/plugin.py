"""Registers the `cimle.*` parts and recipes with synth."""

from __future__ import annotations

import synth

SYNTH_API = ">=1,<2"


@synth.hookimpl
def synth_register(registry: synth.Registry) -> None:
    pass
