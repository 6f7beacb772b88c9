"""Cityscapes (Cordts et al., CVPR 2016) in its official on-disk layout.

::

    root/leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png
    root/gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelIds.png
    root/gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_instanceIds.png

Label modes:

- ``"ids"`` (default; pix2pixHD and SPADE): the raw ``labelIds``, 0..33, with
  ``num_classes = 35`` as pix2pixHD's ``label_nc=35`` (id 34 is never used). The license-plate
  label (id -1) is not drawn into ``labelIds`` files by ``cityscapesscripts``.
- ``"train_ids"``: the 19 evaluation classes of the benchmark, ``0..18`` through
  :data:`CITYSCAPES_LABELS`, and every other id (``trainId`` 255 / -1) becomes class 19, an
  "ignore" class: ``num_classes = 20``.

Instance maps (``use_instances=True``) are read from ``instanceIds`` as they are: ``class_id *
1000 + k`` for pixels of instance classes (cars, persons, ...) and the class id for stuff, as
long ints (only their boundaries matter to pix2pixHD-style models).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, NamedTuple

import torch

from .base import SynthDataset
from .transforms import PairedTransform, check_ids, load_image, load_label_map, transform_item

__all__ = ["CITYSCAPES_LABELS", "Cityscapes", "CityscapesLabel", "train_id_table"]


class CityscapesLabel(NamedTuple):
    name: str
    id: int
    train_id: int
    has_instances: bool


#: The official label table (``cityscapesscripts/helpers/labels.py``): name, id, trainId,
#: hasInstances. trainId 255 (and -1 for the license plate) = not evaluated.
CITYSCAPES_LABELS: tuple[CityscapesLabel, ...] = (
    CityscapesLabel("unlabeled", 0, 255, False),
    CityscapesLabel("ego vehicle", 1, 255, False),
    CityscapesLabel("rectification border", 2, 255, False),
    CityscapesLabel("out of roi", 3, 255, False),
    CityscapesLabel("static", 4, 255, False),
    CityscapesLabel("dynamic", 5, 255, False),
    CityscapesLabel("ground", 6, 255, False),
    CityscapesLabel("road", 7, 0, False),
    CityscapesLabel("sidewalk", 8, 1, False),
    CityscapesLabel("parking", 9, 255, False),
    CityscapesLabel("rail track", 10, 255, False),
    CityscapesLabel("building", 11, 2, False),
    CityscapesLabel("wall", 12, 3, False),
    CityscapesLabel("fence", 13, 4, False),
    CityscapesLabel("guard rail", 14, 255, False),
    CityscapesLabel("bridge", 15, 255, False),
    CityscapesLabel("tunnel", 16, 255, False),
    CityscapesLabel("pole", 17, 5, False),
    CityscapesLabel("polegroup", 18, 255, False),
    CityscapesLabel("traffic light", 19, 6, False),
    CityscapesLabel("traffic sign", 20, 7, False),
    CityscapesLabel("vegetation", 21, 8, False),
    CityscapesLabel("terrain", 22, 9, False),
    CityscapesLabel("sky", 23, 10, False),
    CityscapesLabel("person", 24, 11, True),
    CityscapesLabel("rider", 25, 12, True),
    CityscapesLabel("car", 26, 13, True),
    CityscapesLabel("truck", 27, 14, True),
    CityscapesLabel("bus", 28, 15, True),
    CityscapesLabel("caravan", 29, 255, True),
    CityscapesLabel("trailer", 30, 255, True),
    CityscapesLabel("train", 31, 16, True),
    CityscapesLabel("motorcycle", 32, 17, True),
    CityscapesLabel("bicycle", 33, 18, True),
    CityscapesLabel("license plate", -1, -1, False),
)

#: Number of classes per label mode.
NUM_CLASSES = {"ids": 35, "train_ids": 20}
IGNORE_TRAIN_ID = 19


def train_id_table() -> torch.Tensor:
    """``LongTensor[256]`` lookup: labelId → trainId, with 19 for every ignored id."""
    table = torch.full((256,), IGNORE_TRAIN_ID, dtype=torch.long)
    for label in CITYSCAPES_LABELS:
        if label.id >= 0 and 0 <= label.train_id < 255:
            table[label.id] = label.train_id
    return table


class Cityscapes(SynthDataset):
    """Cityscapes photos with ``gtFine`` label (and instance) maps.

    Args:
        root: the folder holding ``leftImg8bit/`` and ``gtFine/``.
        split: ``"train"``, ``"val"`` or ``"test"`` (the test split has no real labels).
        size, crop, flip, resize_mode: the :class:`~synth.data.PairedTransform`; e.g.
            ``size=(256, 512)`` for pix2pixHD's 512x256 setting.
        seed: the augmentation seed.
        use_instances: also read ``*_gtFine_instanceIds.png`` as ``instance_map``.
        label_mode: ``"ids"`` (35 classes) or ``"train_ids"`` (19 + ignore = 20 classes).

    Raises ``FileNotFoundError``/``ValueError`` naming the folder or file when the layout is
    not found, the split is empty, or a photo has no label (or instance) file.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        size: int | tuple[int, int] | None = None,
        crop: int | tuple[int, int] | None = None,
        flip: bool = False,
        seed: int = 0,
        use_instances: bool = True,
        label_mode: Literal["ids", "train_ids"] = "ids",
        resize_mode: Literal["short_side", "exact"] = "exact",
    ) -> None:
        super().__init__(seed)
        if label_mode not in NUM_CLASSES:
            raise ValueError(f"label_mode = {label_mode!r}: choose 'ids' or 'train_ids'")
        self.root = Path(root).expanduser()
        self.split = split
        self.label_mode = label_mode
        self.num_classes = NUM_CLASSES[label_mode]
        self.use_instances = bool(use_instances)
        self.transform = PairedTransform(size, crop, flip, resize_mode)
        self.fields = frozenset({"label_map"} | ({"instance_map"} if use_instances else set()))
        self._table = train_id_table() if label_mode == "train_ids" else None

        img_dir = self.root / "leftImg8bit" / split
        if not img_dir.is_dir():
            raise FileNotFoundError(
                f"Cityscapes: {str(img_dir)!r} does not exist; root must hold "
                f"leftImg8bit/{split}/<city>/*_leftImg8bit.png and gtFine/{split}/<city>/ "
                "(unpack leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip into root)"
            )
        suffix = "_leftImg8bit.png"
        photos = sorted(img_dir.glob(f"*/*{suffix}"))
        if not photos:
            raise ValueError(f"Cityscapes: no *{suffix} files under {str(img_dir)!r}/<city>/")
        self.files: list[dict[str, Path]] = []
        for photo in photos:
            prefix = photo.name[: -len(suffix)]
            gt = self.root / "gtFine" / split / photo.parent.name
            entry = {"image": photo, "label": gt / f"{prefix}_gtFine_labelIds.png"}
            if use_instances:
                entry["instance"] = gt / f"{prefix}_gtFine_instanceIds.png"
            for key in ("label", "instance"):
                if key in entry and not entry[key].is_file():
                    raise FileNotFoundError(
                        f"Cityscapes: the photo {str(photo)!r} has no {key} file "
                        f"{str(entry[key])!r}; unpack gtFine_trainvaltest.zip into root"
                        + (" or pass use_instances=False" if key == "instance" else "")
                    )
            self.files.append(entry)

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, index: int, generator: torch.Generator) -> dict[str, Any]:
        files = self.files[index]
        ids = load_label_map(files["label"])
        if self._table is not None:
            check_ids(ids, 256, files["label"])
            ids = self._table[ids]
        check_ids(ids, self.num_classes, files["label"])
        item: dict[str, Any] = {"real": load_image(files["image"]), "label_map": ids}
        if "instance" in files:
            item["instance_map"] = load_label_map(files["instance"])
        return transform_item(self.transform, item, generator, list(files.values()))
