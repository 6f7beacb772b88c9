"""``core.fid``: Fréchet Inception Distance on torch-fidelity's Inception v3 (torchmetrics)."""

from __future__ import annotations

import threading
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import torch
from pydantic import Field, field_validator
from torch import Tensor

from ..config import PartConfig
from ..errors import WeightsNotFoundError
from ..extras import require
from ..io.weights import read_state_dict, resolve_weights, weights_dir
from ..parts.base import Metric
from .inputs import check_images
from .provenance import dist_version, file_sha256

__all__ = ["FID", "FID_WEIGHTS_FILE", "FID_WEIGHTS_URL", "frechet_distance"]


#: The FID Inception v3 weights file (the TF 2015-12-05 graph converted by torch-fidelity).
FID_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + FID_WEIGHTS_FILE
)

_BUILD_LOCK = threading.Lock()


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """Fréchet distance between Gaussians ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    ``‖mu1 - mu2‖² + tr(sigma1) + tr(sigma2) - 2·tr((sigma1·sigma2)^½)``, in float64; the trace
    of the matrix square root is the sum of the square roots of the eigenvalues of
    ``sigma1·sigma2`` (real parts; the formulation torchmetrics uses). Accepts tensors or numpy
    arrays (e.g. precomputed FID statistics). torchmetrics has no public function for this
    (only the private ``_compute_fid``), hence this helper.
    """

    def t(a: Any) -> Tensor:
        return torch.as_tensor(a).detach().to("cpu", torch.float64)

    m1, s1, m2, s2 = t(mu1), t(sigma1), t(mu2), t(sigma2)
    square = (m1.numel(), m1.numel())
    if m1.dim() != 1 or m1.shape != m2.shape or s1.shape != square or s2.shape != square:
        raise ValueError(
            f"frechet_distance: means must be [D] and covariances [D, D]; got {tuple(m1.shape)}, "
            f"{tuple(s1.shape)}, {tuple(m2.shape)}, {tuple(s2.shape)}"
        )
    tr_sqrt = torch.linalg.eigvals(s1 @ s2).sqrt().real.sum()
    return float((m1 - m2).square().sum() + s1.trace() + s2.trace() - 2 * tr_sqrt)


def _fid_weights_path(weights: str | None) -> Path:
    name = "FID Inception v3 weights"
    path = resolve_weights(name, weights, filename=FID_WEIGHTS_FILE, url_hint=FID_WEIGHTS_URL)
    if path is None:  # nothing on disk; resolve_weights would let a library download: we never do
        raise WeightsNotFoundError(
            f"{name}: no local file, and synth never downloads FID weights. Put "
            f"{FID_WEIGHTS_FILE} at {str(weights_dir() / FID_WEIGHTS_FILE)!r}, or pass "
            f'weights="/path/to/{FID_WEIGHTS_FILE}" in the config. Download it from '
            f"{FID_WEIGHTS_URL}. The cache folder is $SYNTH_HOME/weights (SYNTH_HOME defaults "
            "to ~/.cache/synth)."
        )
    return path


def _fid_packages() -> tuple[ModuleType, ModuleType]:
    """torch-fidelity's Inception module and torchmetrics' FID module (extra ``[metrics]``)."""
    who = "synth.metrics.FID (core.fid)"
    tfi = require("torch_fidelity.feature_extractor_inceptionv3", extra="metrics", needed_by=who)
    tm_fid = require("torchmetrics.image.fid", extra="metrics", needed_by=who)
    return tfi, tm_fid


