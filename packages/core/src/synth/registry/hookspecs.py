"""Hook specifications of synth's plugin system (pluggy project name ``"synth"``).

A plugin module implements any of these with ``@synth.hookimpl``; pluggy checks each
implementation's signature against its spec when the plugin is registered. An implementation
may take a subset of a hook's arguments (pluggy passes only those it names), so a hook can gain
arguments without breaking plugins.

- :func:`synth_register` (every plugin): register parts and recipes.
- :func:`synth_demo_pictures` (optional): pictures for ``synth demo`` that only the plugin's
  parts can make (a per-class resampling grid for models with class codes, for example).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from .registry import Registry

if TYPE_CHECKING:
    import torch
    from torch import Tensor

    from ..condition import Condition

__all__ = ["DemoPicture", "hookimpl", "hookspec", "synth_demo_pictures", "synth_register"]

hookspec = pluggy.HookspecMarker("synth")
#: Decorate a plugin module's hook functions (``synth_register``, ...) with this.
hookimpl = pluggy.HookimplMarker("synth")


@dataclass(frozen=True)
class DemoPicture:
    """One picture a plugin adds to ``synth demo``'s output folder.

    ``name``: the file stem (``"my_picture"`` -> ``my_picture.png``) and its key in the demo's
    list of files. ``write(path)`` draws the picture and saves it as a PNG at ``path``;
    ``None`` when the picture does not apply to this model, and then ``note`` says why (and
    what to run instead). A ``note`` next to a ``write`` is printed as well.
    """

    name: str
    write: Callable[[Path], Any] | None = None
    note: str = ""


@hookspec
def synth_register(registry: Registry) -> None:
    """Register the plugin's parts and recipes.

    ``registry.add("<plugin>.<part>", kind=..., target="module:Class")`` for each part (the
    target is imported on first use) and ``registry.add_recipe("<plugin>.<name>", spec,
    description=..., train=..., demo=...)`` for each named model spec, with the paper's
    trainer settings and the CPU demo settings (see :meth:`Registry.add_recipe`).
    """


@hookspec
def synth_demo_pictures(
    model: Any,
    cond: Condition,
    shown: Condition,
    real: Tensor,
    palette: Tensor | None,
    num_samples: int,
    generator: torch.Generator,
) -> list[DemoPicture] | None:
    """Pictures of a trained demo model that only this plugin's parts can make.

    ``synth demo`` calls every plugin's implementation once, after training, under
    ``torch.no_grad()`` with the model in eval mode, and writes each returned picture next to
    ``samples.png``. Return ``None`` or ``[]`` when the model has nothing for this plugin.

    Args:
        model: the trained :class:`synth.SynthesisModel`.
        cond: the demo photos' inputs, ``B`` of them (label maps ``[B, H, W]`` or
            low-resolution images ``[B, 3, h, w]``), on the model's device.
        shown: ``cond`` as the demo draws it (label maps without instance edges unless the
            generator reads them); pass it to :func:`synth.viz.condition_tiles`.
        real: the photos, ``[B, 3, H, W]`` in ``[-1, 1]``.
        palette: class colours ``[K, 3]`` for label-map tiles (``None``: a default palette).
        num_samples: samples per input the user asked for (``synth demo -n``).
        generator: the seeded ``torch.Generator`` to draw codes from (reproducible pictures).
    """
