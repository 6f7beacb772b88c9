"""Folder data sets: paired photo/label folders, super-resolution and outpainting.

- :class:`PairedFolder`: photos + label maps (+ instance maps) matched by file stem.
- :class:`SuperResolution`: high-resolution photos; the low-resolution input is made on the fly.
- :class:`Outpainting`: photos; a mask keeps a box of known pixels, the rest is to be filled.

Items follow the format of :mod:`synth.data.base`; random crops, flips and masks come from the
per-item generator only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch

from .base import SynthDataset
from .transforms import (
    PairedTransform,
    list_images,
    load_image,
    load_label_map,
    resize_image,
    transform_item,
)

__all__ = [
    "Outpainting",
    "PairedFolder",
    "SuperResolution",
    "box_mask",
    "check_downsampling",
    "low_resolution",
    "match_stems",
]


def _shown(stems: list[str], limit: int = 10) -> str:
    more = f", ... ({len(stems) - limit} more)" if len(stems) > limit else ""
    return ", ".join(stems[:limit]) + more


def match_stems(sides: Mapping[str, Mapping[str, Path]]) -> list[str]:
    """The stems present on every side, sorted; otherwise one error listing what is unmatched.

    ``sides`` maps a side's name (``"images"``, ``"labels"``, ...) to its ``{stem: path}``. The
    first side is the reference: the error lists, for each other side, the stems it lacks and
    the stems only it has (first 10 of each and the count).
    """
    names = list(sides)
    ref = set(sides[names[0]])
    problems = []
    for other in names[1:]:
        theirs = set(sides[other])
        missing = sorted(ref - theirs)
        extra = sorted(theirs - ref)
        if missing:
            problems.append(f"{len(missing)} {names[0]} without {other}: {_shown(missing)}")
        if extra:
            problems.append(f"{len(extra)} {other} without {names[0]}: {_shown(extra)}")
    if problems:
        raise ValueError(
            f"the files of {' / '.join(names)} do not pair up by name (stem): "
            + "; ".join(problems)
            + ". Each photo needs files of the same stem (e.g. 0001.jpg and 0001.png) in every "
            "folder: add the missing files or remove the extra ones"
        )
    return sorted(ref)


def box_mask(
    size: tuple[int, int],
    box: tuple[int, int],
    at: tuple[int, int] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A known-pixel mask ``FloatTensor[1, H, W]``: 1 inside a ``box = (height, width)`` box,
    0 elsewhere (the outpainting masks of :class:`Outpainting` and :class:`~synth.data.CelebA`).

    The box's top-left corner is ``at = (top, left)`` when given; otherwise drawn uniformly
    from ``generator`` (top first, then left) so that the box lies inside the image; otherwise
    the box is centred.

    Raises:
        ValueError: the box does not fit in the image.
    """
    h, w = size
    kh, kw = box
    if not (1 <= kh <= h and 1 <= kw <= w):
        raise ValueError(f"mask box {kh}x{kw} does not fit in a {h}x{w} image")
    if at is not None:
        top, left = at
        if not (0 <= top <= h - kh and 0 <= left <= w - kw):
            raise ValueError(
                f"mask box {kh}x{kw} at (top {top}, left {left}) leaves the {h}x{w} image"
            )
    elif generator is not None:
        top = int(torch.randint(0, h - kh + 1, (), generator=generator))
        left = int(torch.randint(0, w - kw + 1, (), generator=generator))
    else:
        top, left = (h - kh) // 2, (w - kw) // 2
    m = torch.zeros(1, h, w)
    m[:, top : top + kh, left : left + kw] = 1.0
    return m


def check_downsampling(scale: Any, kernel: Any) -> None:
    """Raise a ``ValueError`` unless ``scale`` is an int >= 1 and ``kernel`` one of
    ``"bicubic"``, ``"bilinear"``, ``"area"`` (the settings of :func:`low_resolution`)."""
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale = {scale!r}: must be an int >= 1 (e.g. 4 for 4x SR)")
    if kernel not in ("bicubic", "bilinear", "area"):
        raise ValueError(f"kernel = {kernel!r}: choose 'bicubic', 'bilinear' or 'area'")