def _build_torchmetrics_fid(
    state: dict[str, Tensor], source: Path, *, feature: int, reset_real: bool, antialias: bool
) -> Any:
    """torchmetrics' FrechetInceptionDistance whose Inception holds ``state``.

    torch-fidelity's ``FeatureExtractorInceptionV3.__init__`` either downloads its weights
    (``load_state_dict_from_url`` when no path is given) or reads the given file with
    torch's loader with ``weights_only`` off, which unpickles whatever the file holds. Neither is acceptable, so
    no path is given and, for the duration of the construction, that module's
    ``load_state_dict_from_url`` is replaced by a function returning ``state`` (already read
    with :func:`synth.io.weights.read_state_dict`): nothing is downloaded and nothing is unpickled.
    """
    tfi, tm_fid = _fid_packages()
    if not hasattr(tfi, "load_state_dict_from_url"):
        raise RuntimeError(
            f"torch-fidelity {dist_version('torch-fidelity')} no longer builds its Inception through "
            "load_state_dict_from_url, so synth cannot give it weights without a download or "
            "an unpickling load; use torch-fidelity 0.3 or 0.4"
        )
    served: list[str] = []

    def serve(url: str, *args: Any, **kwargs: Any) -> dict[str, Tensor]:
        served.append(url)
        return state

    with _BUILD_LOCK:
        original = tfi.load_state_dict_from_url
        tfi.load_state_dict_from_url = serve
        try:
            fid = tm_fid.FrechetInceptionDistance(
                feature=feature,
                reset_real_features=reset_real,
                normalize=False,  # synth passes uint8 images it rounded itself
                antialias=antialias,
            )
        except RuntimeError as e:
            if "state_dict" not in str(e):
                raise
            detail = " ".join(str(e).split())[:600]
            raise ValueError(
                f"{str(source)!r} does not hold torch-fidelity's FID Inception v3 weights "
                f"({FID_WEIGHTS_FILE} from {FID_WEIGHTS_URL}): {detail}"
            ) from None
        finally:
            tfi.load_state_dict_from_url = original
    if not served:
        raise RuntimeError(
            "torch-fidelity built its Inception without asking for weights; refusing to use "
            "a network whose weights synth did not supply"
        )
    fid.inception.load_state_dict(state)  # strict; the weights are exactly the file's
    return fid


