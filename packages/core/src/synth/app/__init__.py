"""``synth app``: an editor in the browser for one saved model (DESIGN §9).

Paint a label map (or pick a class, or upload an image and draw its mask), sample many, pick
one, then edit it with what the model can do, read from its parts
(:func:`~synth.app.capabilities.capabilities`): resample one class's codes, resample one
scale's code, label-collage a painted region into another class at chosen layers with an
intensity, blend two samples inside a painted region. Undo; download the PNGs and the edit
recipe, which :func:`~synth.app.recipe.replay` turns back into the same pixels.

Choice: **FastAPI + one plain HTML canvas page** (``static/index.html``, no npm build), served
by uvicorn, extra ``synth-core[app]``. Why not gradio: it is a large dependency (its own
frontend bundle and dozens of packages), and its image editor is a component whose painting
is hard to drive and read back from a browser test; a canvas we own paints exactly one class
id per pixel at the model's resolution (no anti-aliased colours to map back to ids), and the
server is a thin layer over plain handlers (:class:`~synth.app.editor.Editor`) that unit tests
call without a server.

Layers: ``synth.app`` sits between the command line (which imports it) and the demo.
"""

from __future__ import annotations

from .capabilities import Capabilities, Edit, capabilities, class_weight_blocks, find_sampler
from .editor import Editor, png_data_url
from .recipe import (
    RECIPE_FORMAT,
    Recipe,
    RecipeError,
    State,
    apply_step,
    decode_array,
    encode_array,
    make_condition,
    replay,
)
from .server import DEFAULT_HOST, create_app, serve
from .uploads import MAX_PIXELS, MAX_UPLOAD_BYTES, UploadError

__all__ = [
    "DEFAULT_HOST",
    "MAX_PIXELS",
    "MAX_UPLOAD_BYTES",
    "RECIPE_FORMAT",
    "Capabilities",
    "Edit",
    "Editor",
    "Recipe",
    "RecipeError",
    "State",
    "UploadError",
    "apply_step",
    "capabilities",
    "class_weight_blocks",
    "create_app",
    "decode_array",
    "encode_array",
    "find_sampler",
    "make_condition",
    "png_data_url",
    "replay",
    "serve",
]
