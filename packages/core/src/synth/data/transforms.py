"""Loading image and label files, and paired transforms that never interpolate ids.

A :class:`PairedTransform` resizes, crops and flips every field of an item the same way:
photos and conditioning images with bicubic antialiased resampling (clamped back to
``[-1, 1]``), label and instance maps by nearest neighbour (:func:`resize_ids`), so a class or
instance id is never blended with its neighbours and ids of any size survive.

Nearest neighbour here is *centre-aligned*, as PIL's ``Image.NEAREST`` (what the pix2pixHD and
SPADE data loaders use) and ``F.interpolate(mode="nearest-exact")``: output pixel ``i`` takes
source pixel ``floor((i + 0.5) * in / out)``. That keeps a resized label map on the same pixel
grid as the (centre-aligned) bicubic photo. :func:`synth.nn.ops.resize_labels` instead matches
``F.interpolate(mode="nearest")`` (``floor(i * in / out)``, up to half a source pixel
up-left), which is what networks use inside a forward pass.
Crop offsets and flips are drawn from the ``torch.Generator`` given to the call, never from the
global RNG.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor

__all__ = [
    "IMAGE_EXTENSIONS",
    "PairedTransform",
    "TransformParams",
    "check_ids",
    "list_images",
    "load_alpha_mask",
    "load_image",
    "load_label_map",
    "resize_ids",
    "resize_image",
    "transform_item",
]

#: File extensions treated as images when listing folders (compared lower-case).
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif"}
)

#: Fields resized by nearest neighbour (ids); everything spatial else is an image or a mask.
LABEL_FIELDS: frozenset[str] = frozenset({"label_map", "instance_map"})
IMAGE_FIELDS: frozenset[str] = frozenset({"real", "image"})
MASK_FIELDS: frozenset[str] = frozenset({"mask"})

_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N"}


# --------------------------------------------------------------------------- loading


def _open(path: Path, what: str) -> Image.Image:
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {str(path)!r} does not exist")
    try:
        img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ValueError(
            f"cannot read {what} file {str(path)!r} ({type(e).__name__}: {e}); it is not an "
            "image Pillow can decode, or it is truncated"
        ) from None
    return img


def load_image(path: str | Path) -> Tensor:
    """Read an image file as ``FloatTensor[3, H, W]`` in ``[-1, 1]``.

    Every mode becomes RGB explicitly: grayscale (8- or 16-bit) is repeated over three
    channels, RGBA/LA drop their alpha, palette images are expanded to their colours, CMYK/YCbCr
    are converted. EXIF orientation is deliberately ignored so that a photo stays pixel-aligned
    with its label map.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file cannot be decoded (the message names it).
    """
    path = Path(path)
    img = _open(path, "image")
    if img.mode in _SIXTEEN_BIT or img.mode == "I":
        arr = np.asarray(img).astype(np.float32)
        top = 65535.0 if img.mode in _SIXTEEN_BIT or arr.max(initial=0) > 255 else 255.0
        gray = np.clip(arr / top, 0.0, 1.0)
        x = torch.from_numpy(np.ascontiguousarray(gray)).unsqueeze(0).expand(3, -1, -1)
        return (x * 2 - 1).contiguous()
    if img.mode == "F":
        gray = np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)
        x = torch.from_numpy(np.ascontiguousarray(gray)).unsqueeze(0).expand(3, -1, -1)
        return (x * 2 - 1).contiguous()
    if img.mode != "RGB":
        img = img.convert("RGB")
    arr = np.asarray(img, dtype=np.uint8)
    x = torch.from_numpy(arr.copy()).permute(2, 0, 1).float()
    return x / 127.5 - 1


#: Modes with an alpha channel, read as a known-pixel mask by :func:`load_alpha_mask`.
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA"})


def load_alpha_mask(path: str | Path, threshold: int = 128) -> Tensor | None:
    """The alpha channel of an image file as a known-pixel mask ``FloatTensor[1, H, W]``
    (1 where alpha >= ``threshold`` of 255, else 0), or ``None`` when the file has no alpha
    channel. A masked input (inpainting, outpainting) saved as one RGBA PNG thus gives both
    the image (:func:`load_image`) and ``Condition.mask``.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file cannot be decoded (the message names it).
    """
    img = _open(Path(path), "image")
    if img.mode not in _ALPHA_MODES:
        return None
    alpha = np.asarray(img.getchannel("A"), dtype=np.uint8)
    return torch.from_numpy((alpha >= threshold).astype(np.float32))[None]


def load_label_map(
    path: str | Path,
    num_classes: int | None = None,
    ignore_index: int | None = None,
    *,
    label_offset: int = 0,
) -> Tensor:
    """Read a label (or instance) map file as ``LongTensor[H, W]`` of ids.

    Accepted: 8-bit grayscale (``"L"``), palette PNGs (``"P"``: the palette *index* is the id,
    as in PASCAL VOC style label files), 16/32-bit grayscale (``"I;16"``, ``"I"``: instance ids
    such as Cityscapes' ``class * 1000 + k``) and 1-bit masks.

    Args:
        path: the file.
        num_classes: when given, every id (after ``label_offset`` and ``ignore_index``) must lie
            in ``[0, num_classes)``; otherwise the error names the file, the bad ids and fixes.
        ignore_index: an id (after ``label_offset``) meaning "don't care"; its pixels become
            class ``num_classes - 1``, which the dataset reserves for it (SPADE's
            ``contain_dontcare_label``; e.g. 255 in Cityscapes train ids).
        label_offset: added to every raw id first (e.g. ``-1`` to drop a leading "other" class).

    Raises:
        ValueError: a colour (RGB) file — label maps hold one id per pixel, so colours must be
            converted to ids first; an unreadable file; ids outside ``[0, num_classes)``.
    """
    path = Path(path)
    img = _open(path, "label map")
    mode = img.mode
    if mode in ("RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "LA", "PA"):
        hint = ""
        if mode in ("RGB", "RGBA"):
            arr = np.asarray(img)
            if (arr[..., 0] == arr[..., 1]).all() and (arr[..., 0] == arr[..., 2]).all():
                hint = (
                    " Its colour channels are all equal, so it is a grayscale map saved as "
                    "RGB: re-save it with Image.open(p).convert('L').save(p)."
                )
        raise ValueError(
            f"label map {str(path)!r} is a colour image (mode {mode}), but a label map holds one class "
            "id per pixel (8-bit grayscale 'L', palette 'P', or 16-bit for instance ids). "
            "Convert its colours to ids with your data set's colour→id table and save the ids "
            f"as a grayscale PNG (e.g. Image.fromarray(ids.astype('uint8')).save(p)).{hint}"
        )
    if mode == "F":
        raise ValueError(
            f"label map {str(path)!r} holds floating-point values (mode 'F'); save the ids as "
            "an integer PNG (8-bit 'L' or 16-bit)"
        )
    if mode not in ("L", "P", "1", "I") and mode not in _SIXTEEN_BIT:
        raise ValueError(
            f"label map {str(path)!r} has the unsupported image mode {mode!r}; save the ids as "
            "an 8-bit grayscale ('L'), palette ('P') or 16-bit grayscale PNG"
        )
    arr = np.asarray(img)
    ids = torch.from_numpy(arr.astype(np.int64, copy=True))
    if label_offset:
        ids += int(label_offset)
    if ignore_index is not None:
        if num_classes is None:
            raise ValueError(
                f"load_label_map({str(path)!r}): ignore_index={ignore_index} needs num_classes "
                "(its pixels become class num_classes - 1)"
            )
        ids[ids == ignore_index] = num_classes - 1
    if num_classes is not None:
        check_ids(ids, num_classes, path, ignore_index=ignore_index, label_offset=label_offset)
    return ids


def check_ids(
    ids: Tensor,
    num_classes: int,
    path: str | Path,
    *,
    ignore_index: int | None = None,
    label_offset: int = 0,
) -> None:
    """Raise a ``ValueError`` naming ``path`` when ``ids`` leave ``[0, num_classes)``."""
    bad = (ids < 0) | (ids >= num_classes)
    if not bool(bad.any()):
        return
    values = torch.unique(ids[bad]).tolist()
    shown = ", ".join(str(v) for v in values[:10])
    more = f" and {len(values) - 10} more" if len(values) > 10 else ""
    offset = f" (after label_offset={label_offset})" if label_offset else ""
    fixes = []
    if max(values) >= num_classes:
        fixes.append(f"raise num_classes to at least {max(values) + 1}")
        if ignore_index is None:
            fixes.append(
                f"if {max(values)} marks 'ignore' pixels, pass ignore_index={max(values)} "
                "(mapped to class num_classes - 1)"
            )
    if min(values) < 0:
        fixes.append("check label_offset (it made ids negative)")
    fixes.append("or remap those ids in the files")
    raise ValueError(
        f"label map {str(path)!r} has ids [{shown}{more}]{offset} outside [0, {num_classes}) "
        f"(num_classes={num_classes}): {'; '.join(fixes)}"
    )


# --------------------------------------------------------------------------- transforms


def _pair(value: int | tuple[int, int] | list[int] | None, name: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name} = {value!r}: give an int or (height, width)")
    if isinstance(value, int):
        value = (value, value)
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} = {value!r}: give an int or (height, width)") from None
    if h < 1 or w < 1:
        raise ValueError(f"{name} = {value!r}: sizes must be positive")
    return (h, w)


@dataclass(frozen=True)
class TransformParams:
    """The geometry one call of :class:`PairedTransform` applies to every field."""

    in_size: tuple[int, int]
    resize_to: tuple[int, int] | None
    crop: tuple[int, int, int, int] | None  # top, left, height, width (after resizing)
    flip: bool

    @property
    def out_size(self) -> tuple[int, int]:
        if self.crop is not None:
            return (self.crop[2], self.crop[3])
        return self.resize_to if self.resize_to is not None else self.in_size


def _centre_indices(in_size: int, out_size: int, device: torch.device) -> Tensor:
    pos = (torch.arange(out_size, device=device, dtype=torch.float64) + 0.5) * (in_size / out_size)
    return pos.floor_().clamp_(max=in_size - 1).long()


def resize_ids(ids: Tensor, size: tuple[int, int]) -> Tensor:
    """Centre-aligned nearest resize of an id map ``[..., H, W]`` (PIL ``NEAREST``).

    Output pixel ``i`` takes source pixel ``floor((i + 0.5) * in / out)`` along each axis, by
    integer gathering: ids are copied, never interpolated, whatever their magnitude.
    """
    h, w = ids.shape[-2:]
    if (h, w) == tuple(size):
        return ids
    rows = _centre_indices(h, int(size[0]), ids.device)
    cols = _centre_indices(w, int(size[1]), ids.device)
    return ids.index_select(-2, rows).index_select(-1, cols)


def resize_image(x: Tensor, size: tuple[int, int], mode: str = "bicubic") -> Tensor:
    """Resize ``[C, H, W]`` or ``[B, C, H, W]`` images with antialiasing; clamps to [-1, 1].

    ``mode`` is ``"bicubic"``, ``"bilinear"`` or ``"area"``.
    """
    size = (int(size[0]), int(size[1]))
    if tuple(x.shape[-2:]) == size:
        return x
    batched = x.dim() == 4
    y = x if batched else x.unsqueeze(0)
    if mode == "area":
        y = F.interpolate(y.float(), size=size, mode="area")
    else:
        y = F.interpolate(y.float(), size=size, mode=mode, align_corners=False, antialias=True)
    y = y.clamp_(-1.0, 1.0)
    return y if batched else y.squeeze(0)


def _spatial_size(fields: Mapping[str, Any]) -> tuple[int, int]:
    sizes = {
        k: (int(v.shape[-2]), int(v.shape[-1]))
        for k, v in fields.items()
        if isinstance(v, Tensor) and v.dim() >= 2
    }
    if not sizes:
        raise ValueError("PairedTransform got no spatial tensor fields")
    if len(set(sizes.values())) > 1:
        shown = ", ".join(f"{k}: {h}x{w}" for k, (h, w) in sizes.items())
        raise ValueError(
            f"the fields of one item have different sizes ({shown}); a photo and its label "
            "and instance maps must be the same size (check that the files are paired right)"
        )
    return next(iter(sizes.values()))


class PairedTransform:
    """Resize, then crop, then flip every field of an item the same way.

    Args:
        size: resize target; an int or ``(height, width)``. ``None`` keeps the size.
        crop: crop size after resizing, an int or ``(height, width)``; offsets are random when
            a generator is given and centred otherwise. ``None``: no crop.
        flip: flip horizontally with probability 1/2 (only when a generator is given).
        resize_mode: ``"exact"``: resize to ``size`` (an int means a square);
            ``"short_side"``: scale so the short side equals ``size`` (an int), keeping the
            aspect ratio.

    Calling ``t(fields, generator)`` returns a new dict. Fields: ``"real"``/``"image"`` (float
    images, bicubic with antialiasing, clamped to [-1, 1]), ``"mask"`` (nearest, stays binary),
    ``"label_map"``/``"instance_map"`` (centre-aligned nearest via :func:`resize_ids`; ids are
    never interpolated). Other tensors: integer ones are treated as id maps, float ones as
    images; non-tensors pass through. Random numbers are drawn in a fixed order (crop top, crop
    left, flip) from ``generator`` only.
    """

    def __init__(
        self,
        size: int | tuple[int, int] | None = None,
        crop: int | tuple[int, int] | None = None,
        flip: bool = False,
        resize_mode: Literal["short_side", "exact"] = "exact",
    ) -> None:
        if resize_mode not in ("exact", "short_side"):
            raise ValueError(f"resize_mode = {resize_mode!r}: choose 'exact' or 'short_side'")
        if resize_mode == "short_side" and size is not None and not isinstance(size, int):
            raise ValueError(
                f"resize_mode='short_side' takes an int size (the short side), got {size!r}"
            )
        self.size = size
        self._size = _pair(size, "size")
        self.crop = _pair(crop, "crop")
        self.flip = bool(flip)
        self.resize_mode = resize_mode

    def __repr__(self) -> str:
        return (
            f"PairedTransform(size={self.size!r}, crop={self.crop!r}, flip={self.flip}, "
            f"resize_mode={self.resize_mode!r})"
        )

    @property
    def is_identity(self) -> bool:
        return self._size is None and self.crop is None and not self.flip

    def resized_size(self, in_size: tuple[int, int]) -> tuple[int, int]:
        """The size after the resize step for an input of ``in_size``."""
        if self._size is None:
            return in_size
        if self.resize_mode == "exact":
            return self._size
        h, w = in_size
        s = self._size[0]
        if h <= w:
            return (s, max(1, round(w * s / h)))
        return (max(1, round(h * s / w)), s)

    def params(
        self, in_size: tuple[int, int], generator: torch.Generator | None = None
    ) -> TransformParams:
        """Draw the geometry for an input of ``in_size`` (random only with a generator)."""
        size = self.resized_size(in_size)
        resize_to = None if size == tuple(in_size) else size
        box = None
        if self.crop is not None:
            ch, cw = self.crop
            h, w = size
            if ch > h or cw > w:
                raise ValueError(
                    f"crop {ch}x{cw} is larger than the image ({h}x{w} after resizing): lower "
                    "crop, or raise size so the resized image covers the crop"
                )
            if generator is None:
                top, left = (h - ch) // 2, (w - cw) // 2
            else:
                top = int(torch.randint(0, h - ch + 1, (), generator=generator))
                left = int(torch.randint(0, w - cw + 1, (), generator=generator))
            box = (top, left, ch, cw)
        flip = False
        if self.flip and generator is not None:
            flip = bool(torch.rand((), generator=generator) < 0.5)
        return TransformParams(tuple(in_size), resize_to, box, flip)

    def __call__(
        self, fields: Mapping[str, Any], generator: torch.Generator | None = None
    ) -> dict[str, Any]:
        in_size = _spatial_size(fields)
        return self.apply(fields, self.params(in_size, generator))

    def apply(self, fields: Mapping[str, Any], params: TransformParams) -> dict[str, Any]:
        """Apply drawn ``params`` to every field (see the class docstring for the rules)."""
        return {k: self._apply_one(k, v, params) for k, v in fields.items()}

    @staticmethod
    def _apply_one(name: str, x: Any, p: TransformParams) -> Any:
        if not isinstance(x, Tensor) or x.dim() < 2:
            return x
        is_ids = name in LABEL_FIELDS or (
            name not in IMAGE_FIELDS | MASK_FIELDS and not x.is_floating_point()
        )
        if p.resize_to is not None:
            if is_ids:
                x = resize_ids(x, p.resize_to)
            elif name in MASK_FIELDS:
                shape = x.shape
                y = x.reshape(-1, 1, *shape[-2:]).float()
                y = F.interpolate(y, size=p.resize_to, mode="nearest-exact")
                x = y.reshape(*shape[:-2], *p.resize_to)
            else:
                x = resize_image(x, p.resize_to)
        if p.crop is not None:
            top, left, h, w = p.crop
            x = x[..., top : top + h, left : left + w]
        if p.flip:
            x = x.flip(-1)
        return x.contiguous()


def transform_item(
    transform: PairedTransform,
    fields: Mapping[str, Any],
    generator: torch.Generator | None,
    files: Iterable[str | Path],
) -> dict[str, Any]:
    """``transform(fields, generator)``, with the item's ``files`` named in any error."""
    try:
        return transform(fields, generator)
    except ValueError as e:
        raise ValueError(f"{', '.join(str(f) for f in files)}: {e}") from None


def list_images(folder: Path, what: str, extensions: Iterable[str] = IMAGE_EXTENSIONS) -> dict:
    """``{stem: path}`` of the image files directly in ``folder`` (hidden files skipped).

    Raises ``FileNotFoundError`` for a missing folder, ``ValueError`` for an empty one or two
    files with the same stem.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} folder {str(folder)!r} does not exist")
    exts = {e.lower() for e in extensions}
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or not p.is_file() or p.suffix.lower() not in exts:
            continue
        if p.stem in found:
            raise ValueError(
                f"{what} folder {str(folder)!r} has two files with the stem {p.stem!r} "
                f"({found[p.stem].name} and {p.name}); keep one"
            )
        found[p.stem] = p
    if not found:
        raise ValueError(
            f"{what} folder {str(folder)!r} holds no image files (extensions "
            f"{', '.join(sorted(exts))})"
        )
    return found
