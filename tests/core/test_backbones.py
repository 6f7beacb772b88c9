"""synth.nn.backbones.FeatureExtractor: VGG layer names, truncation, weights loading, freezing."""

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from synth import WeightsNotFoundError
from synth.io.weights import weights_dir
from synth.nn.backbones import IMAGENET_MEAN, IMAGENET_STD, FeatureExtractor

SHALLOW = ["relu1_1", "relu2_1", "relu3_1"]  # vgg11 indices 1, 4, 7


def images(b=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, size, size, generator=g) * 2 - 1


def vgg11(layers=SHALLOW, seed=0, **kw):
    torch.manual_seed(seed)
    return FeatureExtractor("vgg11", layers=layers, weights=kw.pop("weights", "none"), **kw)


# ----------------------------------------------------------------------------- layer names


def test_vgg19_layer_map():
    fe = FeatureExtractor("vgg19", layers=["relu1_1"], weights="none")
    names = fe.layer_names
    assert names["conv1_1"] == 0
    assert names["relu1_1"] == 1
    assert names["relu1_2"] == 3
    assert names["pool1"] == 4
    assert names["relu2_1"] == 6
    assert names["relu3_1"] == 11
    assert names["relu4_1"] == 20
    assert names["relu5_1"] == 29
    assert names["conv5_4"] == 34
    assert names["relu5_4"] == 35
    assert names["pool5"] == 36
    assert len(names) == 16 * 2 + 5
    # only the requested prefix is built
    assert len(fe.features) == 2


def test_vgg11_and_bn_layer_maps():
    fe = vgg11(layers=["relu1_1"])
    assert [fe.layer_names[n] for n in SHALLOW] == [1, 4, 7]
    assert fe.layer_names["conv5_2"] == 18
    bn = FeatureExtractor("vgg11_bn", layers=["relu1_1"], weights="none")
    assert (bn.layer_names["conv1_1"], bn.layer_names["bn1_1"], bn.layer_names["relu1_1"]) == (
        0,
        1,
        2,
    )


def test_unknown_layer_names_the_close_ones():
    with pytest.raises(ValueError, match=r"relu5_5.*relu5_4"):
        FeatureExtractor("vgg19", layers=["relu5_5"], weights="none")
    with pytest.raises(ValueError, match="named layers exist only for VGG"):
        FeatureExtractor("resnet18", layers=["relu1_1"], weights="none")


# ----------------------------------------------------------------------------- forward


def test_shapes_order_and_truncation():
    fe = vgg11(layers=["relu3_1", "relu1_1", "conv2_1"])
    assert len(fe.features) == 8  # up to index 7 (relu3_1)
    out = fe(images())
    assert [tuple(o.shape) for o in out] == [(2, 256, 8, 8), (2, 64, 32, 32), (2, 128, 16, 16)]


def test_features_match_an_independent_torchvision_stack():
    from torchvision.models.vgg import cfgs, make_layers

    fe = vgg11(layers=SHALLOW, normalize="none")
    ref = make_layers(cfgs["A"])[:8]
    ref.load_state_dict(fe.features.state_dict())
    x = images()
    expected, h = [], x
    for i, m in enumerate(ref):
        h = m(h)
        if i in (1, 4, 7):
            expected.append(h)
    for a, b in zip(fe(x), expected):
        torch.testing.assert_close(a, b)


def test_conv_output_is_not_overwritten_by_its_relu():
    fe = vgg11(layers=["conv1_1", "relu1_1"])
    conv, relu = fe(images())
    assert (conv < 0).any()
    torch.testing.assert_close(relu, F.relu(conv))


def test_normalisation():
    x = images()
    fe = vgg11(layers=["input"])
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(fe(x)[0], ((x + 1) / 2 - mean) / std)
    torch.testing.assert_close(vgg11(layers=["input"], input_range="[0,1]")(x)[0], (x - mean) / std)
    assert torch.equal(vgg11(layers=["input"], normalize="none")(x)[0], x)


def test_frozen_eval_and_gradients_reach_the_input():
    fe = vgg11(layers=["relu2_1"])
    assert not any(p.requires_grad for p in fe.parameters())
    fe.train()
    assert not fe.training
    x = images().requires_grad_()
    fe(x)[0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_bf16_input_computes_in_bf16():
    fe = vgg11(layers=["relu2_1"])
    x = images()
    out = fe(x.bfloat16())[0]
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), fe(x)[0], atol=0.1, rtol=0.05)


