"""A random FID Inception weights file for tests (the real one is never downloaded in tests).

torch-fidelity's ``FeatureExtractorInceptionV3`` is built with its weight loading stubbed out,
its convolutions re-initialised (Kaiming normal, so features neither vanish nor explode through
the ~50 layers) from a fixed seed, and its state dict saved with safetensors. The file is made
once per process, on first use, in a temporary folder removed at exit.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from safetensors.torch import save_file
from torch import nn

_FILE: list[Path] = []


def random_inception(seed: int = 0) -> nn.Module:
    """torch-fidelity's FID Inception v3 with random (seeded) weights, built offline."""
    import torch_fidelity.feature_extractor_inceptionv3 as tfi

    cls = tfi.FeatureExtractorInceptionV3
    with (
        mock.patch.object(tfi, "load_state_dict_from_url", lambda *a, **k: {}),
        mock.patch.object(cls, "load_state_dict", lambda self, *a, **k: None),
        torch.random.fork_rng(devices=[]),
    ):
        torch.manual_seed(seed)
        net = cls("inception-v3-compat", ["2048"])
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return net.eval()


def random_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    return {
        k: v.detach().clone().contiguous() for k, v in random_inception(seed).state_dict().items()
    }


def random_fid_weights() -> str:
    """Path of a random-weights FID Inception file (safetensors), made once per process."""
    if not _FILE:
        folder = Path(tempfile.mkdtemp(prefix="synth-fid-test-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        path = folder / "random-inception.safetensors"
        save_file(random_state_dict(), str(path))
        _FILE.append(path)
    return str(_FILE[0])


class FIDKitParams(Mapping):
    """``check_part`` parameters for ``core.fid``: a random weights file, ``feature=64``.

    The 64-feature layer keeps ``compute()`` fast (torchmetrics takes the eigenvalues of a
    ``feature × feature`` matrix: seconds at 2048 on one CPU core, each time the kit computes).

    A mapping whose file is made when the parameters are first read (when the test runs),
    not when the parameter table is defined (at collection).
    """

    def _params(self) -> dict[str, Any]:
        return {"weights": random_fid_weights(), "feature": 64}

    def __getitem__(self, key: str) -> Any:
        return self._params()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(("weights", "feature"))

    def __len__(self) -> int:
        return 2

    def __repr__(self) -> str:
        return "{'weights': <random FID Inception weights file>, 'feature': 64}"
