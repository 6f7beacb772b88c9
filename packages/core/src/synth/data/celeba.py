"""CelebA (Liu et al., ICCV 2015), aligned and cropped faces, as outpainting or super-resolution.

Layout (``img_align_celeba.zip`` and ``list_eval_partition.txt`` of the official release)::

    root/img_align_celeba/000001.jpg ... 202599.jpg     (178 wide, 218 high)
    root/list_eval_partition.txt                        lines "<file> <0|1|2>"

``root`` may also be the folder above a ``celeba/`` folder of that layout (where
``torchvision.datasets.CelebA`` puts it). Partition 0 is ``"train"`` (162,770 images), 1
``"val"`` (19,867), 2 ``"test"`` (19,962).

Geometry: the centred ``crop`` x ``crop`` square of the aligned photo (default 178: the full
width, rows 20..197, the face centred, as StarGAN's ``CenterCrop(178)``), then resized to
``size`` (default 128: the "cropped 128x128" CelebA of image-outpainting and face
super-resolution papers) with antialiased bicubic resampling, then an optional flip.

Tasks:

- ``"outpainting"``: ``image`` = the occluded face (``real * mask``), ``mask`` = 1 where
  known. ``mask="face"`` keeps :data:`CELEBA_FACE_BOX`, the eyes and nose (what Nested
  Scale-Editing's outpainting keeps, Figs. 1, 2 and 4); ``mask="random"`` keeps a box of the
  same size at a random position per item (from the per-item generator).
- ``"super_resolution"``: ``image`` = the photo downsampled by ``scale`` (default 8: 128 →
  16) with ``kernel`` (default ``"bilinear"``, the paper's "bilinearly downsampled 16x16").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch

from .base import SynthDataset
from .folders import box_mask, check_downsampling, low_resolution
from .transforms import PairedTransform, load_image, transform_item

__all__ = ["CELEBA_FACE_BOX", "CELEBA_SPLITS", "CelebA", "read_partition"]

#: Split name -> partition id of ``list_eval_partition.txt``; ``"all"`` takes every line.
CELEBA_SPLITS: dict[str, int | None] = {"train": 0, "val": 1, "test": 2, "all": None}

#: The known box of ``mask="face"`` as ``(top, left, height, width)`` on the 128 x 128 crop:
#: rows 48..87, columns 36..91 (13.7 % of the pixels), scaled to other sizes. It holds the
#: eyebrows, both eyes and the nose down to the nostrils, not the mouth: the mean aligned
#: landmarks (eyes at (69, 111) and (108, 111), nose at (89, 134), mouth corners at row 152 of
#: the 178 x 218 photo) land at rows 66 (eyes), 82 (nose tip) and 95 (mouth), columns 50 and
#: 78 (eyes) of the 128 crop; the box adds ~15 px around the eye centres (eyebrows and eye
#: corners) and ends above the upper lip. The paper gives no coordinates; this is our reading
#: of its figures, left-right symmetric about the face's centre line.
CELEBA_FACE_BOX: tuple[int, int, int, int] = (48, 36, 40, 56)

_BOX_SIDE = 128  # the image side CELEBA_FACE_BOX is given for


def read_partition(path: str | Path) -> list[tuple[str, int]]:
    """``(file name, partition)`` of each line of ``list_eval_partition.txt``, in file order.

    Raises:
        FileNotFoundError: the file does not exist (the message says where to get it).
        ValueError: a line that is not ``<file> <0|1|2>`` (the message names the line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"CelebA: the partition file {str(path)!r} does not exist; put "
            "list_eval_partition.txt (from the CelebA release, folder Eval/) next to "
            "img_align_celeba/"
        )
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise ValueError(
                f"CelebA: line {number} of {str(path)!r} is {line.strip()!r}; every line is "
                "'<file> <0|1|2>' (0 = train, 1 = val, 2 = test)"
            )
        entries.append((parts[0], int(parts[1])))
    if not entries:
        raise ValueError(f"CelebA: the partition file {str(path)!r} is empty")
    return entries


def _find_root(root: Path) -> Path:
    """``root``, or ``root/celeba`` when that holds the layout (torchvision's folder)."""
    if not (root / "img_align_celeba").is_dir() and (root / "celeba" / "img_align_celeba").is_dir():
        return root / "celeba"
    return root


def _scaled_box(size: tuple[int, int]) -> tuple[int, int, int, int]:
    """:data:`CELEBA_FACE_BOX` on a ``size`` image (each coordinate scaled and rounded)."""
    h, w = size
    top, left, bh, bw = CELEBA_FACE_BOX
    sy, sx = h / _BOX_SIDE, w / _BOX_SIDE
    return (round(top * sy), round(left * sx), max(1, round(bh * sy)), max(1, round(bw * sx)))


