"""An embedded demo data set: real photos shipped in the scikit-image wheel, photo-derived labels.

The photos are files inside the installed ``skimage/data/`` package folder (the small set that
ships in the wheel; the larger ``skimage.data`` images that ``pooch`` downloads are *not* used),
read straight from that folder with Pillow, so the set loads offline and needs no download.

=====================  =====================  ================================================
name                   file                   licence and source
=====================  =====================  ================================================
astronaut              astronaut.png          public domain; NASA (Eileen Collins),
                                              https://flic.kr/p/r9qvLn
chelsea                chelsea.png            CC0; photo of Chelsea the cat by Stefan van der
                                              Walt
coffee                 coffee.png             CC0; photo by Rachel Michetti, courtesy of
                                              Pikolo Espresso Bar
rocket                 rocket.jpg             public domain; SpaceX, launch of DSCOVR on
                                              Falcon 9, https://www.flickr.com/photos/
                                              spacexphotos/16511594820
motorcycle_left        motorcycle_left.png    Middlebury 2014 stereo benchmark (Scharstein et
                                              al., GCPR 2014), left view, downsampled 4x; no
                                              licence stated by scikit-image — cite the
                                              benchmark when you publish results on it
hubble_deep_field      hubble_deep_field.jpg  public domain; NASA / HubbleSite, Hubble
                                              eXtreme Deep Field (2012)
retina                 retina.jpg             CC0; Mikael Häggström, fundus photograph,
                                              Wikimedia Commons
immunohistochemistry   ihc.png                no known copyright restrictions; Center for
                                              Microscopy And Molecular Imaging (CMMI)
=====================  =====================  ================================================

The licence and source of each photo is what scikit-image states in the docstring of the
matching ``skimage.data.<name>()`` function (its ``data/README.txt`` has no per-file notes);
:data:`DEMO_IMAGES` holds the same table.

Labels are derived from the photos deterministically, at a working resolution of ``2 * size``
(each photo resized so its short side is ``2 * size``, then centre-cropped to a square):

1. SLIC superpixels (``skimage.segmentation.slic``, 200 segments, compactness 10, sigma 1);
2. the mean CIE-Lab colour of each superpixel;
3. pixel-weighted k-means (k-means++ seeded with the fixed seed 0, Lloyd iterations) over the
   superpixels of *all* photos together into ``num_classes`` clusters, so class k is a similar
   colour in every photo; clusters are numbered from dark to light (by L*);
4. label = the cluster of the pixel's superpixel; instance map = connected components
   (4-connectivity, ``scipy.ndimage.label``) of each class, numbered 1.. uniquely per photo.

The dataset ``seed`` drives augmentation only; the labels depend on ``size`` and
``num_classes`` alone. They are computed once per process (an in-memory LRU cache; well under
a second at ``size=64``) and, with ``disk_cache=True``, stored under
``$SYNTH_HOME/cache/demo/``.

``split="train"``: ``crops_per_photo`` items per photo (item ``i`` shows photo ``i % N``): a
random square crop with side in ``[size, 2 * size]`` of the working image, resized to ``size``
(bicubic for the photo, nearest for the maps), flipped with probability 1/2 when ``flip``.
``split="all"``: one item per photo, the whole working image resized to ``size``, no randomness.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from ..extras import require
from .base import SynthDataset
from .transforms import resize_ids, resize_image

__all__ = ["DEMO_IMAGES", "DemoDataset", "DemoImage", "demo"]


@dataclass(frozen=True)
class DemoImage:
    """One photo of the demo set: its name, file in ``skimage/data/``, licence and source."""

    name: str
    file: str
    licence: str
    source: str


DEMO_IMAGES: tuple[DemoImage, ...] = (
    DemoImage(
        "astronaut",
        "astronaut.png",
        "public domain (no known copyright restrictions)",
        "NASA Great Images, Eileen Collins; https://flic.kr/p/r9qvLn",
    ),
    DemoImage("chelsea", "chelsea.png", "CC0", "Chelsea the cat, photo by Stefan van der Walt"),
    DemoImage(
        "coffee",
        "coffee.png",
        "CC0",
        "coffee cup, photo by Rachel Michetti, courtesy of Pikolo Espresso Bar",
    ),
    DemoImage(
        "rocket",
        "rocket.jpg",
        "public domain",
        "SpaceX, DSCOVR launch on Falcon 9; https://www.flickr.com/photos/spacexphotos/16511594820",
    ),
    DemoImage(
        "motorcycle_left",
        "motorcycle_left.png",
        "no licence stated by scikit-image; cite the Middlebury 2014 stereo benchmark",
        "Middlebury 2014 stereo data set (Scharstein et al., GCPR 2014), left view, 4x smaller",
    ),
    DemoImage(
        "hubble_deep_field",
        "hubble_deep_field.jpg",
        "public domain",
        "NASA / HubbleSite, Hubble eXtreme Deep Field (2012); "
        "http://hubblesite.org/newscenter/archive/releases/2012/37/image/a/",
    ),
    DemoImage(
        "retina",
        "retina.jpg",
        "CC0 1.0",
        "Mikael Häggström, fundus photograph of a normal left eye, Wikimedia Commons",
    ),
    DemoImage(
        "immunohistochemistry",
        "ihc.png",
        "no known copyright restrictions",
        "IHC staining of colonic glands, Center for Microscopy And Molecular Imaging (CMMI)",
    ),
)

#: Parameters of the label derivation (part of the cache key).
SLIC_SEGMENTS = 200
SLIC_COMPACTNESS = 10.0
SLIC_SIGMA = 1.0
KMEANS_SEED = 0
KMEANS_ITERS = 100
_FORMAT = 1


def _image_dir() -> Path:
    data = require("skimage.data", extra="demo", needed_by="the demo photos (synth.data.demo)")
    return Path(str(files(data)))


def _read_photo(image: DemoImage, work: int) -> np.ndarray:
    """The photo resized (short side = ``work``, bicubic) and centre-cropped: uint8 [S, S, 3]."""
    from PIL import Image

    path = _image_dir() / image.file
    if not path.is_file():
        raise FileNotFoundError(
            f"demo photo {image.name!r} is not at {str(path)!r}: the demo set reads the images "
            "bundled in the scikit-image wheel; reinstall scikit-image (>= 0.22)"
        )
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        s = work / min(w, h)
        nw, nh = max(work, round(w * s)), max(work, round(h * s))
        im = im.resize((nw, nh), Image.Resampling.BICUBIC)
        left, top = (nw - work) // 2, (nh - work) // 2
        return np.asarray(im.crop((left, top, left + work, top + work)), dtype=np.uint8).copy()


def _kmeans(x: np.ndarray, w: np.ndarray, k: int, seed: int, iters: int) -> np.ndarray:
    """Weighted k-means (k-means++ init, Lloyd); returns centres ``[k, D]``."""
    rng = np.random.default_rng(seed)
    n = len(x)
    p = w / w.sum()
    centres = [x[rng.choice(n, p=p)]]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        q = w * d2
        idx = rng.choice(n, p=q / q.sum()) if q.sum() > 0 else int(rng.integers(n))
        centres.append(x[idx])
        d2 = np.minimum(d2, ((x - x[idx]) ** 2).sum(1))
    c = np.stack(centres).astype(np.float64)
    assign = np.full(n, -1)
    for _ in range(iters):
        dist = ((x[:, None, :] - c[None]) ** 2).sum(-1)
        new = dist.argmin(1)
        for j in range(k):
            sel = new == j
            if sel.any():
                c[j] = (x[sel] * w[sel, None]).sum(0) / w[sel].sum()
            else:  # empty cluster: move it to the worst-served point
                far = int((dist[np.arange(n), new] * w).argmax())
                c[j] = x[far]
                new[far] = j
        if (new == assign).all():
            break
        assign = new
    return c


@dataclass(frozen=True)
class _Derived:
    photos: np.ndarray  # uint8 [N, S, S, 3]
    labels: np.ndarray  # int64 [N, S, S]
    instances: np.ndarray  # int64 [N, S, S]
    palette: np.ndarray  # uint8 [K, 3]
    centres: np.ndarray  # float64 [K, 3] Lab


def _derive(work: int, num_classes: int, names: tuple[str, ...]) -> _Derived:
    who = "the demo label maps (synth.data.demo)"
    ndimage = require("scipy.ndimage", extra="demo", needed_by=who)
    rgb2lab = require("skimage.color", extra="demo", needed_by=who).rgb2lab
    slic = require("skimage.segmentation", extra="demo", needed_by=who).slic

    table = {im.name: im for im in DEMO_IMAGES}
    photos = np.stack([_read_photo(table[n], work) for n in names])
    segs, feats, weights = [], [], []
    offset = 0
    for photo in photos:
        seg = slic(
            photo,
            n_segments=SLIC_SEGMENTS,
            compactness=SLIC_COMPACTNESS,
            sigma=SLIC_SIGMA,
            start_label=0,
        ).astype(np.int64)
        lab = rgb2lab(photo).reshape(-1, 3)
        n = int(seg.max()) + 1
        count = np.bincount(seg.ravel(), minlength=n).astype(np.float64)
        mean = (
            np.stack([np.bincount(seg.ravel(), lab[:, c], minlength=n) for c in range(3)], 1)
            / np.maximum(count, 1)[:, None]
        )
        keep = count > 0
        remap = np.full(n, -1, dtype=np.int64)
        remap[keep] = np.arange(int(keep.sum())) + offset
        segs.append(remap[seg])
        feats.append(mean[keep])
        weights.append(count[keep])
        offset += int(keep.sum())
    x, w = np.concatenate(feats), np.concatenate(weights)
    if num_classes > len(x):
        raise ValueError(
            f"demo: num_classes={num_classes} exceeds the {len(x)} superpixels of the photos; "
            "use fewer classes or a larger size"
        )
    centres = _kmeans(x, w, num_classes, KMEANS_SEED, KMEANS_ITERS)
    order = np.argsort(centres[:, 0], kind="stable")  # dark to light
    centres = centres[order]
    cluster = ((x[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
    labels = np.stack([cluster[s] for s in segs]).astype(np.int64)

    instances = np.zeros_like(labels)
    for i, lab_map in enumerate(labels):
        next_id = 1
        for k in np.unique(lab_map):
            comp, n = ndimage.label(lab_map == k)
            inside = comp > 0
            instances[i][inside] = comp[inside] + (next_id - 1)
            next_id += n

    flat = labels.ravel()
    rgb = photos.reshape(-1, 3).astype(np.float64)
    cnt = np.bincount(flat, minlength=num_classes).astype(np.float64)
    sums = np.stack([np.bincount(flat, rgb[:, c], minlength=num_classes) for c in range(3)], 1)
    palette = np.where(cnt[:, None] > 0, sums / np.maximum(cnt, 1)[:, None], 0.0)
    palette = np.clip(np.round(palette), 0, 255).astype(np.uint8)
    return _Derived(photos, labels, instances, palette, centres)


def _cache_file(work: int, num_classes: int, names: tuple[str, ...]) -> Path:
    from ..io.weights import synth_home

    skimage = require("skimage", extra="demo", needed_by="the demo photos (synth.data.demo)")

    key = repr(
        (
            _FORMAT,
            work,
            num_classes,
            names,
            SLIC_SEGMENTS,
            SLIC_COMPACTNESS,
            SLIC_SIGMA,
            KMEANS_SEED,
            KMEANS_ITERS,
            skimage.__version__,
        )
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return synth_home() / "cache" / "demo" / f"demo-{work}px-{num_classes}k-{digest}.npz"


def _load_disk(path: Path) -> _Derived | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            return _Derived(*(np.array(z[k]) for k in _Derived.__dataclass_fields__))
    except Exception:  # missing, partial or stale: recompute
        return None


def _save_disk(path: Path, data: _Derived) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **{k: getattr(data, k) for k in _Derived.__dataclass_fields__})
        os.replace(tmp, path)
    except OSError:  # a read-only home is not an error: the memory cache still holds it
        pass


@functools.lru_cache(maxsize=8)
def _derived(work: int, num_classes: int, names: tuple[str, ...], disk: bool) -> _Derived:
    path = _cache_file(work, num_classes, names) if disk else None
    if path is not None:
        hit = _load_disk(path)
        if hit is not None:
            return hit
    data = _derive(work, num_classes, names)
    if path is not None:
        _save_disk(path, data)
    return data


class DemoDataset(SynthDataset):
    """Real photos from the scikit-image wheel with photo-derived label and instance maps.

    Build it with :func:`demo`; see the module docstring for the photos, their licences and
    how labels are derived.

    Attributes:
        names: the photo names, in item order.
        photos: one dict per photo (``"name"``, ``"real"`` ``[3, size, size]``, ``"label_map"``,
            ``"instance_map"``), the whole photo at ``size``, e.g. for sample grids.
        palette: ``uint8 [K, 3]`` mean RGB colour of each class over all photos, so a colourised
            label map looks like a posterised photo (see :meth:`colorize`).
    """

    fields = frozenset({"label_map", "instance_map"})

    def __init__(
        self,
        size: int = 64,
        num_classes: int = 8,
        split: Literal["train", "all"] = "train",
        seed: int = 0,
        flip: bool = True,
        *,
        crops_per_photo: int = 16,
        images: tuple[str, ...] | list[str] | None = None,
        disk_cache: bool = False,
    ) -> None:
        super().__init__(seed)
        if isinstance(size, bool) or not isinstance(size, int) or size < 8:
            raise ValueError(f"demo size = {size!r}: must be an int >= 8")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int):
            raise ValueError(f"demo num_classes = {num_classes!r}: must be an int >= 1")
        if num_classes < 1:
            raise ValueError(f"demo num_classes = {num_classes!r}: must be an int >= 1")
        if split not in ("train", "all"):
            raise ValueError(f"demo split = {split!r}: choose 'train' or 'all'")
        if not isinstance(crops_per_photo, int) or crops_per_photo < 1:
            raise ValueError(f"crops_per_photo = {crops_per_photo!r}: must be an int >= 1")
        known = [im.name for im in DEMO_IMAGES]
        names = tuple(known if images is None else images)
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            raise ValueError(f"demo images {unknown or names!r}: choose among {', '.join(known)}")
        self.size = size
        self.num_classes = num_classes
        self.split = split
        self.flip = bool(flip)
        self.crops_per_photo = crops_per_photo
        self.names = names
        self.work_size = 2 * size
        data = _derived(self.work_size, num_classes, names, bool(disk_cache))
        self._real = torch.from_numpy(data.photos).permute(0, 3, 1, 2).float() / 127.5 - 1
        self._labels = torch.from_numpy(data.labels)
        self._instances = torch.from_numpy(data.instances)
        self.palette = torch.from_numpy(data.palette.copy())
        self.lab_centres = torch.from_numpy(data.centres.copy())

    def __len__(self) -> int:
        n = len(self.names)
        return n * self.crops_per_photo if self.split == "train" else n

    def _view(self, p: int, box: tuple[int, int, int] | None, flip: bool) -> dict[str, Any]:
        real, labels, inst = self._real[p], self._labels[p], self._instances[p]
        if box is not None:
            top, left, side = box
            real = real[:, top : top + side, left : left + side]
            labels = labels[top : top + side, left : left + side]
            inst = inst[top : top + side, left : left + side]
        out = (self.size, self.size)
        real = resize_image(real, out)
        labels, inst = resize_ids(labels, out), resize_ids(inst, out)
        if flip:
            real, labels, inst = real.flip(-1), labels.flip(-1), inst.flip(-1)
        return {
            "real": real.contiguous(),
            "label_map": labels.contiguous(),
            "instance_map": inst.contiguous(),
        }

    def _load(self, index: int, generator: torch.Generator) -> dict[str, Any]:
        n = len(self.names)
        if self.split == "all":
            return self._view(index, None, False)
        work = self.work_size
        side = int(torch.randint(self.size, work + 1, (), generator=generator))
        top = int(torch.randint(0, work - side + 1, (), generator=generator))
        left = int(torch.randint(0, work - side + 1, (), generator=generator))
        flip = self.flip and bool(torch.rand((), generator=generator) < 0.5)
        return self._view(index % n, (top, left, side), flip)

    @property
    def photos(self) -> list[dict[str, Any]]:
        return [{"name": name, **self._view(i, None, False)} for i, name in enumerate(self.names)]

    def colorize(self, label_map: Tensor) -> Tensor:
        """Paint ids with :attr:`palette`: ``[..., H, W]`` → float ``[..., 3, H, W]`` in [-1, 1]."""
        rgb = self.palette.to(label_map.device)[label_map.long()].float() / 127.5 - 1
        return rgb.movedim(-1, -3).contiguous()


def demo(
    size: int = 64,
    num_classes: int = 8,
    split: Literal["train", "all"] = "train",
    seed: int = 0,
    flip: bool = True,
    *,
    crops_per_photo: int = 16,
    images: tuple[str, ...] | list[str] | None = None,
    disk_cache: bool = False,
) -> DemoDataset:
    """The embedded demo set (see :class:`DemoDataset` and the module docstring).

    Args:
        size: item side in pixels (labels are derived at ``2 * size``).
        num_classes: number of colour classes K (k-means clusters shared across photos).
        split: ``"train"`` (random crops, ``crops_per_photo`` per photo) or ``"all"`` (each whole
            photo once, no randomness).
        seed: the augmentation seed.
        flip: random horizontal flips in ``"train"``.
        crops_per_photo: items per photo per epoch in ``"train"``.
        images: a subset of the names in :data:`DEMO_IMAGES` (default: all).
        disk_cache: also keep the derived labels under ``$SYNTH_HOME/cache/demo/``.
    """
    return DemoDataset(
        size,
        num_classes,
        split,
        seed,
        flip,
        crops_per_photo=crops_per_photo,
        images=images,
        disk_cache=disk_cache,
    )