def low_resolution(
    hr: torch.Tensor, scale: int, kernel: Literal["bicubic", "bilinear", "area"] = "bicubic"
) -> torch.Tensor:
    """The super-resolution input of a photo ``hr`` ``[3, H, W]``: ``[3, H // scale, W //
    scale]``, downsampled with ``kernel`` (``"bicubic"`` and ``"bilinear"`` antialiased as
    PIL's resampling, ``"area"`` = box average), clamped to ``[-1, 1]``."""
    h, w = hr.shape[-2:]
    return resize_image(hr, (h // scale, w // scale), kernel).contiguous()


def _check_num_classes(num_classes: Any) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes = {num_classes!r}: must be a positive int")
    return num_classes


class PairedFolder(SynthDataset):
    """Photos and label maps (and optionally instance maps) in folders, matched by stem.

    ``images/0001.jpg`` pairs with ``labels/0001.png`` (and ``instances/0001.png``); any image
    extension works on either side. Label maps are single-channel id images (see
    :func:`~synth.data.load_label_map`).

    Args:
        images, labels, instances: the folders (files directly inside, hidden files skipped).
        num_classes: K; ids must lie in ``[0, K)`` after ``label_offset``/``ignore_index``.
        size, crop, flip, resize_mode: the :class:`~synth.data.PairedTransform`.
        seed: the augmentation seed.
        label_offset: added to every raw id (e.g. ``-1``).
        ignore_index: an id (after the offset) mapped to class ``K - 1`` ("don't care").

    Items: ``real``, ``label_map`` (and ``instance_map``), ``index``.
    """

    def __init__(
        self,
        images: str | Path,
        labels: str | Path,
        instances: str | Path | None = None,
        *,
        num_classes: int,
        size: int | tuple[int, int] | None = None,
        crop: int | tuple[int, int] | None = None,
        flip: bool = False,
        seed: int = 0,
        label_offset: int = 0,
        ignore_index: int | None = None,
        resize_mode: Literal["short_side", "exact"] = "exact",
    ) -> None:
        super().__init__(seed)
        self.num_classes = _check_num_classes(num_classes)
        self.label_offset = int(label_offset)
        self.ignore_index = ignore_index
        self.transform = PairedTransform(size, crop, flip, resize_mode)
        sides = {
            "images": list_images(Path(images), "images"),
            "labels": list_images(Path(labels), "labels"),
        }
        if instances is not None:
            sides["instances"] = list_images(Path(instances), "instances")
        self.stems = match_stems(sides)
        self.files = [{k: v[s] for k, v in sides.items()} for s in self.stems]
        self.fields = frozenset({"label_map"} | ({"instance_map"} if instances else set()))

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, index: int, generator: torch.Generator) -> dict[str, Any]:
        files = self.files[index]
        item: dict[str, Any] = {
            "real": load_image(files["images"]),
            "label_map": load_label_map(
                files["labels"],
                self.num_classes,
                self.ignore_index,
                label_offset=self.label_offset,
            ),
        }
        if "instances" in files:
            item["instance_map"] = load_label_map(files["instances"])
        return transform_item(self.transform, item, generator, list(files.values()))


class SuperResolution(SynthDataset):
    """High-resolution photos from a folder; the low-resolution input is made on the fly.

    Each item crops the photo (a random ``size`` crop, or, with ``size=None``, the centred
    crop whose sides are the largest multiples of ``scale``, so that HR is divisible by the
    scale), flips it when ``flip``, then downsamples it by ``scale`` with ``kernel``
    (``"bicubic"`` and ``"bilinear"`` antialiased, ``"area"`` = box average).

    Items: ``real`` = HR ``[3, H, W]``, ``image`` = LR ``[3, H/scale, W/scale]``, ``index``.
    With ``size=None`` and photos of different sizes, items have different sizes and cannot be
    batched: give ``size`` for training.
    """

    fields = frozenset({"image"})
    num_classes = None

    def __init__(
        self,
        folder: str | Path,
        scale: int,
        size: int | tuple[int, int] | None = None,
        kernel: Literal["bicubic", "bilinear", "area"] = "bicubic",
        seed: int = 0,
        flip: bool = False,
    ) -> None:
        super().__init__(seed)
        check_downsampling(scale, kernel)
        self.scale = scale
        self.kernel = kernel
        self.transform = PairedTransform(crop=size, flip=flip)
        if self.transform.crop is not None:
            h, w = self.transform.crop
            if h % scale or w % scale:
                raise ValueError(
                    f"SuperResolution size {h}x{w} is not divisible by scale {scale}: the LR "
                    f"image must be exactly 1/{scale} of it; use a multiple of {scale}"
                )
        self.paths = [p for _, p in sorted(list_images(Path(folder), "images").items())]

    def __len__(self) -> int:
        return len(self.paths)

    def _load(self, index: int, generator: torch.Generator) -> dict[str, Any]:
        path = self.paths[index]
        hr = load_image(path)
        s = self.scale
        if self.transform.crop is None:
            h, w = hr.shape[-2:]
            ch, cw = h - h % s, w - w % s
            if ch == 0 or cw == 0:
                raise ValueError(f"{str(path)!r} ({h}x{w}) is smaller than scale {s}")
            top, left = (h - ch) // 2, (w - cw) // 2
            hr = hr[:, top : top + ch, left : left + cw]
        hr = transform_item(self.transform, {"real": hr}, generator, [path])["real"]
        return {"real": hr, "image": low_resolution(hr, s, self.kernel)}


class Outpainting(SynthDataset):
    """Photos from a folder with a mask of known pixels; the rest is to be synthesised.

    Args:
        folder: the photos.
        mask: ``"center"``: the centred box covering ``keep`` of each side is known;
            ``"random"``: a box of the same size at a random position per item (from the
            per-item generator).
        size, crop, flip, resize_mode: the :class:`~synth.data.PairedTransform` of the photo.
        keep: fraction of each side that is known, in ``(0, 1]``.
        seed: the augmentation seed.

    Items: ``real`` ``[3, H, W]``, ``mask`` ``[1, H, W]`` (1 = known), ``image`` = ``real *
    mask`` (unknown pixels are 0), ``index``.
    """

    fields = frozenset({"image", "mask"})
    num_classes = None

    def __init__(
        self,
        folder: str | Path,
        mask: Literal["center", "random"] = "center",
        size: int | tuple[int, int] | None = None,
        keep: float = 0.5,
        seed: int = 0,
        crop: int | tuple[int, int] | None = None,
        flip: bool = False,
        resize_mode: Literal["short_side", "exact"] = "exact",
    ) -> None:
        super().__init__(seed)
        if mask not in ("center", "random"):
            raise ValueError(f"mask = {mask!r}: choose 'center' or 'random'")
        if not 0.0 < float(keep) <= 1.0:
            raise ValueError(f"keep = {keep!r}: the known fraction of each side is in (0, 1]")
        self.mask = mask
        self.keep = float(keep)
        self.transform = PairedTransform(size, crop, flip, resize_mode)
        self.paths = [p for _, p in sorted(list_images(Path(folder), "images").items())]

    def __len__(self) -> int:
        return len(self.paths)

    def make_mask(
        self, size: tuple[int, int], generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The ``[1, H, W]`` mask for an image of ``size`` (random position needs a generator)."""
        h, w = size
        box = (max(1, round(self.keep * h)), max(1, round(self.keep * w)))
        return box_mask(size, box, generator=generator if self.mask == "random" else None)

    def _load(self, index: int, generator: torch.Generator) -> dict[str, Any]:
        path = self.paths[index]
        real = transform_item(self.transform, {"real": load_image(path)}, generator, [path])["real"]
        m = self.make_mask((int(real.shape[-2]), int(real.shape[-1])), generator)
        return {"real": real, "mask": m, "image": real * m}
