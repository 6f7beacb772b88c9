"""The edit recipe replays through the Python API to the same pixels; each edit changes the
pixels where it should."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synth.app import RecipeError, encode_array, replay
from synth.app.editor import images_uint8

from .conftest import label_input, nested_model, roundtrip, stroke_labels


def region(size: int, box: tuple[slice, slice]) -> dict:
    r = np.zeros((size, size), np.uint8)
    r[box] = 1
    return encode_array(r)


def decode_png(url: str) -> np.ndarray:
    import base64
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def far_from(mask: np.ndarray, distance: int) -> np.ndarray:
    from scipy.ndimage import distance_transform_edt

    return distance_transform_edt(~mask.astype(bool)) > distance


def test_page_session_replays_to_the_same_pixels(clvae_editor):
    """What the page showed (the editor, cached step by step) and a replay of the downloaded
    recipe from scratch (synth.load + replay) are the same PNG bytes' pixels."""
    steps = [{"op": "sample", "n": 6, "seed": 11}]
    shown = clvae_editor.run({"input": label_input(), "steps": steps})
    steps = [*shown["recipe"]["steps"], {"op": "pick", "index": 3}]
    steps.append({"op": "resample_class", "classes": [1], "n": 4, "seed": 7})
    clvae_editor.run({"input": label_input(), "steps": steps})
    steps.append({"op": "pick", "index": 2})
    blend = {"op": "blend", "with_index": 0, "sampler": "collage.feature_blend"}
    blend["region"] = region(64, (slice(0, 24), slice(0, 24)))
    last = clvae_editor.run({"input": label_input(), "steps": [*steps, blend]})
    recipe = roundtrip(last["recipe"])
    state = replay(clvae_editor.model, recipe)
    assert state.images.shape == (1, 3, 64, 64)
    assert np.array_equal(images_uint8(state)[0], decode_png(last["images"][0]))


def test_replay_on_a_freshly_loaded_model(clvae_dir, clvae_editor):
    import synth

    steps = [{"op": "sample", "n": 3, "seed": 5}, {"op": "pick", "index": 1}]
    steps.append({"op": "resample_class", "classes": [2], "n": 2, "seed": 9})
    shown = clvae_editor.run({"input": label_input(), "steps": steps})
    fresh = synth.load(clvae_dir, for_training=False)
    state = replay(fresh, roundtrip(shown["recipe"]))
    got = images_uint8(state)
    for i, url in enumerate(shown["images"]):
        assert np.array_equal(got[i], decode_png(url))


def test_resample_class_changes_that_class_and_little_far_from_it(clvae_editor):
    model = clvae_editor.model
    base = [{"op": "sample", "n": 2, "seed": 3}]
    before = replay(model, {"input": label_input(), "steps": base}).images[0]
    edit = {"op": "resample_class", "classes": [1], "n": 3, "seed": 4}
    after = replay(model, {"input": label_input(), "steps": [*base, edit]}).images
    lm = stroke_labels()
    d = (after - before).abs().mean(1)  # [3, H, W]
    inside, far = torch.from_numpy(lm == 1), torch.from_numpy(far_from(lm == 1, 12))
    for i in range(3):
        assert d[i][inside].mean() > 2 * d[i][far].mean()
    # the variants differ from each other: fresh codes per variant
    assert not torch.allclose(after[0], after[1])


def test_resample_scale_keeps_the_coarser_levels():
    model = nested_model()
    lm = stroke_labels(32)
    inp = {"size": [32, 32], "label_map": encode_array(lm)}
    base = [{"op": "sample", "n": 2, "seed": 1}]
    edit = {"op": "resample_scale", "scales": [2], "n": 3, "seed": 2}
    edit["sampler"] = "nested_scale.scale_edit"
    state = replay(model, {"input": inp, "steps": [*base, edit]})
    cur = replay(model, {"input": inp, "steps": base})
    # the scale sampler keeps levels 0 and 1's codes of the current image
    for k in (0, 1):
        assert torch.equal(state.latents.styles[k][0], cur.latents.styles[k][0])
    assert not torch.equal(state.latents.styles[2][0], cur.latents.styles[2][0])


