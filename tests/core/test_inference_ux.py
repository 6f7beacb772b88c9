"""Inference as a new user meets it (issue 17, items 4 and 5): a loaded model in eval mode,
sampling without autograd, outputs as PIL images and files, a Condition that prints shapes
and points at the fix for the usual layout mistakes, ``list_parts`` with the pattern first."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import synth
from synth.outputs import SynthesisOutput

SPEC = {
    "generator": {"type": "core.simple_generator", "num_classes": 4, "z_dim": 8, "ngf": 8},
    "injector": {"type": "core.gaussian"},
}


def _cond(b: int = 2, size: int = 16) -> synth.Condition:
    labels = torch.randint(0, 4, (b, size, size), generator=torch.Generator().manual_seed(0))
    return synth.Condition(label_map=labels, num_classes=4)


# ------------------------------------------------------------------ load, no_grad
def test_load_returns_an_eval_mode_model(tmp_path):
    model = synth.compose(SPEC)
    assert model.training  # composed for training
    loaded = synth.load(model.save_pretrained(tmp_path / "m"))
    assert not loaded.training
    assert not any(m.training for m in loaded.modules())


def test_generate_and_sample_keep_no_graph_unless_asked():
    model = synth.compose(SPEC)
    cond = _cond()
    assert not model.generate(cond).image.requires_grad
    assert not model.sample(cond, 2).image.requires_grad
    out = model.generate(cond, grad=True)
    assert out.image.requires_grad
    out.image.mean().backward()  # the graph reaches the generator's weights
    assert any(p.grad is not None for p in model.generator.parameters())
    assert model.sample(cond, 2, grad=True).image.requires_grad
    with torch.no_grad():  # grad=True never turns autograd on inside the caller's no_grad
        assert not model.generate(cond, grad=True).image.requires_grad
    # the same images either way
    g = torch.Generator
    a = model.generate(cond, generator=g().manual_seed(3)).image
    b = model.generate(cond, generator=g().manual_seed(3), grad=True).image
    assert torch.equal(a, b.detach())


# ------------------------------------------------------------------ outputs as images
def test_to_pil_maps_the_range_to_bytes():
    image = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0, 2.0]).reshape(1, 1, 2, 3).repeat(2, 3, 1, 1)
    pils = SynthesisOutput(image=image).to_pil()
    assert len(pils) == 2 and all(p.mode == "RGB" and p.size == (3, 2) for p in pils)
    # independent: (x + 1) / 2 · 255 rounded, clamped to [0, 255]
    expected = np.clip(np.rint((np.array([-1, -0.5, 0, 0.5, 1, 2]) + 1) * 127.5), 0, 255)
    assert np.asarray(pils[0])[..., 0].flatten().tolist() == expected.tolist()
    grey = SynthesisOutput(image=torch.zeros(1, 1, 4, 4)).to_pil()[0]
    assert grey.mode == "L" and np.asarray(grey).tolist() == [[128] * 4] * 4


def test_save_writes_a_grid_or_numbered_files(tmp_path):
    model = synth.compose(SPEC)
    out = model.sample(_cond(2), 3, generator=torch.Generator().manual_seed(0))
    (grid,) = out.save(tmp_path / "grid.png", nrow=3)
    with Image.open(grid) as im:  # 2 rows of 3 images of 16 px, 2 px padding
        assert im.size == (3 * 16 + 4 * 2, 2 * 16 + 3 * 2)
        cell = np.asarray(im)[2:18, 2:18]
    assert np.array_equal(cell, np.asarray(out.to_pil()[0]))
    files = out.save(tmp_path / "each" / "sample_{i:02d}.png")
    assert [f.name for f in files] == [f"sample_{i:02d}.png" for i in range(6)]
    with Image.open(files[4]) as im:
        assert np.array_equal(np.asarray(im), np.asarray(out.to_pil()[4]))
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        SynthesisOutput(image=torch.zeros(2, 5, 4, 4)).to_pil()


# ------------------------------------------------------------------ Condition
def test_condition_repr_shows_shapes_and_dtypes_not_values():
    cond = synth.Condition(
        label_map=torch.full((2, 8, 8), 3), num_classes=5, image=torch.zeros(2, 3, 4, 4)
    )
    text = repr(cond)
    assert text == (
        "Condition(label_map=int64[2, 8, 8], image=float32[2, 3, 4, 4], num_classes=5, size=(8, 8))"
    )
    big = synth.Condition(image=torch.zeros(1, 3, 256, 256))
    assert len(repr(big)) < 100 and "tensor(" not in repr(big)


def test_one_hot_label_map_gets_the_argmax_hint():
    ids = torch.randint(0, 4, (2, 8, 8))
    one_hot = torch.nn.functional.one_hot(ids, 4).permute(0, 3, 1, 2)
    for t in (one_hot, one_hot.float()):
        with pytest.raises(ValueError, match=r"one-hot \[B, K, H, W\].*label_map\.argmax\(1\)"):
            synth.Condition(label_map=t, num_classes=4)
    fixed = synth.Condition(label_map=one_hot.argmax(1), num_classes=4)
    assert torch.equal(fixed.label_map, ids)


def test_channels_last_image_gets_the_permute_hint():
    hwc = torch.zeros(2, 16, 16, 3)
    with pytest.raises(ValueError, match=r"channels-last.*image\.permute\(0, 3, 1, 2\)"):
        synth.Condition(image=hwc)
    assert synth.Condition(image=hwc.permute(0, 3, 1, 2)).image.shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match=r"image\.permute\(2, 0, 1\)\[None\]"):
        synth.Condition(image=torch.zeros(16, 16, 3))
    with pytest.raises(ValueError, match=r"mask\.permute\(0, 3, 1, 2\)"):
        synth.Condition(mask=torch.ones(2, 16, 16, 1))


# ------------------------------------------------------------------ list_parts
def test_list_parts_pattern_first_kind_by_keyword(synth_registry):
    assert synth.list_parts("core.*_norm") == ["core.batch_norm", "core.instance_norm"]
    losses = synth.list_parts("core.*", kind="loss")
    assert losses and all(synth.describe(n)["kind"] == "loss" for n in losses)
    with pytest.raises(TypeError):
        synth.list_parts("core.*", "loss")  # kind is keyword-only: no silent swap of the two


def test_list_parts_cimle_pattern_with_the_plugin_installed():
    pytest.importorskip("synth_cimle")
    names = synth.list_parts("cimle.*")
    assert {"cimle.imle", "cimle.distance", "cimle.rrdb_generator"} <= set(names)
    assert synth.list_parts("cimle.*", kind="objective") == ["cimle.imle"]
