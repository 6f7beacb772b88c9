"""save_pretrained / load round trip, strictness, and that nothing is ever unpickled."""

from __future__ import annotations

import json
import os
import pickle

import pytest
import torch

import synth

from .parts_fixture import make_registry


@pytest.fixture
def reg():
    return make_registry()


@pytest.fixture
def model(reg):
    torch.manual_seed(0)
    return synth.compose(
        {"generator": {"type": "t.gen", "num_classes": 4}, "discriminator": "t.disc"},
        registry=reg,
    )


def cond():
    g = torch.Generator().manual_seed(3)
    return synth.Condition(label_map=torch.randint(0, 4, (2, 8, 8), generator=g), num_classes=4)


def test_round_trip_identical_outputs(model, reg, tmp_path):
    path = model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in path.iterdir()) == ["model.safetensors", "synth.json"]
    meta = json.loads((path / "synth.json").read_text())
    assert meta["format"] == "synth" and meta["spec"]["generator"]["type"] == "t.gen"
    assert meta["synth_core"] == synth.__version__
    loaded = synth.load(path, registry=reg)
    c = cond()
    assert torch.equal(loaded.generate(c).image, model.generate(c).image)
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    # loading from the json path works too
    synth.load(path / "synth.json", registry=reg)


class Payload:
    """Unpickling this would create ``marker`` — proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_payload_never_executes(model, reg, tmp_path):
    marker = tmp_path / "pwned"
    path = model.save_pretrained(tmp_path / "m")
    payload = pickle.dumps(Payload(marker))
    (path / "model.safetensors").write_bytes(payload)
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        synth.load(path, registry=reg)
    (path / "synth.json").write_bytes(payload)
    with pytest.raises(ValueError, match="not a synth.json file"):
        synth.load(path, registry=reg)
    # a torch.save'd checkpoint (a zip with a pickle inside) is refused too
    model.save_pretrained(tmp_path / "m2")
    torch.save({"x": Payload(marker)}, tmp_path / "m2" / "model.safetensors")
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        synth.load(tmp_path / "m2", registry=reg)
    assert not marker.exists()


def test_strict_key_check(model, reg, tmp_path):
    from safetensors.torch import load_file, save_file

    path = model.save_pretrained(tmp_path / "m")
    state = load_file(str(path / "model.safetensors"))
    state.pop("generator.out.bias")
    state["generator.extra"] = torch.zeros(1)
    save_file(state, str(path / "model.safetensors"))
    with pytest.raises(ValueError) as err:
        synth.load(path, registry=reg)
    assert "missing keys ['generator.out.bias']" in str(err.value)
    assert "unexpected keys ['generator.extra']" in str(err.value)


def test_load_errors(reg, tmp_path, model):
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        synth.load(tmp_path / "nothing", registry=reg)
    path = model.save_pretrained(tmp_path / "m")
    meta = json.loads((path / "synth.json").read_text())
    meta["plugins"]["cimle"] = {"dist": "synth-plugin-cimle", "version": "0.3.0"}
    (path / "synth.json").write_text(json.dumps(meta))
    with pytest.raises(synth.UnknownPartError, match="pip install synth-plugin-cimle==0.3.0"):
        synth.load(path, registry=reg)
    meta["format_version"] = 99
    (path / "synth.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="upgrade synth-core"):
        synth.load(path, registry=reg)


def test_save_leaves_no_temporaries_and_overwrites(model, tmp_path):
    path = model.save_pretrained(tmp_path / "m")
    model.save_pretrained(path)
    assert sorted(p.name for p in path.iterdir()) == ["model.safetensors", "synth.json"]


def test_shared_parameters_are_saved(reg, tmp_path):
    m = synth.compose({"generator": {"type": "t.gen", "num_classes": 4}}, registry=reg)
    m.generator.extra = m.generator.out  # the same module under two names shares storage
    path = m.save_pretrained(tmp_path / "m")
    assert (path / "model.safetensors").stat().st_size > 0


def test_load_for_sampling_needs_no_loss_backbone_weights(tmp_path, monkeypatch):
    """A model trained with an ImageNet perceptual loss: `synth.load` needs the VGG file (the
    loss is rebuilt), `for_training=False` and `synth sample` do not, and generate the same."""
    from synth.cli import main
    from synth.errors import WeightsNotFoundError

    monkeypatch.setenv("SYNTH_OFFLINE", "1")
    spec = {
        "generator": {"type": "core.simple_generator", "num_classes": 4, "ngf": 8, "z_dim": 4},
        "injector": {"type": "core.gaussian"},
        "losses": {
            "vgg": {
                "type": "core.perceptual",
                "weights": "none",
                "layers": ["relu1_1"],
                "layer_weights": [1.0],
            },
            "l1": {"type": "core.l1"},
        },
    }
    torch.manual_seed(0)
    model = synth.compose(spec)
    path = model.save_pretrained(tmp_path / "m")
    meta = json.loads((path / "synth.json").read_text())
    meta["spec"]["losses"]["vgg"]["weights"] = "imagenet"  # as trained with the real VGG
    (path / "synth.json").write_text(json.dumps(meta))
    with pytest.raises(WeightsNotFoundError):
        synth.load(path)
    loaded = synth.load(path, for_training=False)
    assert dict(loaded.losses) == {} and loaded.objective is None
    c, g = cond(), torch.Generator().manual_seed(1)
    expected = model.generate(c, generator=torch.Generator().manual_seed(1)).image
    assert torch.equal(loaded.generate(c, generator=g).image, expected)
    labels = tmp_path / "labels.png"
    from PIL import Image

    Image.fromarray(c.label_map[0].to(torch.uint8).numpy(), mode="L").save(labels)
    assert (
        main(
            [
                "sample",
                str(path),
                "--label-map",
                str(labels),
                "-n",
                "2",
                "--out",
                str(tmp_path / "s"),
            ]
        )
        == 0
    )
