"""synth.io.weights: safe state-dict reading (never unpickles code) and the weights lookup policy."""

import os
import pickle
import shlex
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from synth import WeightsNotFoundError
from synth.io.weights import read_state_dict, resolve_weights, weights_dir


def _sd(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "features.0.weight": torch.randn(4, 3, 3, 3, generator=g),
        "features.0.bias": torch.randn(4, generator=g),
        "head.fc.weight": torch.randn(2, 4, generator=g),
    }


def _equal(a, b):
    assert set(a) == set(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ----------------------------------------------------------------------------- reading


def test_safetensors_round_trip(tmp_path):
    sd = _sd()
    save_file(sd, tmp_path / "w.safetensors")
    _equal(read_state_dict(tmp_path / "w.safetensors"), sd)


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".ckpt", ".bin"])
def test_torch_save_round_trip(tmp_path, suffix):
    sd = _sd()
    torch.save(sd, tmp_path / f"w{suffix}")
    _equal(read_state_dict(str(tmp_path / f"w{suffix}")), sd)


@pytest.mark.parametrize("key", ["state_dict", "model", "params", "params_ema"])
def test_nested_checkpoint_is_unwrapped_and_module_prefix_stripped(tmp_path, key):
    sd = _sd()
    torch.save({key: {f"module.{k}": v for k, v in sd.items()}, "epoch": 3}, tmp_path / "c.pth")
    _equal(read_state_dict(tmp_path / "c.pth"), sd)


def test_params_ema_preferred_over_params(tmp_path):
    torch.save({"params": _sd(0), "params_ema": _sd(1)}, tmp_path / "c.pth")
    _equal(read_state_dict(tmp_path / "c.pth"), _sd(1))


def test_npz_keeps_chainer_keys(tmp_path):
    arrays = {"block2/b1/gammas/W": np.arange(6, dtype=np.float32).reshape(2, 3)}
    np.savez(tmp_path / "w.npz", **arrays)
    out = read_state_dict(tmp_path / "w.npz")
    assert list(out) == ["block2/b1/gammas/W"]
    assert torch.equal(out["block2/b1/gammas/W"], torch.arange(6.0).reshape(2, 3))


def test_non_mapping_and_non_tensor_entries_are_errors(tmp_path):
    torch.save(torch.zeros(3), tmp_path / "t.pth")
    with pytest.raises(ValueError, match="not a state dict"):
        read_state_dict(tmp_path / "t.pth")
    torch.save({"a": torch.zeros(1), "b": 3}, tmp_path / "m.pth")
    with pytest.raises(ValueError, match="not tensors"):
        read_state_dict(tmp_path / "m.pth")
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        read_state_dict(tmp_path / "nope.pth")


# ----------------------------------------------------------------------------- pickle safety


class _Evil:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def test_payload_is_live(tmp_path):
    """Control: the payload really executes when unpickled unsafely (so the tests below bite)."""
    marker = tmp_path / "control_marker"
    pickle.loads(pickle.dumps(_Evil(marker)))
    assert marker.exists()


@pytest.mark.parametrize("name", ["evil.pth", "evil.pt", "evil.ckpt", "model.safetensors", "w.npz"])
def test_raw_pickle_payload_never_executes(tmp_path, name):
    marker = tmp_path / "pwned"
    payload = {"state_dict": {"w": _Evil(marker)}}
    (tmp_path / name).write_bytes(pickle.dumps(payload))
    with pytest.raises(ValueError) as info:
        read_state_dict(tmp_path / name)
    assert name in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["evil.pth", "evil.pt"])
def test_torch_save_payload_never_executes(tmp_path, name):
    marker = tmp_path / "pwned"
    torch.save({"w": torch.zeros(1), "evil": _Evil(marker)}, tmp_path / name)
    with pytest.raises(ValueError, match="never unpickles code") as info:
        read_state_dict(tmp_path / name)
    assert name in str(info.value)
    assert "safetensors" in str(info.value)
    assert not marker.exists()


def test_npz_with_pickled_object_array_never_executes(tmp_path):
    marker = tmp_path / "pwned"
    arr = np.empty(1, dtype=object)
    arr[0] = _Evil(marker)
    np.savez(tmp_path / "obj.npz", evil=arr)  # stored with pickle inside the archive
    assert zipfile.is_zipfile(tmp_path / "obj.npz")
    with pytest.raises(ValueError, match="obj.npz"):
        read_state_dict(tmp_path / "obj.npz")
    assert not marker.exists()


# ----------------------------------------------------------------------------- policy


def test_explicit_file(tmp_path):
    f = tmp_path / "mine.safetensors"
    save_file(_sd(), f)
    assert resolve_weights("x", f, filename="other.safetensors") == f
    assert resolve_weights("x", str(f), filename="other.safetensors") == f
    with pytest.raises(WeightsNotFoundError, match="missing.pth"):
        resolve_weights("x", tmp_path / "missing.pth", filename="other.safetensors")


def test_cache_hit_and_order(tmp_path):
    cache = weights_dir()
    assert cache == tmp_path / "synth_home" / "weights"
    cache.mkdir(parents=True)
    (cache / "b.pth").write_bytes(b"")
    assert resolve_weights("x", None, filename=["a.safetensors", "b.pth"]) == cache / "b.pth"
    (cache / "a.safetensors").write_bytes(b"")
    assert (
        resolve_weights("x", None, filename=["a.safetensors", "b.pth"]) == cache / "a.safetensors"
    )


def test_offline_miss_says_what_to_put_where(tmp_path):
    with pytest.raises(WeightsNotFoundError) as info:
        resolve_weights(
            "VGG19 ImageNet weights",
            None,
            filename="vgg19.tv_in1k.safetensors",
            url_hint="https://example.org/vgg19.safetensors",
        )
    msg = str(info.value)
    assert str(tmp_path / "synth_home" / "weights" / "vgg19.tv_in1k.safetensors") in msg
    assert 'weights="/path/to/file"' in msg
    assert "https://example.org/vgg19.safetensors" in msg
    assert "SYNTH_OFFLINE=1" in msg


def test_online_miss_lets_the_caller_download(monkeypatch):
    monkeypatch.setenv("SYNTH_OFFLINE", "0")
    assert resolve_weights("x", None, filename="nothing.safetensors") is None


def test_default_home(monkeypatch, tmp_path):
    monkeypatch.delenv("SYNTH_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert weights_dir() == tmp_path / ".cache" / "synth" / "weights"
