"""Shared helpers of the pix2pixHD tests."""

from __future__ import annotations

from typing import Any

import torch

import synth.data


class OnePair:
    """A data set of one fixed (label map, instance map, photo) item, ``length`` times."""

    def __init__(self, item: dict[str, Any], num_classes: int, length: int = 1) -> None:
        self.item, self.num_classes, self.length = item, num_classes, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {**self.item, "index": i}


def demo_pair(size: int = 64, num_classes: int = 8) -> dict[str, Any]:
    """One real photo with its label and instance maps from the embedded demo set."""
    item = synth.data.demo(size, num_classes, split="all")[0]
    return {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in item.items()}
