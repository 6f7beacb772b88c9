"""synth.io.convert: the helpers official-checkpoint converters share."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from synth.io.convert import (
    ConversionReport,
    load_converted,
    read_checkpoint,
    spectral_norm_key_to_official,
    spectral_norm_key_to_torch,
    strip_key_prefixes,
)


def _t(n: int = 1) -> torch.Tensor:
    return torch.arange(float(n))


def test_strip_key_prefixes_each_key_in_order():
    sd = {"module.netG.a": _t(), "netG.b": _t(), "c": _t(), "netG.module.d": _t()}
    out = strip_key_prefixes(sd, ("module.", "netG."))
    assert list(out) == ["a", "b", "c", "module.d"]
    assert list(sd) == ["module.netG.a", "netG.b", "c", "netG.module.d"]  # input untouched


def test_strip_key_prefixes_only_if_all():
    mixed = {"module.a": _t(), "b": _t()}
    assert list(strip_key_prefixes(mixed, only_if_all=True)) == ["module.a", "b"]
    assert list(strip_key_prefixes(mixed)) == ["a", "b"]
    whole = {"module.a": _t(), "module.b": _t()}
    assert list(strip_key_prefixes(whole, only_if_all=True)) == ["a", "b"]
    assert strip_key_prefixes({}, only_if_all=True) == {}


def test_read_checkpoint_mapping_is_copied_and_stripped():
    sd = {"module.x": _t(2), "y": _t(3)}
    out = read_checkpoint(sd)
    assert list(out) == ["x", "y"] and out["x"] is sd["module.x"]
    assert list(read_checkpoint(sd, strip_prefixes=())) == ["module.x", "y"]
    assert list(read_checkpoint(sd, only_if_all=True)) == ["module.x", "y"]


def test_read_checkpoint_reads_safetensors(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "ckpt.safetensors"
    save_file({"netG.w": torch.ones(2, 3), "netG.b": torch.zeros(2)}, str(path))
    out = read_checkpoint(path, strip_prefixes=("module.", "netG."))
    assert sorted(out) == ["b", "w"] and torch.equal(out["w"], torch.ones(2, 3))
    assert sorted(read_checkpoint(str(path), strip_prefixes=())) == ["netG.b", "netG.w"]


def test_read_checkpoint_pth_is_read_safely(tmp_path):
    path = tmp_path / "net.pth"
    torch.save({"state_dict": {"module.w": torch.ones(1)}, "epoch": 3}, path)
    assert list(read_checkpoint(path)) == ["w"]
    with pytest.raises(FileNotFoundError):
        read_checkpoint(tmp_path / "absent.pth")


@pytest.mark.parametrize(
    ("official", "ours"),
    [
        ("head_0.conv_0.weight_orig", "head_0.conv_0.parametrizations.weight.original"),
        ("layer1.0.weight_u", "layer1.0.parametrizations.weight.0._u"),
        ("d.model0.0.weight_v", "d.model0.0.parametrizations.weight.0._v"),
        ("weight_orig", "parametrizations.weight.original"),
    ],
)
def test_spectral_norm_keys_round_trip(official, ours):
    assert spectral_norm_key_to_torch(official) == ours
    assert spectral_norm_key_to_official(ours) == official


@pytest.mark.parametrize("key", ["fc.weight", "conv.bias", "norm.running_mean", "x.weight_origin"])
def test_spectral_norm_keys_leave_others(key):
    assert spectral_norm_key_to_torch(key) == key
    assert spectral_norm_key_to_official(key) == key


def test_spectral_norm_keys_match_torch_parametrization():
    conv = nn.utils.parametrizations.spectral_norm(nn.Conv2d(2, 3, 3))
    old = nn.utils.spectral_norm(nn.Conv2d(2, 3, 3))
    assert {spectral_norm_key_to_torch(k) for k in old.state_dict()} == set(conv.state_dict())
    assert {spectral_norm_key_to_official(k) for k in conv.state_dict()} == set(old.state_dict())


def test_report_ok_and_inferred_alias():
    rep = ConversionReport("G", "Net", {"ngf": 8})
    assert rep.ok and rep.inferred == {"ngf": 8}
    rep.inferred = {"ngf": 16}
    assert rep.config == {"ngf": 16}
    assert not ConversionReport(unmapped=["a"]).ok
    assert not ConversionReport(missing=["b"]).ok
    assert ConversionReport().config == {} and ConversionReport().ok


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))


def test_load_converted_loads_and_reports():
    src, part = _net(), _net()
    rep = load_converted(
        part, src.state_dict(), [], strict=True, who="conv", kind="G", config={"a": 1}
    )
    assert rep.ok and rep.part == "Sequential" and rep.kind == "G" and rep.inferred == {"a": 1}
    for k, v in src.state_dict().items():
        assert torch.equal(part.state_dict()[k], v)


def test_load_converted_warns_on_unmapped_and_missing():
    src, part = _net(), _net()
    mapped = {k: v for k, v in src.state_dict().items() if k != "1.bias"}
    mapped["2.weight"] = torch.zeros(1)
    with pytest.warns(UserWarning, match=r"conv: unmapped keys \['2.weight', 'odd'\]"):
        rep = load_converted(part, mapped, ["odd"], strict=False, who="conv")
    assert rep.unmapped == ["2.weight", "odd"] and rep.missing == ["1.bias"] and not rep.ok
    assert torch.equal(part[0].weight, src[0].weight)  # what fits is loaded


def test_load_converted_strict_raises_and_leaves_part():
    src, part = _net(), _net()
    before = {k: v.clone() for k, v in part.state_dict().items()}
    mapped = {k: v for k, v in src.state_dict().items() if k != "0.bias"}
    with pytest.raises(ValueError, match=r"who: unmapped keys \[\], missing keys \['0.bias'\]"):
        load_converted(part, mapped, strict=True, who="who")
    for k, v in part.state_dict().items():
        assert torch.equal(v, before[k])


@pytest.mark.parametrize("strict", [True, False])
def test_load_converted_shape_mismatch_always_raises(strict):
    part = _net()
    mapped = {**part.state_dict(), "0.weight": torch.zeros(4, 2)}
    with pytest.raises(ValueError, match=r"conv: converted tensors do not fit.*0\.weight"):
        load_converted(part, mapped, strict=strict, who="conv")
