"""Registers the `collage.*` parts and recipes with synth."""

from __future__ import annotations

import synth

SYNTH_API = ">=1,<2"

# ---------------------------------------------------------------------------------------------
# Parts: name -> (kind, "module:Class"). One line per part; modules import on first use.
# ---------------------------------------------------------------------------------------------
_PARTS: dict[str, tuple[str, str]] = {
    # label collaging, the paper's GAN, feature collaging (H14a)
    # real photos: encoder, projection, auxiliary networks, blending (H14b)
}


@synth.hookimpl
def synth_register(registry: synth.Registry) -> None:
    for name, (kind, target) in _PARTS.items():
        registry.add(name, kind=kind, target=target)