class CelebA(SynthDataset):
    """Aligned CelebA faces as outpainting or super-resolution pairs (module docstring).

    Args:
        root: the folder holding ``img_align_celeba/`` and ``list_eval_partition.txt``.
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"``.
        task: ``"outpainting"`` or ``"super_resolution"``.
        size: the side of the output square (default 128).
        crop: the side of the centred square cut from the 178 x 218 photo before resizing
            (default 178); ``None`` resizes the whole photo (changing its aspect ratio).
        mask: outpainting only: ``"face"`` (:data:`CELEBA_FACE_BOX`) or ``"random"`` (a box
            of that size anywhere, drawn per item).
        scale, kernel: super-resolution only: the low-resolution input is ``size // scale``
            on a side, downsampled with ``kernel`` (see :func:`~synth.data.folders.low_resolution`).
        flip: flip horizontally with probability 1/2 (per-item generator).
        seed: the augmentation seed.

    Items: ``real`` ``[3, size, size]``; outpainting: ``image`` ``[3, size, size]`` = ``real *
    mask``, ``mask`` ``[1, size, size]``; super-resolution: ``image`` ``[3, size / scale,
    size / scale]``; ``index``.

    Raises ``FileNotFoundError`` naming the missing partition file, image folder or image files
    (first 10 and the count), ``ValueError`` for bad settings or partition lines.
    """

    num_classes = None

    def __init__(
        self,
        root: str | Path,
        split: Literal["train", "val", "test", "all"] = "train",
        task: Literal["outpainting", "super_resolution"] = "outpainting",
        size: int = 128,
        crop: int | None = 178,
        mask: Literal["face", "random"] = "face",
        scale: int = 8,
        kernel: Literal["bicubic", "bilinear", "area"] = "bilinear",
        flip: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(seed)
        self._check(split, task, size, crop, mask)
        if task == "super_resolution":
            check_downsampling(scale, kernel)
            if size % scale:
                raise ValueError(
                    f"CelebA size {size} is not divisible by scale {scale}: the low-resolution "
                    f"input must be exactly 1/{scale} of it; use a multiple of {scale}"
                )
        self.split, self.task, self.size, self.crop = split, task, size, crop
        self.mask, self.scale, self.kernel = mask, scale, kernel
        self.fields = frozenset({"image", "mask"} if task == "outpainting" else {"image"})
        self.transform = PairedTransform(size, flip=flip)
        self.root = _find_root(Path(root).expanduser())
        self.paths = self._split_files(split)

    @staticmethod
    def _check(split: Any, task: Any, size: Any, crop: Any, mask: Any) -> None:
        if split not in CELEBA_SPLITS:
            raise ValueError(f"CelebA split = {split!r}: choose one of {', '.join(CELEBA_SPLITS)}")
        if task not in ("outpainting", "super_resolution"):
            raise ValueError(f"CelebA task = {task!r}: choose 'outpainting' or 'super_resolution'")
        for name, value in (("size", size), ("crop", 1 if crop is None else crop)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"CelebA {name} = {value!r}: must be a positive int")
        if mask not in ("face", "random"):
            raise ValueError(f"CelebA mask = {mask!r}: choose 'face' or 'random'")

    def _split_files(self, split: str) -> list[Path]:
        """The split's image paths, in partition-file order; every one must exist."""
        folder = self.root / "img_align_celeba"
        if not folder.is_dir():
            raise FileNotFoundError(
                f"CelebA: {str(folder)!r} does not exist; root must hold img_align_celeba/*.jpg "
                "and list_eval_partition.txt (unzip img_align_celeba.zip into root)"
            )
        wanted = CELEBA_SPLITS[split]
        partition = self.root / "list_eval_partition.txt"
        names = [n for n, part in read_partition(partition) if wanted in (None, part)]
        if not names:
            raise ValueError(f"CelebA: {str(partition)!r} lists no image of split {split!r}")
        present = {p.name for p in folder.iterdir()}
        missing = [n for n in names if n not in present]
        if missing:
            more = f", ... ({len(missing) - 10} more)" if len(missing) > 10 else ""
            raise FileNotFoundError(
                f"CelebA: {len(missing)} image(s) of split {split!r} listed in "
                f"{str(partition)!r} are not in {str(folder)!r}: {', '.join(missing[:10])}{more}; "
                "unzip the whole img_align_celeba.zip there (or use the partition file that "
                "came with your copy of the images)"
            )
        return [folder / n for n in names]

    def __len__(self) -> int:
        return len(self.paths)

    def _face(self, path: Path, generator: torch.Generator) -> torch.Tensor:
        """The photo's centred ``crop`` square, resized to ``size`` (and flipped)."""
        photo = load_image(path)
        if self.crop is not None:
            h, w = photo.shape[-2:]
            if self.crop > min(h, w):
                raise ValueError(
                    f"CelebA: {str(path)!r} is {w}x{h}, smaller than crop {self.crop}; the "
                    "aligned images are 178x218: lower crop, or check that img_align_celeba "
                    "holds the aligned photos"
                )
            top, left = (h - self.crop) // 2, (w - self.crop) // 2
            photo = photo[:, top : top + self.crop, left : left + self.crop]
        return transform_item(self.transform, {"real": photo}, generator, [path])["real"]

    def _load(self, index: int, generator: torch.Generator) -> dict[str, Any]:
        real = self._face(self.paths[index], generator)
        if self.task == "super_resolution":
            return {"real": real, "image": low_resolution(real, self.scale, self.kernel)}
        size = (self.size, self.size)
        top, left, bh, bw = _scaled_box(size)
        if self.mask == "face":
            m = box_mask(size, (bh, bw), at=(top, left))
        else:
            m = box_mask(size, (bh, bw), generator=generator)
        return {"real": real, "mask": m, "image": real * m}
