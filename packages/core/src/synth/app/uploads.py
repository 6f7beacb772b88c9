"""Uploaded files, read from bytes only (the page never names a path), within limits.

``read_label_png``: a label map as an indexed PNG (``synth.viz.save_label_map`` writes them;
the pixel values are the ids), a grayscale PNG of ids, or an RGB PNG painted in the model's
palette colours; resized nearest to the output size. ``read_image``: an RGB image (PNG, JPEG,
…) resized to the model's input size. Both refuse more than :data:`MAX_UPLOAD_BYTES` bytes or
:data:`MAX_PIXELS` pixels before decoding, and every failure is an :class:`UploadError` with a
message for the page, never a traceback.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from PIL import Image

from ..nn import ops
from ..viz import palette

__all__ = ["MAX_PIXELS", "MAX_UPLOAD_BYTES", "UploadError", "read_image", "read_label_png"]

#: Largest upload accepted, in bytes.
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
#: Largest image accepted, in pixels (width × height), checked before decoding.
MAX_PIXELS = 4096 * 4096


class UploadError(ValueError):
    """An upload the editor cannot use; the message says what was wrong and what to send."""


def _open(data: bytes, what: str) -> Image.Image:
    if not data:
        raise UploadError(f"the {what} upload is empty: choose a file")
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(
            f"the {what} is {len(data) / 2**20:.1f} MiB; the limit is "
            f"{MAX_UPLOAD_BYTES / 2**20:.0f} MiB"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise UploadError(
                    f"the {what} is {w}×{h} pixels; the limit is {MAX_PIXELS:,} pixels"
                )
            img.load()
    except UploadError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning) as e:
        raise UploadError(f"the {what} is not an image this editor can read ({e})") from None
    return img


def read_label_png(data: bytes, size: tuple[int, int], num_classes: int) -> np.ndarray:
    """Class ids ``uint8 [H, W]`` at ``size`` from PNG bytes (module docstring)."""
    img = _open(data, "label map")
    if img.mode == "P" or img.mode in ("L", "I", "I;16"):
        ids = np.asarray(img).astype(np.int64)
    elif img.mode in ("RGB", "RGBA"):
        rgb = np.asarray(img.convert("RGB")).astype(np.int64)
        colours = palette(num_classes).numpy().astype(np.int64)
        code = rgb[..., 0] * 65536 + rgb[..., 1] * 256 + rgb[..., 2]
        table = colours[:, 0] * 65536 + colours[:, 1] * 256 + colours[:, 2]
        match = code[..., None] == table
        if not match.any(-1).all():
            bad = int((~match.any(-1)).sum())
            raise UploadError(
                f"the label map is an RGB image with {bad} pixels in colours that are not the "
                f"model's {num_classes} class colours; upload an indexed or grayscale PNG of "
                "class ids (synth.viz.save_label_map writes one)"
            )
        ids = match.argmax(-1)
    else:
        raise UploadError(
            f"the label map is a {img.mode} image; upload an indexed (P), grayscale (L) or RGB PNG"
        )
    if ids.ndim != 2:
        raise UploadError(f"the label map has shape {list(ids.shape)}; give one id per pixel")
    top = int(ids.max())
    if top >= num_classes or int(ids.min()) < 0:
        raise UploadError(
            f"the label map has class id {top} but the model has {num_classes} classes "
            f"(ids 0..{num_classes - 1})"
        )
    t = torch.from_numpy(ids)[None]
    if tuple(t.shape[-2:]) != tuple(size):
        t = ops.resize_labels(t, tuple(size))
    return t[0].numpy().astype(np.uint8)


def read_image(data: bytes, size: tuple[int, int]) -> np.ndarray:
    """RGB ``uint8 [h, w, 3]`` at ``size`` (bicubic) from image bytes."""
    img = _open(data, "image").convert("RGB")
    h, w = size
    if img.size != (w, h):
        img = img.resize((w, h), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.uint8)
