"""Composing a recipe whose loss wants ImageNet VGG without the file and without a network
fails at once (issue 17, item 3), not after a minute of hub retries, and the error names both
ways out: the file to put where, or ``weights: "none"``."""

from __future__ import annotations

import copy
import socket
import time

import pytest
import timm

import synth
from synth.errors import WeightsNotFoundError
from synth.nn import backbones
from synth.nn.backbones import FeatureExtractor


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """Downloads allowed by the settings, but no host answers; an empty weights cache."""
    monkeypatch.delenv("SYNTH_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("SYNTH_HOME", str(tmp_path / "home"))
    probed: list[tuple] = []

    def refuse(address, *args, **kwargs):
        probed.append(address)
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)
    real_create = timm.create_model

    def no_download(name, pretrained=False, **kwargs):
        assert not pretrained, "timm was asked to download"
        return real_create(name, pretrained=False, **kwargs)

    monkeypatch.setattr(timm, "create_model", no_download)
    backbones._unreachable.cache_clear()
    yield probed
    backbones._unreachable.cache_clear()


def _check_message(text: str, home) -> None:
    assert str(home / "weights" / "vgg19.tv_in1k.safetensors") in text, text  # the file, where
    assert 'weights: "none"' in text, text  # the other way out


def test_vgg_without_file_or_network_fails_fast(no_network, tmp_path):
    start = time.perf_counter()
    with pytest.raises(WeightsNotFoundError) as err:
        FeatureExtractor("vgg19", layers=["relu1_1"])
    assert time.perf_counter() - start < 5
    assert no_network == [("huggingface.co", 443)]
    assert "huggingface.co cannot be reached" in str(err.value)
    _check_message(str(err.value), tmp_path / "home")


def test_offline_setting_error_names_weights_none(monkeypatch, tmp_path):
    monkeypatch.setenv("SYNTH_OFFLINE", "1")
    monkeypatch.setenv("SYNTH_HOME", str(tmp_path / "home"))
    with pytest.raises(WeightsNotFoundError) as err:
        FeatureExtractor("vgg19", layers=["relu1_1"])
    assert "SYNTH_OFFLINE=1" in str(err.value)
    _check_message(str(err.value), tmp_path / "home")


def test_hf_hub_offline_counts_as_no_network(no_network, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match="HF_HUB_OFFLINE is set"):
        FeatureExtractor("vgg19", layers=["relu1_1"])
    assert no_network == []  # not even a probe


def test_cimle_recipe_fails_fast_and_weights_none_composes(no_network, tmp_path):
    pytest.importorskip("synth_cimle")
    start = time.perf_counter()
    with pytest.raises(WeightsNotFoundError) as err:
        synth.compose("cimle.sr_x4_small")
    assert time.perf_counter() - start < 10
    _check_message(str(err.value), tmp_path / "home")
    spec = copy.deepcopy(synth.get_registry().recipe("cimle.sr_x4_small").spec)
    spec["losses"]["imle"]["weights"] = "none"
    assert synth.compose(spec).losses["imle"] is not None