class FID(Metric):
    """Fréchet Inception Distance (Heusel et al. 2017) between real and generated images.

    Wraps torchmetrics' ``FrechetInceptionDistance`` (torch-fidelity's Inception v3, the
    TensorFlow FID graph converted to PyTorch): features of the ``feature`` layer (2048: the
    pool3 features of the reference FID), float64 statistics, ``‖μ_r - μ_g‖² + tr(Σ_r + Σ_g -
    2(Σ_r Σ_g)^½)``.

    Weights: ``weights`` is the path to ``weights-inception-2015-12-05-6726825d.pth``; when
    ``None`` the file is looked up in ``$SYNTH_HOME/weights/`` (default
    ``~/.cache/synth/weights/``). If it is not there, a :class:`~synth.WeightsNotFoundError`
    names the file and where to put it: synth never downloads it and never uses a random
    Inception (an FID from random features is meaningless). The file is read with
    :func:`synth.io.weights.read_state_dict` (``weights_only=True``, or safetensors/npz) and handed
    to torch-fidelity directly, so nothing is unpickled.

    Images: ``update(images [B, 3, H, W] in [-1, 1], real=...)``; they are mapped to uint8 as
    when saved to PNG (``round((x + 1)·127.5)``, clamped) and resized to 299×299 inside the
    network: by torch-fidelity's TensorFlow-1.x-compatible bilinear resize (as the reference
    FID; ``antialias=False``, the default) or by antialiased bilinear resizing
    (``antialias=True``, torchmetrics' default). ``reset_real_features=False`` keeps the real
    statistics across ``reset()``.
    """

    class Config(PartConfig):
        weights: str | None = Field(
            None, description=f"path to {FID_WEIGHTS_FILE} (None: $SYNTH_HOME/weights/)"
        )
        feature: Literal[64, 192, 768, 2048] = 2048
        reset_real_features: bool = True
        antialias: bool = Field(
            False, description="antialiased resize to 299 instead of the reference TF1 resize"
        )

        @field_validator("weights")
        @classmethod
        def _no_random(cls, v: str | None) -> str | None:
            if v is not None and v.strip().lower() in {"none", "random", ""}:
                raise ValueError(
                    f"weights={v!r}: FID needs the real Inception weights (an FID from a random "
                    f"network is meaningless); give the path to {FID_WEIGHTS_FILE} or leave "
                    "weights unset to use $SYNTH_HOME/weights/"
                )
            return v

    config: Config
    _fake_sizes: set[tuple[int, int]]
    _real_sizes: set[tuple[int, int]]

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        c = self.config
        _fid_packages()  # a missing extra is the first thing to hear of
        self.weights_path = _fid_weights_path(c.weights)
        state = read_state_dict(self.weights_path)
        self._fid = _build_torchmetrics_fid(
            state,
            self.weights_path,
            feature=c.feature,
            reset_real=c.reset_real_features,
            antialias=c.antialias,
        )
        self._sha256: str | None = None
        # image sizes seen, {real: sizes}: the real ones outlive reset() with the real statistics
        self.add_state("_fake_sizes", set())
        if c.reset_real_features:
            self.add_state("_real_sizes", set())
        else:
            self._real_sizes = set()

    def reset(self) -> None:
        """Forget the generated images' statistics, and the real ones unless
        ``reset_real_features=False`` (torchmetrics' metric keeps them then)."""
        super().reset()
        self._fid.reset()

    def to(self, device: torch.device | str) -> FID:
        self._fid.to(device)
        return self

    def example_inputs(
        self, *, batch_size: int, size: tuple[int, int], generator: torch.Generator
    ) -> dict[str, Any]:
        """Conformance-kit inputs: ``batch_size`` real and ``batch_size`` generated images."""
        b = max(batch_size, 2)
        real = torch.rand(b, 3, *size, generator=generator) * 2 - 1
        fake = torch.tanh(torch.randn(b, 3, *size, generator=generator))
        return {"updates": [{"images": real, "real": True}, {"images": fake, "real": False}]}

    @staticmethod
    def to_uint8(images: Tensor) -> Tensor:
        """``[-1, 1]`` floats -> ``uint8`` in ``[0, 255]`` (rounded, clamped; as saving a PNG)."""
        return ((images.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)

    @torch.no_grad()
    def update(self, images: Tensor, real: bool) -> None:
        """Add real (``real=True``) or generated images ``[B, 3, H, W]`` in ``[-1, 1]``."""
        check_images("core.fid", images, "images")
        if images.device != self._fid.device:
            self._fid.to(images.device)
        self._fid.update(self.to_uint8(images), real=bool(real))
        sizes = self._real_sizes if real else self._fake_sizes
        sizes.add((int(images.shape[-2]), int(images.shape[-1])))

    def compute(self) -> dict[str, Any]:
        """``{"fid", "num_real", "num_fake", "settings"}``."""
        fid = self._fid
        num_real = int(fid.real_features_num_samples)
        num_fake = int(fid.fake_features_num_samples)
        if num_real < 2 or num_fake < 2:
            raise ValueError(
                f"core.fid needs at least 2 real and 2 generated images (covariances), got "
                f"{num_real} real and {num_fake} generated; FID is only comparable between "
                "runs with the same, large number of images (e.g. 10k-50k)"
            )
        value = float(fid.compute())
        return {
            "fid": value,
            "num_real": num_real,
            "num_fake": num_fake,
            "settings": self._settings(),
        }

    def _settings(self) -> dict[str, Any]:
        """How the number was measured: weights file and hash, layer, sizes, implementation."""
        if self._sha256 is None:
            self._sha256 = file_sha256(self.weights_path)
        sizes = sorted(self._real_sizes | self._fake_sizes)
        resize = (
            "bilinear, antialiased (torch.nn.functional.interpolate)"
            if self.config.antialias
            else "bilinear, TensorFlow 1.x compatible (torch-fidelity)"
        )
        return {
            "weights": str(self.weights_path),
            "sha256": self._sha256,
            "feature": self.config.feature,
            "resolution": list(sizes[0]) if len(sizes) == 1 else [list(s) for s in sizes],
            "inception_input": [299, 299],
            "resize": resize,
            "quantization": "uint8, round((x + 1) * 127.5)",
            "implementation": (
                f"torchmetrics {dist_version('torchmetrics')} / torch-fidelity "
                f"{dist_version('torch-fidelity')}"
            ),
        }
