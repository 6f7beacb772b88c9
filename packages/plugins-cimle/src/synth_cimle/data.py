"""A super-resolution data set on the embedded demo photos (for demos, tests and benchmarks).

Each of the demo photos (``synth.data.demo(size=work).photos``, ``work × work``) is split
in columns: crops of the ``train`` split come from the left ``1 - holdout`` of every photo,
crops of the ``test`` split from the right ``holdout`` part, so test crops are held out. An
item is a random ``size × size`` HR crop (and a horizontal flip in ``train``) and its LR image
``resize_image(hr, size // scale, "bicubic")`` (antialiased).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from synth.data.base import SynthDataset
from synth.data.transforms import resize_image

__all__ = ["DemoSuperResolution", "bicubic_upsample", "psnr"]


def bicubic_upsample(lr: Tensor, scale: int) -> Tensor:
    """The bicubic baseline: ``[B, 3, h, w] -> [B, 3, h·s, w·s]`` clamped to [-1, 1]."""
    up = torch.nn.functional.interpolate(
        lr.float(), scale_factor=scale, mode="bicubic", align_corners=False
    )
    return up.clamp(-1, 1)


def psnr(x: Tensor, y: Tensor) -> Tensor:
    """PSNR in dB of ``[B, 3, H, W]`` images in [-1, 1] (peak = range 2) -> ``[B]``."""
    mse = (x.float() - y.float()).square().flatten(1).mean(1)
    return 10 * torch.log10(4.0 / mse.clamp_min(1e-12))


class DemoSuperResolution(SynthDataset):
    """×``scale`` SR crops of the demo photos (see the module docstring).

    Items: ``real`` HR ``[3, size, size]`` and ``image`` LR ``[3, size/scale, size/scale]``.
    """

    fields = frozenset({"image"})
    num_classes = None

    def __init__(
        self,
        size: int = 32,
        scale: int = 4,
        split: Literal["train", "test"] = "train",
        *,
        work: int = 128,
        holdout: float = 0.25,
        length: int = 256,
        seed: int = 0,
    ) -> None:
        super().__init__(seed)
        if size % scale:
            raise ValueError(f"size {size} is not a multiple of scale {scale}")
        from synth.data import demo

        self.size, self.scale, self.split, self.length = size, scale, split, length
        photos = torch.stack([p["real"] for p in demo(size=work, split="all").photos])
        cut = round(photos.shape[-1] * (1 - holdout))
        self.photos = photos[..., :cut] if split == "train" else photos[..., cut:]
        if self.photos.shape[-1] < size:
            raise ValueError(f"the {split} part of the photos is narrower than size {size}")

    def __len__(self) -> int:
        return self.length

    def _load(self, index: int, generator: torch.Generator) -> dict[str, Any]:
        p = index % self.photos.shape[0]
        photo = self.photos[p]
        h, w = photo.shape[-2:]
        top = int(torch.randint(0, h - self.size + 1, (), generator=generator))
        left = int(torch.randint(0, w - self.size + 1, (), generator=generator))
        hr = photo[:, top : top + self.size, left : left + self.size]
        if self.split == "train" and bool(torch.rand((), generator=generator) < 0.5):
            hr = hr.flip(-1)
        lr = resize_image(hr, (self.size // self.scale,) * 2, "bicubic")
        return {"real": hr.contiguous(), "image": lr.contiguous()}
