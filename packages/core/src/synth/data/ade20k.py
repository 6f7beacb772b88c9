"""ADE20K scene parsing (MIT SceneParsing benchmark, Zhou et al., CVPR 2017).

Layout (``ADEChallengeData2016.zip`` unpacked)::

    root/ADEChallengeData2016/images/{training,validation}/ADE_train_00000001.jpg
    root/ADEChallengeData2016/annotations/{training,validation}/ADE_train_00000001.png

``root`` may also be the ``ADEChallengeData2016`` folder itself.

Label convention: ``num_classes = 151``; the annotation values are used as they are: ``0`` =
"other" (unlabelled, SPADE's don't-care class) and ``1..150`` the 150 benchmark classes. This
is what SPADE's ADE20K models are trained with (``label_nc=150`` plus
``contain_dontcare_label=True`` gives 151 input channels). SPADE's ``ADE20KDataset.postprocess``
looks as if it shifts ids by -1, but it rebinds a local variable and never writes the result
back, so its models see the raw ids. Conversions of official SPADE checkpoints therefore need
no label remapping.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch

from .base import SynthDataset
from .folders import match_stems
from .transforms import PairedTransform, list_images, load_image, load_label_map, transform_item

__all__ = ["ADE20K"]

SPLITS = ("training", "validation")


class ADE20K(SynthDataset):
    """ADE20K photos with their 151-class annotation maps (no instance maps).

    Args:
        root: the folder holding ``ADEChallengeData2016/`` (or that folder itself).
        split: ``"training"`` (20,210 photos) or ``"validation"`` (2,000).
        size, crop, flip, resize_mode: the :class:`~synth.data.PairedTransform`; SPADE trains
            with ``size=286, crop=256, flip=True`` and tests with ``size=256``.
        seed: the augmentation seed.
    """

    num_classes = 151
    fields = frozenset({"label_map"})

    def __init__(
        self,
        root: str | Path,
        split: Literal["training", "validation"] = "training",
        size: int | tuple[int, int] | None = None,
        crop: int | tuple[int, int] | None = None,
        flip: bool = False,
        seed: int = 0,
        resize_mode: Literal["short_side", "exact"] = "exact",
    ) -> None:
        super().__init__(seed)
        if split not in SPLITS:
            raise ValueError(f"ADE20K split = {split!r}: choose 'training' or 'validation'")
        root = Path(root).expanduser()
        base = root / "ADEChallengeData2016"
        if not base.is_dir() and (root / "images").is_dir():
            base = root
        img_dir, ann_dir = base / "images" / split, base / "annotations" / split
        if not img_dir.is_dir() or not ann_dir.is_dir():
            raise FileNotFoundError(
                f"ADE20K: {str(img_dir)!r} and {str(ann_dir)!r} must exist; unpack "
                "ADEChallengeData2016.zip into root"
            )
        self.root, self.split = root, split
        self.transform = PairedTransform(size, crop, flip, resize_mode)
        sides = {
            "images": list_images(img_dir, "ADE20K images", {".jpg", ".jpeg"}),
            "annotations": list_images(ann_dir, "ADE20K annotations", {".png"}),
        }
        self.stems = match_stems(sides)
        self.files = [(sides["images"][s], sides["annotations"][s]) for s in self.stems]

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, index: int, generator: torch.Generator) -> dict[str, Any]:
        image, label = self.files[index]
        item = {
            "real": load_image(image),
            "label_map": load_label_map(label, self.num_classes),
        }
        return transform_item(self.transform, item, generator, [image, label])
