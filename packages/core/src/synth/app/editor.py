"""`Editor`: the page's handlers as plain methods on one loaded model (no server needed).

The server (:mod:`synth.app.server`) is a thin layer that turns HTTP requests into these
calls. The model is loaded once; each request runs one forward for all its samples; states are
cached by recipe prefix, so a step on a shown grid runs only that step::

    editor = Editor(synth.load("runs/demo/model"))
    editor.info()                     # capabilities, palette, limits
    editor.run({"input": {...}, "steps": [{"op": "sample", "n": 6, "seed": 1}]})
    editor.upload_label(png_bytes)    # {"label_map": {"shape", "data"}} or UploadError
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image
from torch import Tensor

from ..viz import palette, to_uint8
from .capabilities import Capabilities, capabilities
from .recipe import (
    MAX_SAMPLES,
    Recipe,
    RecipeError,
    State,
    apply_step,
    encode_array,
    make_condition,
    parse_recipe,
)
from .uploads import MAX_PIXELS, MAX_UPLOAD_BYTES, read_image, read_label_png

if TYPE_CHECKING:
    from ..model import SynthesisModel

__all__ = ["Editor", "png_data_url"]


def png_data_url(image: Tensor) -> str:
    """``[3, H, W]`` in ``[-1, 1]`` -> ``data:image/png;base64,...``."""
    arr = to_uint8(image[None])[0]
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _key(recipe: Recipe, upto: int) -> str:
    data = {"input": recipe.input.model_dump(mode="json"), "steps": recipe.steps[:upto]}
    text = json.dumps(data, sort_keys=True, default=lambda s: s.model_dump(mode="json"))
    return hashlib.sha256(text.encode()).hexdigest()


class Editor:
    """One model's editor: :meth:`info`, :meth:`run`, :meth:`upload_label`,
    :meth:`upload_image`. Thread-safe: one request runs the model at a time.

    Args:
        model: a loaded model (eval mode), e.g. ``synth.load(dir, for_training=False)``.
        size: the output size ``(H, W)`` asked of the model (a model that fixes its own size,
            e.g. a class-conditional GAN, keeps its own: :attr:`caps` ``.size``).
        class_names: one name per class for the palette (default ``class i``).
        cache: how many states (one per recipe prefix) to keep.
        name: shown in the page's title (the CLI passes the model directory).
    """

    def __init__(
        self,
        model: SynthesisModel,
        *,
        size: tuple[int, int] = (64, 64),
        class_names: list[str] | None = None,
        cache: int = 64,
        name: str = "",
    ) -> None:
        self.model = model.eval()
        self.caps: Capabilities = capabilities(model, size=size, class_names=class_names)
        self.name = name
        self._cache: OrderedDict[str, State] = OrderedDict()
        self._cache_size = cache
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ handlers
    def info(self) -> dict[str, Any]:
        """What the page needs to draw itself: capabilities, palette colours, limits."""
        k = self.caps.num_classes
        return {
            "name": self.name,
            "capabilities": self.caps.as_dict(),
            "palette": palette(k).tolist() if k else [],
            "limits": {
                "max_samples": MAX_SAMPLES,
                "max_upload_bytes": MAX_UPLOAD_BYTES,
                "max_pixels": MAX_PIXELS,
            },
        }

    def run(self, recipe: Recipe | Mapping[str, Any]) -> dict[str, Any]:
        """Run a recipe (reusing the cached state of its longest known prefix) and return the
        last grid: ``{"images": [PNG data URL], "current", "seconds", "recipe"}``."""
        rec = parse_recipe(recipe)
        if not rec.steps:
            raise RecipeError("nothing to run: the recipe has no steps")
        if tuple(rec.input.size) != tuple(self.caps.size):
            raise RecipeError(f"input.size is {list(rec.input.size)}; this model makes "
                              f"{list(self.caps.size)}")  # fmt: skip
        t0 = time.perf_counter()
        with self._lock:
            state = self._replay(rec)
        seconds = time.perf_counter() - t0
        return {
            "images": [png_data_url(img) for img in state.images],
            "current": state.current,
            "seconds": round(seconds, 4),
            "recipe": rec.model_dump(mode="json"),
        }

    def upload_label(self, data: bytes) -> dict[str, Any]:
        """PNG bytes -> ``{"label_map": {"shape", "data"}}`` at the output size."""
        k = self.caps.num_classes
        if self.caps.input != "label_map" or k is None:
            raise RecipeError("this model does not read a label map; nothing to upload")
        return {"label_map": encode_array(read_label_png(data, self.caps.size, k))}

    def upload_image(self, data: bytes) -> dict[str, Any]:
        """Image bytes -> ``{"image": {"shape", "data"}}`` at the model's input size."""
        if self.caps.image_size is None:
            raise RecipeError("this model does not read an image; nothing to upload")
        return {"image": encode_array(read_image(data, self.caps.image_size))}

    # ------------------------------------------------------------------ internals
    def _replay(self, rec: Recipe) -> State:
        n = len(rec.steps)
        keys = [_key(rec, i) for i in range(n + 1)]
        have = next((i for i in range(n, 0, -1) if keys[i] in self._cache), 0)
        cond = make_condition(self.model, rec.input)
        state = self._cache[keys[have]] if have else None
        for i in range(have, n):
            state = apply_step(self.model, state, cond, rec.steps[i])
            self._remember(keys[i + 1], state)
        if have:
            self._cache.move_to_end(keys[have])
        assert state is not None
        return state

    def _remember(self, key: str, state: State) -> None:
        self._cache[key] = state
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)


def images_uint8(state: State) -> np.ndarray:
    """The state's grid as ``uint8 [m, H, W, 3]`` (for tests and downloads)."""
    return to_uint8(state.images)