# ----------------------------------------------------------------------------- weights


def _features_state(seed):
    """A torchvision/timm-layout VGG11 state dict (features.* plus classifier keys)."""
    src = vgg11(layers=["relu5_2"], seed=seed)
    sd = {f"features.{k}": v.clone() for k, v in src.features.state_dict().items()}
    sd["classifier.0.weight"] = torch.zeros(4, 8)  # ignored
    return sd


@pytest.mark.parametrize("fmt", ["safetensors", "pth"])
def test_load_features_from_file_round_trips(tmp_path, fmt):
    sd = _features_state(seed=1)
    path = tmp_path / f"vgg11.{fmt}"
    if fmt == "safetensors":
        save_file(sd, path)
    else:
        torch.save(sd, path)
    fe = vgg11(layers=SHALLOW, seed=2, weights=str(path))
    for k, v in fe.features.state_dict().items():
        assert torch.equal(v, sd[f"features.{k}"]), k
    ref = vgg11(layers=SHALLOW, seed=1)
    x = images()
    for a, b in zip(fe(x), ref(x)):
        assert torch.equal(a, b)


def test_cached_file_is_used_for_imagenet(tmp_path):
    sd = _features_state(seed=3)
    weights_dir().mkdir(parents=True)
    torch.save(sd, weights_dir() / "vgg11-8a719046.pth")  # torchvision's file name
    fe = FeatureExtractor("vgg11", layers=["relu1_1"], weights="imagenet")
    assert torch.equal(fe.features[0].weight, sd["features.0.weight"])


def test_missing_keys_are_reported(tmp_path):
    sd = _features_state(seed=1)
    del sd["features.3.weight"]
    save_file(sd, tmp_path / "partial.safetensors")
    with pytest.raises(ValueError, match=r"features\.3\.weight"):
        vgg11(weights=str(tmp_path / "partial.safetensors"))


def test_offline_imagenet_error_names_the_file(tmp_path):
    with pytest.raises(WeightsNotFoundError) as info:
        FeatureExtractor("vgg19", layers=["relu1_1"], weights="imagenet")
    msg = str(info.value)
    assert str(tmp_path / "synth_home" / "weights" / "vgg19.tv_in1k.safetensors") in msg
    assert "vgg19-dcbb9e9d.pth" in msg
    assert 'weights="/path/to/file"' in msg
    with pytest.raises(WeightsNotFoundError, match="nowhere.pth"):
        vgg11(weights=str(tmp_path / "nowhere.pth"))


# ----------------------------------------------------------------------------- other backbones


def test_timm_features_only_backbone_and_file_weights(tmp_path):
    import timm

    torch.manual_seed(0)
    full = timm.create_model("resnet18", pretrained=False)
    save_file(full.state_dict(), tmp_path / "r18.safetensors")
    fe = FeatureExtractor("resnet18", layers=[2, 1], weights=str(tmp_path / "r18.safetensors"))
    assert torch.equal(fe.model.conv1.weight, full.conv1.weight)
    out = fe(images())
    assert [tuple(o.shape) for o in out] == [(2, 128, 4, 4), (2, 64, 8, 8)]
    with pytest.raises(WeightsNotFoundError, match=r"resnet18\.a1_in1k\.safetensors"):
        FeatureExtractor("resnet18", layers=[1])


def test_unknown_backbone_suggests_names():
    with pytest.raises(ValueError, match="vgg19"):
        FeatureExtractor("vgg91", layers=[1], weights="none")


def test_failed_download_says_which_file_to_place(monkeypatch, tmp_path):
    import timm

    import synth.nn.backbones as backbones

    monkeypatch.setenv("SYNTH_OFFLINE", "0")
    # the host answers (make test sets HF_HUB_OFFLINE): the failure comes from the download
    monkeypatch.setattr(backbones, "_unreachable", lambda url: None)
    real_create = timm.create_model

    def no_network(name, pretrained=False, **kw):
        if pretrained:
            raise OSError("no network")
        return real_create(name, pretrained=False, **kw)

    monkeypatch.setattr(timm, "create_model", no_network)
    with pytest.raises(WeightsNotFoundError, match="no network") as info:
        FeatureExtractor("vgg11", layers=["relu1_1"])
    assert str(tmp_path / "synth_home" / "weights" / "vgg11.tv_in1k.safetensors") in str(info.value)
