"""synth.data: the data sets on tiny fake trees in their real layouts, transforms, batching."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import synth
from synth.data import (
    ADE20K,
    DATASETS,
    DEMO_IMAGES,
    Batch,
    Cityscapes,
    Outpainting,
    PairedFolder,
    PairedTransform,
    SuperResolution,
    build_dataset,
    collate,
    demo,
    item_seed,
    load_image,
    load_label_map,
    make_collate,
)
from synth.data.cityscapes import train_id_table

# --------------------------------------------------------------------------- fake files


def _rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _save(path: Path, arr: np.ndarray, mode=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(arr) if mode is None else Image.fromarray(arr, mode)
    img.save(path)
    return path


def _blocks(h, w, ids, seed=0):
    """A label map of rectangles with the given ids (each id appears)."""
    rng = np.random.default_rng(seed)
    lab = np.full((h, w), ids[0], dtype=np.int64)
    for k in ids[1:]:
        y, x = rng.integers(0, h - 4), rng.integers(0, w - 4)
        lab[y : y + rng.integers(3, h // 2 + 4), x : x + rng.integers(3, w // 2 + 4)] = k
    return lab


def _paired_tree(tmp_path, n=3, h=24, w=32, num_classes=5, ext="jpg"):
    for i in range(n):
        _save(tmp_path / "img" / f"{i:04d}.{ext}", _rgb(h, w, i))
        lab = _blocks(h, w, list(range(num_classes)), seed=i)
        _save(tmp_path / "lab" / f"{i:04d}.png", lab.astype(np.uint8))
        inst = (lab * 1000 + 7).astype(np.uint16)
        _save(tmp_path / "inst" / f"{i:04d}.png", inst)
    return tmp_path / "img", tmp_path / "lab", tmp_path / "inst"


def _cityscapes_tree(root: Path, split="train", h=16, w=32):
    city = "aachen"
    for k, frame in enumerate(["000000_000019", "000001_000019"]):
        prefix = f"{city}_{frame}"
        _save(root / "leftImg8bit" / split / city / f"{prefix}_leftImg8bit.png", _rgb(h, w, k))
        ids = _blocks(h, w, [7, 11, 23, 26, 0, 33], seed=k)
        _save(root / "gtFine" / split / city / f"{prefix}_gtFine_labelIds.png", ids.astype("u1"))
        inst = np.where(ids == 26, 26001 + (np.arange(w)[None] > w // 2), ids).astype(np.uint16)
        _save(root / "gtFine" / split / city / f"{prefix}_gtFine_instanceIds.png", inst)
    return root


def _ade_tree(root: Path, h=20, w=24):
    base = root / "ADEChallengeData2016"
    for i in (1, 2):
        _save(base / "images" / "training" / f"ADE_train_{i:08d}.jpg", _rgb(h, w, i))
        lab = _blocks(h, w, [0, 1, 150, 42], seed=i).astype(np.uint8)
        _save(base / "annotations" / "training" / f"ADE_train_{i:08d}.png", lab)
    return root


def _check_item(item, fields, size=None):
    real = item["real"]
    assert real.dtype == torch.float32 and real.dim() == 3 and real.shape[0] == 3
    assert float(real.min()) >= -1 and float(real.max()) <= 1
    assert isinstance(item["index"], int)
    assert set(item) == {"real", "index", *fields}
    for k in ("label_map", "instance_map"):
        if k in item:
            assert item[k].dtype == torch.long and item[k].shape == real.shape[1:]
    if size is not None:
        assert tuple(real.shape[1:]) == size


# --------------------------------------------------------------------------- loading


def test_load_image_modes(tmp_path):
    rgb = _rgb(5, 6)
    x = load_image(_save(tmp_path / "a.png", rgb))
    assert x.shape == (3, 5, 6) and x.dtype == torch.float32
    assert torch.allclose(x, torch.from_numpy(rgb).permute(2, 0, 1).float() / 127.5 - 1)
    gray = load_image(_save(tmp_path / "g.png", rgb[..., 0]))
    assert gray.shape == (3, 5, 6) and torch.equal(gray[0], gray[2])
    rgba = np.concatenate([rgb, np.full((5, 6, 1), 7, np.uint8)], -1)
    assert torch.allclose(load_image(_save(tmp_path / "a4.png", rgba)), x)
    pal = Image.fromarray(rgb).convert("P")
    pal.save(tmp_path / "p.png")
    assert load_image(tmp_path / "p.png").shape == (3, 5, 6)
    g16 = load_image(_save(tmp_path / "g16.png", np.full((4, 4), 65535, np.uint16)))
    assert torch.allclose(g16, torch.ones(3, 4, 4))
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.png"):
        load_image(tmp_path / "bad.png")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_image(tmp_path / "missing.png")


def test_load_label_map_modes_and_errors(tmp_path):
    lab = np.array([[0, 1], [2, 3]], np.uint8)
    assert load_label_map(_save(tmp_path / "l.png", lab)).tolist() == lab.tolist()
    pal = Image.fromarray(lab, "P")
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
    pal.save(tmp_path / "p.png")
    assert load_label_map(tmp_path / "p.png").tolist() == lab.tolist()  # palette index
    inst = np.array([[26001, 26002], [7, 24000]], np.uint16)
    got = load_label_map(_save(tmp_path / "i.png", inst))
    assert got.dtype == torch.long and got.tolist() == inst.astype(np.int64).tolist()

    rgb = _save(tmp_path / "colour_labels.png", _rgb(4, 4))
    with pytest.raises(ValueError, match=r"colour_labels\.png.*Convert its colours to ids"):
        load_label_map(rgb)

    bad = _save(tmp_path / "too_big.png", np.array([[0, 9], [12, 255]], np.uint8))
    with pytest.raises(ValueError) as e:
        load_label_map(bad, num_classes=8)
    msg = str(e.value)
    assert "too_big.png" in msg and "9, 12, 255" in msg and "num_classes" in msg
    assert "ignore_index" in msg  # the fix is named
    # ignore_index maps to the last class; the offset is applied first
    ok = load_label_map(_save(tmp_path / "ig.png", np.array([[1, 255]], np.uint8)), 4, 255)
    assert ok.tolist() == [[1, 3]]
    shifted = load_label_map(tmp_path / "l.png", 4, ignore_index=-1, label_offset=-1)
    assert shifted.tolist() == [[3, 0], [1, 2]]


# --------------------------------------------------------------------------- transforms


def test_transform_never_invents_ids():
    g = torch.Generator().manual_seed(0)
    ids = torch.tensor([0, 3, 77, 1000, 26001, 65535, 123456789])
    labels = ids[torch.randint(0, len(ids), (37, 53), generator=g)]
    t = PairedTransform(size=(29, 41), crop=(17, 23), flip=True)
    for seed in range(10):
        out = t(
            {"label_map": labels, "instance_map": labels * 3}, torch.Generator().manual_seed(seed)
        )
        assert out["label_map"].shape == (17, 23) and out["label_map"].dtype == torch.long
        assert set(out["label_map"].unique().tolist()) <= set(labels.unique().tolist())
        assert set(out["instance_map"].unique().tolist()) <= set((labels * 3).unique().tolist())
    up = PairedTransform(size=80, resize_mode="short_side")({"label_map": labels})
    assert up["label_map"].shape == (80, 115)
    assert set(up["label_map"].unique().tolist()) <= set(labels.unique().tolist())


def test_transform_keeps_image_and_labels_aligned():
    # each class is painted with its own flat colour: after resize/crop/flip, away from class
    # borders, the pixel colour must still name the pixel's class
    colours = torch.tensor([[-1.0, -1.0, -1.0], [1.0, -1.0, -1.0], [-1.0, 1.0, -1.0], [1, 1, 1]])
    labels = torch.zeros(48, 64, dtype=torch.long)
    labels[:, 20:40] = 1
    labels[10:30, 45:] = 2
    labels[35:, :15] = 3
    image = colours[labels].permute(2, 0, 1).contiguous()
    t = PairedTransform(size=(36, 48), crop=(24, 32), flip=True)
    flips = set()
    for seed in range(12):
        g = torch.Generator().manual_seed(seed)
        params = t.params((48, 64), g)
        flips.add(params.flip)
        out = t.apply({"real": image, "label_map": labels}, params)
        lab, img = out["label_map"], out["real"]
        interior = torch.ones_like(lab, dtype=torch.bool)
        edges = synth.nn.ops.instance_edges(lab[None])[0, 0].bool()
        edges[[0, -1], :] = edges[:, [0, -1]] = True  # a class border may lie just outside
        interior &= ~torch.nn.functional.max_pool2d(edges[None, None].float(), 5, 1, 2)[0, 0].bool()
        pred = torch.cdist(img.permute(1, 2, 0).reshape(-1, 3), colours).argmin(1)
        pred = pred.reshape(lab.shape)
        assert interior.sum() > 50
        assert torch.equal(pred[interior], lab[interior]), seed
    assert flips == {True, False}


def test_transform_errors():
    with pytest.raises(ValueError, match="crop 40x40 is larger"):
        PairedTransform(crop=40)({"real": torch.zeros(3, 20, 20)}, torch.Generator())
    with pytest.raises(ValueError, match="different sizes"):
        PairedTransform()({"real": torch.zeros(3, 8, 8), "label_map": torch.zeros(8, 9).long()})
    with pytest.raises(ValueError, match="resize_mode"):
        PairedTransform(size=8, resize_mode="fit")


def test_item_seed_is_a_hash():
    seeds = {item_seed(0, e, i) for e in range(20) for i in range(20_100)}
    assert len(seeds) == 20 * 20_100  # no collisions, unlike seed·a + epoch·b + index
    assert all(0 <= s < 2**63 for s in list(seeds)[:100])
    assert item_seed(1, 0, 0) != item_seed(0, 0, 0)


# --------------------------------------------------------------------------- data sets


def test_paired_folder(tmp_path):
    img, lab, inst = _paired_tree(tmp_path)
    ds = PairedFolder(img, lab, inst, num_classes=5, size=20, crop=16, flip=True, seed=3)
    assert len(ds) == 3 and ds.num_classes == 5
    assert ds.fields == {"label_map", "instance_map"}
    item = ds[1]
    _check_item(item, ds.fields, (16, 16))
    assert item["index"] == 1 and ds[-1]["index"] == 2
    # the instance map is class * 1000 + 7 everywhere: still true after the transform
    assert torch.equal(item["instance_map"], item["label_map"] * 1000 + 7)
    no_inst = PairedFolder(img, lab, num_classes=5)
    assert no_inst.fields == {"label_map"}
    _check_item(no_inst[0], no_inst.fields, (24, 32))
    # label ids are validated against num_classes when read, naming the file
    with pytest.raises(ValueError, match=r"0000\.png.*\[3, 4\]"):
        PairedFolder(img, lab, num_classes=3)[0]


def test_paired_folder_unmatched_and_empty(tmp_path):
    img, lab, _ = _paired_tree(tmp_path, n=3)
    for i in range(12):
        _save(img / f"extra_{i:02d}.png", _rgb(4, 4))
    _save(lab / "orphan.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError) as e:
        PairedFolder(img, lab, num_classes=5)
    msg = str(e.value)
    assert "12 images without labels" in msg and "extra_00" in msg and "extra_09" in msg
    assert "extra_11" not in msg and "2 more" in msg
    assert "1 labels without images: orphan" in msg
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        PairedFolder(img, tmp_path / "empty", num_classes=5)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        PairedFolder(tmp_path / "nowhere", lab, num_classes=5)


def test_super_resolution(tmp_path):
    yy, xx = np.mgrid[0:30, 0:42]
    for i in range(2):
        smooth = np.stack([yy * 8, xx * 6, (yy + xx) * 3 + 40 * i], -1).clip(0, 255)
        _save(tmp_path / "hr" / f"{i}.png", smooth.astype(np.uint8))
    ds = SuperResolution(tmp_path / "hr", scale=4, size=16, flip=True)
    assert ds.fields == {"image"} and ds.num_classes is None
    item = ds[0]
    _check_item(item, ds.fields, (16, 16))
    assert item["image"].shape == (3, 4, 4)
    assert torch.allclose(
        item["image"], item["real"].reshape(3, 4, 4, 4, 4).mean((2, 4)), atol=0.05
    )
    area = SuperResolution(tmp_path / "hr", scale=4, size=16, kernel="area")[1]
    assert torch.allclose(
        area["image"], torch.nn.functional.avg_pool2d(area["real"][None], 4)[0], atol=1e-5
    )
    full = SuperResolution(tmp_path / "hr", scale=4)[0]  # cropped to multiples of the scale
    assert full["real"].shape == (3, 28, 40) and full["image"].shape == (3, 7, 10)
    with pytest.raises(ValueError, match="not divisible by scale 4"):
        SuperResolution(tmp_path / "hr", scale=4, size=18)
    batch = collate([ds[0], ds[1]], ds.num_classes)
    assert batch.cond.size == (16, 16) and batch.cond.image.shape == (2, 3, 4, 4)


def test_outpainting(tmp_path):
    for i in range(3):
        _save(tmp_path / "p" / f"{i}.jpg", _rgb(20, 20, i))
    ds = Outpainting(tmp_path / "p", mask="center", size=16, keep=0.5)
    assert ds.fields == {"image", "mask"}
    item = ds[0]
    _check_item(item, ds.fields, (16, 16))
    m = item["mask"]
    assert m.shape == (1, 16, 16) and m.sum() == 64 and m[0, 4:12, 4:12].all()
    assert torch.equal(item["image"], item["real"] * m)
    assert (item["image"][:, m[0] == 0] == 0).all()
    rnd = Outpainting(tmp_path / "p", mask="random", size=16, keep=0.25, seed=1)
    boxes = set()
    for e in range(6):
        rnd.set_epoch(e)
        mm = rnd[0]["mask"][0]
        assert mm.sum() == 16
        boxes.add(tuple(mm.nonzero()[0].tolist()))
    assert len(boxes) > 1
    collate([ds[0], ds[1]], None).cond.validate()


def test_cityscapes(tmp_path):
    root = _cityscapes_tree(tmp_path / "cs")
    ds = Cityscapes(root, size=(8, 16), flip=True)
    assert len(ds) == 2 and ds.num_classes == 35
    assert ds.fields == {"label_map", "instance_map"}
    item = ds[0]
    _check_item(item, ds.fields, (8, 16))
    assert set(item["label_map"].unique().tolist()) <= {0, 7, 11, 23, 26, 33}
    cars = item["label_map"] == 26
    assert set(item["instance_map"][cars].unique().tolist()) <= {26001, 26002}
    stuff = ~cars
    assert torch.equal(item["instance_map"][stuff], item["label_map"][stuff])

    t = Cityscapes(root, label_mode="train_ids", use_instances=False)
    assert t.num_classes == 20 and t.fields == {"label_map"}
    raw = load_label_map(root / "gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png")
    expect = raw.clone()
    for src, dst in {7: 0, 11: 2, 23: 10, 26: 13, 33: 18, 0: 19}.items():
        expect[raw == src] = dst
    assert torch.equal(t[0]["label_map"], expect)
    table = train_id_table()
    assert table.max() == 19 and (table[:34] < 19).sum() == 19
    collate([ds[0], ds[1]], ds.num_classes)

    (root / "gtFine/train/aachen/aachen_000001_000019_gtFine_labelIds.png").unlink()
    with pytest.raises(FileNotFoundError, match="aachen_000001_000019_leftImg8bit.png"):
        Cityscapes(root)
    with pytest.raises(FileNotFoundError, match="leftImg8bit"):
        Cityscapes(tmp_path / "nothing")


def test_ade20k(tmp_path):
    root = _ade_tree(tmp_path)
    ds = ADE20K(root, size=16, crop=12, flip=True)
    assert len(ds) == 2 and ds.num_classes == 151 and ds.fields == {"label_map"}
    item = ds[1]
    _check_item(item, ds.fields, (12, 12))
    assert set(item["label_map"].unique().tolist()) <= {0, 1, 42, 150}
    whole = ADE20K(root / "ADEChallengeData2016")[0]  # root may be the folder itself
    assert set(whole["label_map"].unique().tolist()) == {0, 1, 42, 150}
    with pytest.raises(ValueError, match="training"):
        ADE20K(root, split="train")


# --------------------------------------------------------------------------- determinism


def test_determinism_and_global_rng_untouched(tmp_path):
    img, lab, inst = _paired_tree(tmp_path, h=40, w=40)
    kw = {"num_classes": 5, "crop": 16, "flip": True, "seed": 7}
    a, b = PairedFolder(img, lab, inst, **kw), PairedFolder(img, lab, inst, **kw)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    x = a[2]
    assert torch.equal(torch.get_rng_state(), state)  # __getitem__ never draws globally
    torch.rand(100)  # moving the global RNG changes nothing
    y = b[2]
    for k in ("real", "label_map", "instance_map"):
        assert torch.equal(x[k], y[k])
    b.set_epoch(1)
    z = b[2]
    b.set_epoch(0)
    assert torch.equal(b[2]["real"], x["real"])
    assert not torch.equal(z["real"], x["real"])  # another epoch, another crop
    other_seed = PairedFolder(img, lab, inst, **{**kw, "seed": 8})
    assert not torch.equal(other_seed[2]["real"], x["real"])
    # a pickled copy (as in a DataLoader worker) gives the same item
    c = pickle.loads(pickle.dumps(a))
    assert torch.equal(c[2]["real"], x["real"])
    with pytest.raises(IndexError):
        a[3]


def test_demo_determinism_across_loader_workers():
    ds = demo(size=32, num_classes=6)
    ds.set_epoch(2)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=4, collate_fn=make_collate(ds), num_workers=2
    )
    batches = list(loader)
    direct = collate([ds[i] for i in range(4)], ds.num_classes)
    assert torch.equal(batches[0].real, direct.real)
    assert torch.equal(batches[0].cond.label_map, direct.cond.label_map)
    ds.set_epoch(3)
    assert not torch.equal(collate([ds[i] for i in range(4)], 6).real, direct.real)


# --------------------------------------------------------------------------- batching


def test_collate_builds_a_valid_condition(tmp_path):
    img, lab, inst = _paired_tree(tmp_path)
    ds = PairedFolder(img, lab, inst, num_classes=5, size=16)
    fn = make_collate(ds)
    fn = pickle.loads(pickle.dumps(fn))  # picklable for workers
    batch = fn([ds[0], ds[2]])
    assert isinstance(batch, Batch) and len(batch) == 2
    assert batch.index.tolist() == [0, 2] and batch.index.dtype == torch.long
    assert batch.real.shape == (2, 3, 16, 16)
    c = batch.cond
    assert isinstance(c, synth.Condition) and c.num_classes == 5 and c.size == (16, 16)
    assert c.fields() == {"label_map", "instance_map"}
    moved = batch.to("cpu", non_blocking=True)
    assert torch.equal(moved.cond.label_map, c.label_map)
    # validation happens in Condition: an id >= num_classes is reported there
    with pytest.raises(ValueError, match="label_map"):
        collate([ds[0]], 3)
    odd = {**ds[1], "real": torch.zeros(3, 8, 8)}
    with pytest.raises(ValueError, match="different shapes"):
        collate([ds[0], odd], 5)
    cls = collate([{"real": torch.zeros(3, 4, 4), "class_id": torch.tensor(2), "index": 0}], 3)
    assert cls.cond.class_id.tolist() == [2]


# --------------------------------------------------------------------------- demo


def test_demo_set_offline():
    ds = demo(size=32, num_classes=8)
    assert len(ds) == 16 * len(DEMO_IMAGES) and ds.num_classes == 8
    assert ds.fields == {"label_map", "instance_map"}
    assert ds.palette.shape == (8, 3) and ds.palette.dtype == torch.uint8
    for im in DEMO_IMAGES:
        assert im.licence and im.source and im.file
    item = ds[5]
    _check_item(item, ds.fields, (32, 32))
    everything = demo(size=32, num_classes=8, split="all")
    assert len(everything) == len(DEMO_IMAGES)
    photos = everything.photos
    assert [p["name"] for p in photos] == [im.name for im in DEMO_IMAGES]
    labels = torch.stack([p["label_map"] for p in photos])
    real = torch.stack([p["real"] for p in photos])
    counts = torch.bincount(labels.flatten(), minlength=8)
    assert (counts > 0).sum() >= 7  # most classes used
    # labels follow photo colour: a pixel is closer to its class's mean colour than to others'
    rgb = real.permute(0, 2, 3, 1).reshape(-1, 3)
    flat = labels.flatten()
    means = torch.stack([rgb[flat == k].mean(0) for k in range(8) if counts[k] > 0])
    used = [k for k in range(8) if counts[k] > 0]
    d = torch.cdist(rgb, means)
    own = d[torch.arange(len(flat)), torch.tensor([used.index(int(k)) for k in flat])]
    others = (d.sum(1) - own) / (len(used) - 1)
    assert own.mean() < 0.6 * others.mean()
    assert (own <= d.min(1).values + 0.3).float().mean() > 0.8
    # the palette is the mean colour of each class
    pal = ds.palette.float() / 127.5 - 1
    assert (pal[used] - means).abs().max() < 0.15
    # instances: every instance lies in one class; ids unique per photo
    for p in photos:
        inst, lab = p["instance_map"], p["label_map"]
        pairs = torch.unique(torch.stack([inst.flatten(), lab.flatten()]), dim=1)
        assert pairs.shape[1] == len(torch.unique(inst))
    col = ds.colorize(item["label_map"])
    assert col.shape == (3, 32, 32)


def test_demo_cached_and_seeded(monkeypatch, tmp_path):
    a = demo(size=16, num_classes=4, disk_cache=True)
    files = list((tmp_path / "synth_home" / "cache" / "demo").glob("*.npz"))
    assert len(files) == 1
    b = demo(size=16, num_classes=4, seed=1)
    assert torch.equal(a._labels, b._labels)  # labels do not depend on the seed
    assert not torch.equal(a[0]["real"], b[0]["real"])  # augmentation does
    with pytest.raises(ValueError, match="split"):
        demo(split="val")


# --------------------------------------------------------------------------- build


def test_build_dataset(tmp_path):
    ds = build_dataset({"type": "demo", "size": 16, "num_classes": 4})
    assert ds.num_classes == 4 and set(DATASETS) >= {"demo", "cityscapes", "paired_folder"}
    with pytest.raises(synth.ConfigError, match=r"'demos'.*did you mean 'demo'"):
        build_dataset({"type": "demos"})
    with pytest.raises(synth.ConfigError, match=r"'sise'.*'size'.*accepts: size, num_classes"):
        build_dataset({"type": "demo", "sise": 16})
    with pytest.raises(
        synth.ConfigError, match="needs argument.*'images', 'labels', 'num_classes'"
    ):
        build_dataset({"type": "paired_folder"})
    with pytest.raises(synth.ConfigError, match="no 'type'"):
        build_dataset({"size": 3})
    img, lab, _ = _paired_tree(tmp_path)
    pf = build_dataset(
        {"type": "paired_folder", "images": str(img), "labels": str(lab), "num_classes": 5}
    )
    assert len(pf) == 3
