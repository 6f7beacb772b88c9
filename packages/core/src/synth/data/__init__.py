"""Data sets, transforms and batching for synth (DESIGN §6).

Every data set returns items in one format (see :mod:`synth.data.base`): ``"real"`` (the
target photo), the :class:`synth.Condition` fields it has, and ``"index"``. Random augmentation
draws only from a per-item generator seeded by ``(seed, epoch, index)``, so runs resume
exactly. :func:`collate` stacks items into a :class:`Batch` with a validated Condition.

>>> from synth.data import demo, make_collate
>>> ds = demo(size=64, num_classes=8)                       # doctest: +SKIP
>>> loader = DataLoader(ds, batch_size=4, collate_fn=make_collate(ds))  # doctest: +SKIP
"""

from __future__ import annotations

from .ade20k import ADE20K
from .base import SynthDataset, item_generator, item_seed
from .batch import Batch, collate, make_collate
from .build import DATASETS, build_dataset
from .celeba import CELEBA_FACE_BOX, CelebA
from .cityscapes import CITYSCAPES_LABELS, Cityscapes
from .demo import DEMO_IMAGES, DemoDataset, DemoImage, demo
from .folders import Outpainting, PairedFolder, SuperResolution, box_mask, low_resolution
from .transforms import PairedTransform, load_image, load_label_map

__all__ = [
    "ADE20K",
    "CELEBA_FACE_BOX",
    "CITYSCAPES_LABELS",
    "DATASETS",
    "DEMO_IMAGES",
    "Batch",
    "CelebA",
    "Cityscapes",
    "DemoDataset",
    "DemoImage",
    "Outpainting",
    "PairedFolder",
    "PairedTransform",
    "SuperResolution",
    "SynthDataset",
    "box_mask",
    "build_dataset",
    "collate",
    "demo",
    "item_generator",
    "item_seed",
    "load_image",
    "load_label_map",
    "low_resolution",
    "make_collate",
]
