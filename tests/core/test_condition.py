"""Condition validation (every error path names field, bad value and fix) and synth.nn.ops."""

import pytest
import torch
import torch.nn.functional as F

import synth
from synth import Condition
from synth.nn import ops


def labels(b=2, h=8, w=8, k=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, k, (b, h, w), generator=g)


# ----------------------------------------------------------------------------- valid inputs


def test_size_is_inferred_and_fields_listed():
    c = Condition(label_map=labels(), num_classes=5)
    assert c.size == (8, 8)
    assert c.fields() == {"label_map"}
    assert c.batch_size == 2
    assert c.one_hot().shape == (2, 5, 8, 8)
    assert c.one_hot((4, 4)).shape == (2, 5, 4, 4)


def test_int32_label_map_becomes_long():
    c = Condition(label_map=labels().int(), num_classes=5)
    assert c.label_map.dtype == torch.long


def test_to_map_index_and_repeat_do_not_revalidate():
    c = Condition(label_map=labels(), num_classes=5, image=torch.zeros(2, 3, 4, 4))
    c2 = c.repeat_interleave(3)
    assert c2.batch_size == 6
    assert torch.equal(c2.label_map[0], c2.label_map[2])
    assert c[1].batch_size == 1
    assert c.to(dtype=torch.bfloat16).image.dtype == torch.bfloat16
    assert c.to(dtype=torch.bfloat16).label_map.dtype == torch.long


# ----------------------------------------------------------------------------- error paths


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "no tensor fields"),
        (dict(label_map=torch.full((1, 4, 4), 7), num_classes=5), "ids [7] outside [0, 5)"),
        (dict(label_map=torch.full((1, 4, 4), -1), num_classes=5), "outside [0, 5)"),
        (dict(label_map=torch.zeros(1, 4, 4)), "dtype torch.float32"),
        (dict(label_map=torch.zeros(1, 1, 4, 4, dtype=torch.long), num_classes=3), "squeeze(1)"),
        (dict(label_map=torch.zeros(4, 4, dtype=torch.long), num_classes=3), "expected [B, H, W]"),
        (dict(label_map=torch.zeros(1, 4, 4, dtype=torch.long)), "without num_classes"),
        (dict(label_map=torch.zeros(1, 4, 4, dtype=torch.long), num_classes=0), "positive int"),
        (dict(instance_map=torch.zeros(1, 4, 4)), "Condition.instance_map has dtype"),
        (dict(class_id=torch.tensor([0.5])), "Condition.class_id has dtype"),
        (dict(class_id=torch.tensor([3]), num_classes=3), "class_id has ids [3]"),
        (dict(image=torch.full((1, 3, 4, 4), 2.0)), "[-1, 1]; map [0, 1] images with x * 2 - 1"),
        (dict(image=torch.tensor(float("nan")).expand(1, 3, 4, 4)), "NaN/Inf"),
        (dict(image=torch.zeros(3, 4, 4)), "expected [B, C, H, W]"),
        (dict(image=torch.zeros(1, 3, 4, 4, dtype=torch.long)), "expected a float tensor"),
        (
            dict(mask=torch.full((1, 1, 4, 4), 1.5)),
            "mask has values in [1.5, 1.5]: a mask is in [0, 1]",
        ),
        (dict(mask=torch.ones(1, 2, 4, 4)), "expected [B, 1, H, W]"),
        (
            dict(class_weights=torch.full((1, 3, 4, 4), 0.5), num_classes=3),
            "do not sum to 1 over classes",
        ),
        (
            dict(class_weights=torch.full((1, 2, 4, 4), 0.5), num_classes=3),
            "2 channels but num_classes = 3",
        ),
        (
            dict(class_weights=torch.tensor([1.5, -0.5]).view(1, 2, 1, 1), num_classes=2),
            "negative values",
        ),
        (dict(class_weights=torch.full((1, 2, 4, 4), 0.5)), "without num_classes"),
        (
            dict(
                label_map=torch.zeros(2, 4, 4, dtype=torch.long),
                num_classes=2,
                image=torch.zeros(3, 3, 4, 4),
            ),
            "disagree on the batch size",
        ),
        (
            dict(label_map=torch.zeros(1, 4, 4, dtype=torch.long), num_classes=2, size=(8, 8)),
            "is (4, 4) but size is (8, 8)",
        ),
        (dict(image=torch.zeros(1, 3, 4, 4), size=(0, 4)), "two positive ints"),
        (dict(image=torch.zeros(3, 3, 4, 4), repeats=2), "repeats = 2 does not divide the batch"),
        (dict(image=torch.zeros(2, 3, 4, 4), repeats=0), "repeats = 0: must be a positive int"),
    ],
)
def test_validation_errors_name_field_and_fix(kwargs, expected):
    with pytest.raises(ValueError) as err:
        Condition(**kwargs)
    assert expected in str(err.value)


