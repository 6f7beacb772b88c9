"""Image-conditioned models (outpainting: image + drawn mask; super-resolution: a small
image) and a hybrid that offers three edits at once, through the editor's handlers."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

import synth
from synth.app import Editor, encode_array, replay

from .conftest import stroke_labels

pytest.importorskip("synth_nested_scale")


def decoder(**over):
    spec = {
        "type": "nested_scale.pyramid_decoder", "resolution": 32, "num_scales": 4,
        "channels": 8, "encoder_channels": [8, 8, 8, 8, 8], "style_dim": 4, "mapping_layers": 2,
    }  # fmt: skip
    spec.update(over)
    torch.manual_seed(0)
    model = synth.compose({"generator": spec, "injector": {"type": "core.gaussian"}})
    return model.eval()


def png_bytes(h: int, w: int) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (h, w, 3), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_outpainting_model_takes_an_image_and_a_drawn_mask():
    editor = Editor(decoder(input="image", use_mask=True), size=(32, 32))
    caps = editor.caps
    assert caps.input == "image" and caps.mask and caps.image_size == (32, 32)
    assert caps.num_classes is None and caps.class_names == []
    image = editor.upload_image(png_bytes(100, 80))["image"]
    assert image["shape"] == [32, 32, 3]
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 1
    inp = {"size": [32, 32], "image": image, "mask": encode_array(mask)}
    shown = editor.run({"input": inp, "steps": [{"op": "sample", "n": 3, "seed": 2}]})
    assert len(shown["images"]) == 3
    state = replay(editor.model, shown["recipe"])
    assert state.images.shape == (3, 3, 32, 32)
    assert editor.caps.offers("resample_scale")
    with pytest.raises(ValueError, match="does not read a label map"):
        editor.upload_label(png_bytes(4, 4))


def test_super_resolution_model_reads_a_small_image():
    editor = Editor(decoder(input="image", variant="super_resolution", scale=4, num_scales=None),
                    size=(32, 32))  # fmt: skip
    assert editor.caps.input == "image" and editor.caps.image_size == (8, 8)
    assert not editor.caps.mask
    image = editor.upload_image(png_bytes(64, 64))["image"]
    assert image["shape"] == [8, 8, 3]
    shown = editor.run({"input": {"size": [32, 32], "image": image},
                        "steps": [{"op": "sample", "n": 2, "seed": 1}]})  # fmt: skip
    assert len(shown["images"]) == 2


def test_a_hybrid_offers_scale_collage_and_blend_together():
    """The nested-scale decoder with collage's spatial AdaIN after every conv: per-scale codes
    and norms that read class weights, both found from the parts."""
    pytest.importorskip("synth_collage")
    model = decoder(
        input="label_map",
        num_classes=4,
        norm={"type": "collage.spatial_adain", "condition": "label_map"},
    )
    editor = Editor(model, size=(32, 32))
    offered = {k for k, e in editor.caps.edits.items() if e.offered}
    assert offered == {"sample", "resample_scale", "label_collage", "blend"}
    inp = {"size": [32, 32], "label_map": encode_array(stroke_labels(32))}
    region = np.zeros((32, 32), np.uint8)
    region[:10] = 1
    steps = [
        {"op": "sample", "n": 3, "seed": 4},
        {"op": "resample_scale", "scales": [3], "n": 3, "seed": 5,
         "sampler": editor.caps.edits["resample_scale"].sampler},
        {"op": "pick", "index": 1},
        {"op": "label_collage", "class_id": 2, "region": encode_array(region), "layers": None,
         "intensity": 0.8, "sampler": editor.caps.edits["label_collage"].sampler},
    ]  # fmt: skip
    shown = editor.run({"input": inp, "steps": steps})
    again = replay(model, shown["recipe"])
    import base64

    from synth.viz import to_uint8

    png = base64.b64decode(shown["images"][0].split(",", 1)[1])
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), to_uint8(again.images)[0])
