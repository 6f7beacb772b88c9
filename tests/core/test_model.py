"""save_pretrained / load round trip, strictness, and that nothing is ever unpickled; a
sampler with state saves through the model's state dict; format-1 files still load."""

from __future__ import annotations

import json
import os
import pickle

import pytest
import torch
from torch import nn

import synth
import synth.testing
from synth.parts.samplers import Prior

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


class _Offset(synth.Sampler, nn.Module):
    """A third-party sampler with fitted state: a colour offset added to prior samples. It is
    a module, so as the model's sampler its buffer is model state like any part's."""

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        self.register_buffer("offset", torch.zeros(3))

    def sample(
        self,
        model: synth.SynthesisModel,
        cond: synth.Condition,
        n: int,
        *,
        generator: torch.Generator | None = None,
        gain: float = 1.0,
    ) -> synth.SynthesisOutput:
        out = Prior()(model, cond, n, generator=generator)
        out.image = out.image + gain * self.offset[:, None, None]
        return out


@pytest.fixture
def offset_model(reg):
    reg.add("t.offset", kind="sampler", target=_Offset)
    torch.manual_seed(0)
    spec = {"generator": {"type": "t.gen", "num_classes": 4}, "sampler": "t.offset"}
    return synth.compose(spec, registry=reg)


def test_sampler_state_saves_through_the_model_state_dict(offset_model, reg, tmp_path):
    model = offset_model
    model.sampler.offset.copy_(torch.tensor([0.1, -0.2, 0.3]))  # "fitted"
    assert torch.equal(model.state_dict()["sampler.offset"], model.sampler.offset)
    assert "sampler.offset" in model.checkpoint_state()
    loaded = synth.load(model.save_pretrained(tmp_path / "m"), registry=reg)
    assert torch.equal(loaded.sampler.offset, model.sampler.offset)
    c = cond()
    with torch.no_grad():
        a, b = model.sample(c, 2, gain=2.0).image, loaded.sample(c, 2, gain=2.0).image
    assert torch.equal(a, b)
    report = synth.testing.check_part("t.offset", registry=reg)
    assert report.status("save_load") == "passed"
    # swapping the default sampler for a stateless one (and back) is plain assignment
    model.sampler = Prior()
    assert "sampler.offset" not in model.state_dict() and isinstance(model.sampler, Prior)
    model.sampler = loaded.sampler
    assert torch.equal(model.state_dict()["sampler.offset"], loaded.sampler.offset)


def test_format_1_files_load_with_or_without_sampler_keys(offset_model, reg, tmp_path):
    """Format 1 wrote a sampler's state as ``sampler.*`` keys only once fitted; both forms
    load. The current format checks those keys strictly, like every part's."""
    from safetensors.torch import load_file, save_file

    model = offset_model
    model.sampler.offset.copy_(torch.tensor([0.5, 0.5, -1.0]))
    path = model.save_pretrained(tmp_path / "m")
    meta = json.loads((path / "synth.json").read_text())
    assert meta["format_version"] == 2
    state = load_file(str(path / "model.safetensors"))
    meta["format_version"] = 1
    (path / "synth.json").write_text(json.dumps(meta))
    loaded = synth.load(path, registry=reg)  # fitted: the same sampler.* keys as today
    assert torch.equal(loaded.sampler.offset, model.sampler.offset)
    state.pop("sampler.offset")  # unfitted: no sampler keys at all
    save_file(state, str(path / "model.safetensors"))
    loaded = synth.load(path, registry=reg)
    assert torch.equal(loaded.sampler.offset, torch.zeros(3))
    assert torch.equal(loaded.generator.out.bias, model.generator.out.bias)
    meta["format_version"] = 2
    (path / "synth.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"missing keys \['sampler.offset'\]"):
        synth.load(path, registry=reg)
