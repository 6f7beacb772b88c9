"""synth.data.CelebA on a fake tree in the official layout: split selection, the crop, the
outpainting masks, the super-resolution input, determinism, errors naming the files."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import synth
from synth.data import (
    CELEBA_FACE_BOX,
    DATASETS,
    CelebA,
    Outpainting,
    box_mask,
    build_dataset,
    collate,
    load_image,
    low_resolution,
)
from synth.data.celeba import read_partition

#: file -> partition of the fake tree: 3 train, 2 val, 1 test, in a shuffled file order
PARTITION = {
    "000003.jpg": 0,
    "000001.jpg": 0,
    "000002.jpg": 1,
    "000004.jpg": 0,
    "000005.jpg": 2,
    "000006.jpg": 1,
}


def _face(seed: int, h: int = 218, w: int = 178) -> np.ndarray:
    """A smooth 178x218 photo (JPEG keeps it close) with a per-image colour."""
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([yy * 255 // h, xx * 255 // w, np.full_like(yy, 40 * seed)], -1)
    return rgb.clip(0, 255).astype(np.uint8)


def _tree(root: Path, partition: dict[str, int] = PARTITION, h: int = 218, w: int = 178) -> Path:
    """``root/img_align_celeba/*.jpg`` + ``root/list_eval_partition.txt``."""
    folder = root / "img_align_celeba"
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(partition):
        Image.fromarray(_face(i, h, w)).save(folder / name, quality=95)
    lines = [f"{name} {part}" for name, part in partition.items()]
    (root / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return root


def test_split_selection_keeps_the_partition_file_order(tmp_path):
    root = _tree(tmp_path)
    sizes = {s: len(CelebA(root, s)) for s in ("train", "val", "test", "all")}
    assert sizes == {"train": 3, "val": 2, "test": 1, "all": 6}
    train = CelebA(root, "train")
    assert [p.name for p in train.paths] == ["000003.jpg", "000001.jpg", "000004.jpg"]
    assert [p.name for p in CelebA(root, "val").paths] == ["000002.jpg", "000006.jpg"]
    assert read_partition(root / "list_eval_partition.txt")[0] == ("000003.jpg", 0)
    # torchvision's layout: root/celeba/...
    nested = _tree(tmp_path / "tv" / "celeba")
    assert len(CelebA(nested.parent, "test")) == 1
    with pytest.raises(ValueError, match="split = 'valid'.*train, val, test, all"):
        CelebA(root, "valid")


def test_the_crop_is_the_centred_square_resized(tmp_path):
    root = _tree(tmp_path)
    ds = CelebA(root, "all", size=128)
    item = ds[1]
    assert item["real"].shape == (3, 128, 128) and item["index"] == 1
    photo = load_image(ds.paths[1])
    centre = photo[:, 20:198, :]  # (218 - 178) / 2 = 20 rows off the top and the bottom
    expect = F.interpolate(
        centre[None], size=(128, 128), mode="bicubic", align_corners=False, antialias=True
    )[0].clamp(-1, 1)
    torch.testing.assert_close(item["real"], expect)
    small = CelebA(root, "all", size=64, crop=None)[1]["real"]  # the whole photo, squeezed
    assert small.shape == (3, 64, 64)


def test_outpainting_keeps_the_eyes_and_nose_box(tmp_path):
    root = _tree(tmp_path)
    ds = CelebA(root, "train")
    assert ds.fields == {"image", "mask"} and ds.num_classes is None
    item = ds[0]
    top, left, h, w = CELEBA_FACE_BOX
    expect = torch.zeros(1, 128, 128)
    expect[:, top : top + h, left : left + w] = 1
    assert torch.equal(item["mask"], expect)
    assert (top, left, h, w) == (48, 36, 40, 56)
    assert left + w == 128 - left  # symmetric about the face's centre line
    assert torch.equal(item["image"], item["real"] * item["mask"])
    # the box scales with the image side: 64 px -> (24, 18, 20, 28)
    m64 = CelebA(root, "train", size=64)[0]["mask"][0]
    assert m64.sum() == 20 * 28 and m64[24:44, 18:46].all()
    batch = collate([ds[0], ds[1]], None)
    assert batch.cond.mask.shape == (2, 1, 128, 128) and batch.cond.size == (128, 128)
    batch.cond.validate()


def test_random_boxes_are_per_item_and_per_epoch(tmp_path):
    root = _tree(tmp_path)
    ds = CelebA(root, "all", size=64, mask="random", seed=3)
    boxes = set()
    for epoch in range(5):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            m = ds[i]["mask"][0]
            assert m.sum() == 20 * 28  # the face box's size, anywhere
            rows, cols = m.nonzero().unbind(1)
            assert rows.max() - rows.min() == 19 and cols.max() - cols.min() == 27
            boxes.add((int(rows.min()), int(cols.min())))
    assert len(boxes) > 10


def test_super_resolution_input_is_the_bilinear_16px_photo(tmp_path):
    root = _tree(tmp_path)
    ds = CelebA(root, "test", task="super_resolution")
    assert ds.fields == {"image"}
    item = ds[0]
    assert item["real"].shape == (3, 128, 128) and item["image"].shape == (3, 16, 16)
    expect = F.interpolate(
        item["real"][None], size=(16, 16), mode="bilinear", align_corners=False, antialias=True
    )[0].clamp(-1, 1)
    torch.testing.assert_close(item["image"], expect)
    assert "mask" not in item
    batch = collate([item], None)
    assert batch.cond.size == (128, 128) and batch.cond.image.shape == (1, 3, 16, 16)
    x4 = CelebA(root, "test", task="super_resolution", size=64, scale=4)[0]
    assert x4["image"].shape == (3, 16, 16)
    with pytest.raises(ValueError, match="not divisible by scale 8"):
        CelebA(root, task="super_resolution", size=100)
    with pytest.raises(ValueError, match="kernel = 'nearest'"):
        CelebA(root, task="super_resolution", kernel="nearest")


def test_items_are_a_function_of_seed_epoch_index(tmp_path):
    root = _tree(tmp_path)
    kw = {"size": 32, "mask": "random", "flip": True, "seed": 5}
    a, b = CelebA(root, "all", **kw), CelebA(root, "all", **kw)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    x = a[4]
    assert torch.equal(torch.get_rng_state(), state)  # no global draws
    torch.rand(10)
    y = b[4]
    for key in ("real", "image", "mask"):
        assert torch.equal(x[key], y[key])
    c = pickle.loads(pickle.dumps(a))  # as in a DataLoader worker
    assert torch.equal(c[4]["mask"], x["mask"])
    seen = set()
    for epoch in range(6):
        b.set_epoch(epoch)
        seen.add((b[4]["mask"].argmax().item(), bool(torch.equal(b[4]["real"], x["real"]))))
    assert len(seen) > 1  # other epochs: other boxes (and flips)


def test_missing_files_are_named_with_the_fix(tmp_path):
    root = _tree(tmp_path)
    (root / "list_eval_partition.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"list_eval_partition\.txt.*does not exist"):
        CelebA(root)
    root = _tree(tmp_path / "b")
    (root / "img_align_celeba" / "000004.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 image\(s\) of split 'train'.*000004\.jpg"):
        CelebA(root, "train")
    assert len(CelebA(root, "val")) == 2  # other splits still load
    with pytest.raises(FileNotFoundError, match="img_align_celeba.*does not exist"):
        CelebA(tmp_path / "nowhere")
    # an image removed after the listing: the read names it
    ds = CelebA(root, "val")
    ds.paths[0].unlink()
    with pytest.raises(FileNotFoundError, match="000002.jpg"):
        ds[0]


def test_bad_partition_lines_and_small_images(tmp_path):
    root = _tree(tmp_path)
    (root / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg train\n")
    with pytest.raises(ValueError, match=r"line 2 .*'000002.jpg train'.*<0\|1\|2>"):
        CelebA(root)
    small = _tree(tmp_path / "small", h=120, w=100)
    with pytest.raises(ValueError, match=r"000003\.jpg.*100x120, smaller than crop 178"):
        CelebA(small, "train")[0]
    assert CelebA(small, "train", crop=100)[0]["real"].shape == (3, 128, 128)


def test_built_from_a_config_spec(tmp_path):
    root = _tree(tmp_path)
    assert DATASETS["celeba"] is CelebA
    ds = build_dataset({"type": "celeba", "root": str(root), "split": "val", "size": 64})
    assert len(ds) == 2 and ds[0]["mask"].shape == (1, 64, 64)
    with pytest.raises(synth.ConfigError, match="'tsk'.*'task'"):
        build_dataset({"type": "celeba", "root": str(root), "tsk": "outpainting"})


def test_box_mask_is_outpaintings_mask():
    """The shared helper gives Outpainting's masks (centred and random) and fixed boxes."""
    centre = box_mask((16, 16), (8, 8))
    assert centre[0, 4:12, 4:12].all() and centre.sum() == 64
    fixed = box_mask((16, 20), (3, 5), at=(2, 15))
    assert fixed[0, 2:5, 15:20].all() and fixed.sum() == 15
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    ds = Outpainting.__new__(Outpainting)
    ds.mask, ds.keep = "random", 0.25
    assert torch.equal(ds.make_mask((16, 16), g1), box_mask((16, 16), (4, 4), generator=g2))
    with pytest.raises(ValueError, match="leaves the 16x20 image"):
        box_mask((16, 20), (3, 5), at=(2, 16))
    with pytest.raises(ValueError, match="does not fit"):
        box_mask((4, 4), (5, 1))
    x = torch.rand(3, 32, 24) * 2 - 1
    assert low_resolution(x, 4, "area").shape == (3, 8, 6)