def test_validation_is_skippable_for_trusted_data():
    Condition(label_map=torch.full((1, 4, 4), 9), num_classes=2, check=False)


# ----------------------------------------------------------------------------- ops


def test_one_hot_matches_functional():
    lab = labels(k=6)
    ref = F.one_hot(lab, 6).permute(0, 3, 1, 2).float()
    assert torch.equal(ops.one_hot(lab, 6), ref)


@pytest.mark.parametrize("size", [(4, 4), (16, 16), (5, 11), (8, 8)])
def test_resize_labels_matches_nearest_interpolate_and_keeps_ids(size):
    lab = labels(h=8, w=8, k=200) * 1000  # large ids that float16 would corrupt
    ref = F.interpolate(lab[:, None].double(), size=size, mode="nearest")[:, 0].long()
    out = ops.resize_labels(lab, size)
    assert out.dtype == torch.long
    assert torch.equal(out, ref)
    assert set(out.unique().tolist()) <= set(lab.unique().tolist())


def test_instance_edges_by_hand():
    inst = torch.tensor([[[1, 1, 2], [1, 1, 2], [3, 3, 3]]])
    # independent computation: loop over pixels and their 4-neighbours
    h, w = inst.shape[1:]
    ref = torch.zeros(1, 1, h, w)
    for i in range(h):
        for j in range(w):
            for di, dj in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                y, x = i + di, j + dj
                if 0 <= y < h and 0 <= x < w and inst[0, y, x] != inst[0, i, j]:
                    ref[0, 0, i, j] = 1
    assert torch.equal(ops.instance_edges(inst), ref)
    assert torch.equal(ops.instance_edges(inst[:, None]), ref)


def test_slerp_endpoints_norm_and_parallel_fallback():
    torch.manual_seed(0)
    a, b = torch.randn(3, 8), torch.randn(3, 8)
    assert torch.allclose(synth.nn.ops.slerp(a, b, 0.0), a, atol=1e-5)
    assert torch.allclose(synth.nn.ops.slerp(a, b, 1.0), b, atol=1e-5)
    # unit vectors stay on the sphere
    an, bn = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    mid = synth.nn.ops.slerp(an, bn, 0.5)
    assert torch.allclose(mid.norm(dim=-1), torch.ones(3), atol=1e-5)
    # parallel inputs fall back to lerp instead of dividing by zero
    out = synth.nn.ops.slerp(a, 2 * a, 0.5)
    assert torch.isfinite(out).all() and torch.allclose(out, 1.5 * a, atol=1e-4)


def test_context_caches_resizes_once_per_size():
    c = Condition(label_map=labels(h=16, w=16), num_classes=5)
    ctx = synth.Context(c)
    a = ctx.one_hot((8, 8))
    b = ctx.at(3).one_hot((8, 8))
    assert a is b  # same cached tensor across stages
    assert ctx.labels((4, 4)).shape == (2, 4, 4)
    with pytest.raises(ValueError, match="Condition.instance_map"):
        ctx.instance_edges((4, 4))


# ----------------------------------------------------------------------------- repeated rows


def test_repeats_mark_copies_and_survive_only_what_keeps_the_groups():
    c = Condition(label_map=labels(b=3), num_classes=5)
    assert c.repeats == 1
    r = c.repeat_interleave(2)
    assert r.repeats == 2 and r.batch_size == 6
    assert r.repeat_interleave(3).repeats == 6  # (b 2 3): groups of six copies
    assert r.to("cpu").repeats == 2
    assert r[2:6].repeats == 2 and r[0:2].repeats == 2  # slices on group boundaries
    assert r[1:5].repeats == 1 and r[0:3].repeats == 1 and r[::2].repeats == 1
    assert r[0].repeats == 1 and r[torch.tensor([0, 1])].repeats == 1
    assert r.map(lambda t: t.flip(0)).repeats == 1  # any other change: rows distinct again
    assert torch.equal(r.distinct().label_map, c.label_map) and r.distinct().repeats == 1
    assert c.distinct() is c


def test_context_distinct_is_one_row_per_group_without_latents():
    c = Condition(label_map=labels(b=2, h=16, w=16), num_classes=5).repeat_interleave(3)
    ctx = synth.Context(c, synth.Latents(z=torch.randn(6, 4)), stage=2)
    d = ctx.distinct()
    assert d.stage == 2 and d.latents.z is None
    assert torch.equal(d.labels((8, 8)), ctx.labels((8, 8))[::3])
    assert ctx.at(1).distinct().labels((8, 8)) is d.labels((8, 8))  # one cache per forward
    plain = synth.Context(Condition(label_map=labels(), num_classes=5))
    assert plain.distinct() is plain