def test_label_collage_changes_the_region(collage_editor):
    inp = {"size": [32, 32], "class_id": 1}
    base = [{"op": "sample", "n": 2, "seed": 1}]
    edit = {"op": "label_collage", "class_id": 3, "layers": [0, 1, 2, 3], "intensity": 1.0}
    edit.update(sampler="collage.label_collage", region=region(32, (slice(0, 12), slice(0, 32))))
    model = collage_editor.model
    before = replay(model, {"input": inp, "steps": base}).images[0]
    after = replay(model, {"input": inp, "steps": [*base, edit]}).images[0]
    d = (after - before).abs().mean(0)
    assert d[:12].mean() > 3 * d[24:].mean()
    half = replay(model, {"input": inp, "steps": [*base, {**edit, "intensity": 0.5}]}).images[0]
    dh = (half - before).abs().mean(0)
    assert 0 < dh[:12].mean() < d[:12].mean()  # the intensity slider is continuous


def test_blend_takes_the_other_sample_inside_the_region(clvae_editor):
    model = clvae_editor.model
    base = [{"op": "sample", "n": 2, "seed": 8}]
    grid = replay(model, {"input": label_input(), "steps": base}).images
    box = (slice(4, 28), slice(4, 28))
    edit = {"op": "blend", "with_index": 1, "sampler": "collage.feature_blend"}
    edit["region"] = region(64, box)
    out = replay(model, {"input": label_input(), "steps": [*base, edit]}).images[0]
    inside = np.zeros((64, 64), bool)
    inside[box] = True
    d_target = (out - grid[0]).abs().mean(0)
    d_other = (out - grid[1]).abs().mean(0)
    far = torch.from_numpy(far_from(inside, 12))
    assert d_other[inside].mean() < d_target[inside].mean()  # inside looks like the other
    assert d_target[far].mean() < 0.25 * d_target[inside].mean()  # far away is the target


@pytest.mark.parametrize(
    ("steps", "match"),
    [
        ([{"op": "pick", "index": 0}], "first step must be 'sample'"),
        ([{"op": "sample", "n": 0}], "steps.0"),
        ([{"op": "sample", "n": 2}, {"op": "pick", "index": 5}], "the grid has 2"),
        ([{"op": "sample", "n": 2}, {"op": "teleport"}], "steps.1"),
        ([{"op": "sample", "n": 2}, {"op": "resample_class", "classes": [9]}], "classes \\[9\\]"),
    ],
)
def test_bad_steps_are_messages(clvae_editor, steps, match):
    with pytest.raises(RecipeError, match=match):
        replay(clvae_editor.model, {"input": label_input(), "steps": steps})


def test_bad_inputs_are_messages(clvae_editor):
    model = clvae_editor.model
    bad = np.full((64, 64), 7, np.uint8)
    with pytest.raises(RecipeError, match="class id 7 .* 4 classes"):
        replay(model, {"input": {"size": [64, 64], "label_map": encode_array(bad)},
                       "steps": [{"op": "sample"}]})  # fmt: skip
    short = {"shape": [64, 64], "data": "AAAA"}
    with pytest.raises(RecipeError, match="3 bytes for shape"):
        replay(
            model, {"input": {"size": [64, 64], "label_map": short}, "steps": [{"op": "sample"}]}
        )
    with pytest.raises(RecipeError, match="paint one"):
        replay(model, {"input": {"size": [64, 64]}, "steps": [{"op": "sample"}]})


def test_a_recipe_has_at_most_max_steps(clvae_editor):
    from synth.app.recipe import MAX_STEPS

    steps = [{"op": "sample", "n": 1}] + [{"op": "pick", "index": 0}] * MAX_STEPS
    with pytest.raises(RecipeError, match="steps: List should have at most 256"):
        replay(clvae_editor.model, {"input": label_input(), "steps": steps})
