"""``synth demo`` on a recipe whose spec declares ``condition: [image, mask]``: the demo photos
become outpainting pairs (a centred known box), the run trains on them, and the written inputs
are RGBA files whose alpha is the mask, which ``synth sample --image`` reads back."""

from __future__ import annotations

import shlex

import numpy as np
import pytest
import torch
from PIL import Image

import synth
import synth.testing
from synth.cli import main
from synth.data import demo
from synth.demo import MaskedPhotos, _datasets, run_demo

#: A GAN of core parts; the data gives masked photos (the generator draws from z alone, which
#: is enough to run the masked data path end to end).
SPEC = {
    "generator": {"type": "core.simple_generator", "ngf": 8, "num_stages": 2, "z_dim": 4},
    "injector": {"type": "core.gaussian"},
    "discriminator": {"type": "core.patch_discriminator", "ndf": 8, "n_layers": 2},
    "losses": {"gan": {"type": "core.hinge"}},
    "objective": {"type": "core.gan"},
    "condition": ["image", "mask"],
}


class MaskedPlugin:
    @synth.hookimpl
    def synth_register(self, registry):
        registry.add_recipe("masktest.tiny", SPEC, demo={"preference": 1})


@pytest.fixture
def masked_registry():
    with synth.testing.fresh_registry(("masktest", MaskedPlugin())) as reg:
        yield reg


def test_masked_demo_photos_keep_the_centred_half():
    ds = MaskedPhotos(demo(32, 8, "train", 0))
    assert ds.fields == {"image", "mask"} and len(ds) == len(ds.photos)
    item = ds[0]
    m = item["mask"]
    assert m.shape == (1, 32, 32) and m.sum() == 16 * 16 and m[0, 8:24, 8:24].all()
    assert torch.equal(item["image"], item["real"] * m)
    ds.set_epoch(2)
    assert ds.photos.epoch == 2


def test_demo_trains_a_masked_image_recipe_and_writes_rgba_inputs(masked_registry, tmp_path):
    model = synth.compose(SPEC)
    train, show, mode = _datasets(model, 32, 8, 0)
    assert isinstance(train, MaskedPhotos) and isinstance(show, MaskedPhotos) and mode == "image"
    result = run_demo(
        "masktest.tiny", out_dir=tmp_path, steps=1, size=32, num_samples=2, log=lambda *_: None
    )
    assert result.metrics["train"]["steps"] == 1 and result.files["samples"].is_file()
    inputs = sorted((tmp_path / "inputs").glob("*.png"))
    assert inputs and Image.open(inputs[0]).mode == "RGBA"
    alpha = np.asarray(Image.open(inputs[0]).getchannel("A"))
    assert alpha.shape == (32, 32) and (alpha[8:24, 8:24] == 255).all() and alpha.sum() == 255 * 256
    command = shlex.split(result.sample_command)
    assert command[:2] == ["synth", "sample"] and "--image" in command
    assert main(command[1:]) == 0  # the printed command works: the mask comes from the alpha
    assert len(list((tmp_path / "more_samples").glob("*.png"))) >= 2
