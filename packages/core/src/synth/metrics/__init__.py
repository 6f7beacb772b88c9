"""Core metrics (DESIGN §3 kind ``metric``, §6): LPIPS diversity, identity recovery, FID.

Every metric accumulates with ``update(...)``, returns ``compute() -> dict`` with its values and
a ``"settings"`` entry (backbone, weights file and its SHA-256, resolution, ``n``) so a number can
be traced to how it was measured, and forgets its state with ``reset()`` (the networks are kept).

- :class:`LPIPSDiversity` (``core.lpips_diversity``): mean pairwise LPIPS over the samples of
  each input, averaged over inputs — the "Diversity" / "LPIPS" column of multimodal synthesis
  papers (BicycleGAN, MSGAN, NDiv, nested-scale, cIMLE).
- :class:`IdentityRecovery` (``core.identity_recovery``): the nested-scale paper's "Shortest
  Distance" (closest of ``n`` samples to the ground truth, averaged) and "Recovery Count"
  (for how many inputs each compared model has the closest sample).
- :class:`FID` (``core.fid``): Fréchet Inception Distance through torchmetrics'
  ``FrechetInceptionDistance`` on torch-fidelity's Inception v3, with a user-supplied weights
  file (never downloaded, never random), read without unpickling.

Metrics are not ``nn.Module``s; their networks follow the device of the tensors given to
``update`` (or call ``metric.to(device)``). All updates run under ``torch.no_grad()``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from pydantic import Field, field_validator
from torch import Tensor

from ..config import PartConfig, PartSpec
from ..errors import WeightsNotFoundError
from ..io.weights import read_state_dict, resolve_weights, weights_dir
from ..outputs import SynthesisOutput
from ..parts.base import Loss, Metric
from ..parts.losses import LPIPS, LPIPSConfig

if TYPE_CHECKING:
    from ..model import SynthesisModel
    from ..parts.samplers import BestOfN

__all__ = [
    "FID",
    "FID_WEIGHTS_FILE",
    "FID_WEIGHTS_URL",
    "IdentityRecovery",
    "LPIPSDiversity",
    "file_sha256",
    "frechet_distance",
    "lpips_weights_info",
]


# --------------------------------------------------------------------------- helpers


@functools.lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file, cached while its size and modification time stay the same."""
    p = Path(path).expanduser().resolve()
    st = p.stat()
    return _sha256(str(p), st.st_size, st.st_mtime_ns)


def lpips_weights_info(net: str, weights: str) -> str | dict[str, Any]:
    """Which trunk weights file an LPIPS part built with ``net``/``weights`` reads.

    Follows the lookup of :class:`synth.parts.losses.LPIPS` (explicit file → ``$SYNTH_HOME/weights``
    → torch hub's cache, where a permitted download puts it). Returns ``"none"`` for a random
    trunk, else ``{"file": path, "sha256": hex}`` (``file`` ``None`` and the ``url`` when the
    file cannot be found on disk).
    """
    if weights == "none":
        return "none"
    from torchvision.models import get_model_weights

    from ..parts.losses import _LPIPS_TRUNKS

    url = get_model_weights(_LPIPS_TRUNKS[net]).IMAGENET1K_V1.url
    filename = url.rsplit("/", 1)[-1]
    try:
        path = resolve_weights(
            f"LPIPS {net} trunk",
            None if weights == "imagenet" else weights,
            filename=filename,
            url_hint=url,
        )
    except WeightsNotFoundError:
        path = None
    if path is None:
        hub = Path(torch.hub.get_dir()) / "checkpoints" / filename
        path = hub if hub.is_file() else None
    if path is None:
        return {"file": None, "sha256": None, "url": url}
    return {"file": str(path), "sha256": file_sha256(path)}


def _dist_version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _check_images(who: str, x: Tensor, what: str) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{who}: {what} must be RGB images [B, 3, H, W] in [-1, 1], got {shape}")
    if x.shape[0] and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{who}: {what} contain NaN or Inf values")


# --------------------------------------------------------------------------- LPIPS diversity

#: Rough floats kept per pixel per image pair by one LPIPS forward (features of both images,
#: their normalised copies and differences), used to size chunks to ``memory_budget_mb``.
_LPIPS_FLOATS_PER_PIXEL = {"alex": 96, "squeeze": 256, "vgg": 1024}


class LPIPSDiversity(Metric):
    """Mean pairwise LPIPS between the samples of each input (higher = more diverse).

    For each input with ``N`` samples, the LPIPS distance of every unordered pair ``i < j``
    (``N(N-1)/2`` pairs) is averaged; ``compute()`` averages these per-input means over all
    inputs (``"lpips_diversity"``) and gives their standard deviation (``"std"``, over inputs,
    ddof 0). The pairs of all inputs of one ``update`` are built with ``torch.triu_indices``,
    gathered and scored by batched LPIPS calls of at most ``pairs_per_batch`` pairs (default:
    as many as fit in about ``memory_budget_mb``) — no Python loop over pairs or inputs.

    ``max_pairs`` caps the pairs scored per input: when ``N(N-1)/2`` is larger, ``max_pairs``
    pairs evenly spaced in ``triu`` order are used (deterministic; every sample still takes
    part in about the same number of pairs).

    The distance is the ``core.lpips`` loss part (:class:`synth.parts.losses.LPIPS`, the lpips
    package's network and linear layers) with the same weights policy: ``weights="imagenet"``
    (torchvision's trunk file, explicit → cache → download unless ``SYNTH_OFFLINE=1``), a file
    path, or ``"none"`` (a random trunk, for tests).
    """

    class Config(PartConfig):
        net: Literal["alex", "vgg", "squeeze"] = "alex"
        weights: str = "imagenet"
        version: str = Field("0.1", description="LPIPS linear-layer version")
        max_pairs: int | None = Field(None, ge=1, description="pairs scored per input at most")
        pairs_per_batch: int | None = Field(
            None, ge=1, description="pairs per LPIPS forward (default: from memory_budget_mb)"
        )
        memory_budget_mb: float = Field(
            1024.0, gt=0, description="approximate memory one LPIPS forward may use"
        )

    config: Config

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        c = self.config
        self.lpips = LPIPS(net=c.net, weights=c.weights, version=c.version)
        self._weights_info: str | dict[str, Any] | None = None
        self._clear()

    def _clear(self) -> None:
        self._means: list[Tensor] = []
        self._n: int | None = None
        self._size: tuple[int, int] | None = None
        self._pairs: int | None = None

    def reset(self) -> None:
        """Forget the accumulated per-input means (the LPIPS network is kept)."""
        self._clear()

    def to(self, device: torch.device | str) -> LPIPSDiversity:
        self.lpips.to(device)
        return self

    def example_inputs(
        self, *, batch_size: int, size: tuple[int, int], generator: torch.Generator
    ) -> dict[str, Any]:
        """Conformance-kit inputs: one ``[B, N, 3, H, W]`` update and one flat ``(b n)`` one."""
        n = 3
        grouped = torch.tanh(torch.randn(batch_size, n, 3, *size, generator=generator))
        flat = torch.tanh(torch.randn(batch_size * n, 3, *size, generator=generator))
        return {"updates": [{"samples": grouped}, {"samples": flat, "n": n}]}

    def _grouped(self, samples: Tensor, n: int | None) -> Tensor:
        who = "core.lpips_diversity"
        if not isinstance(samples, Tensor):
            raise TypeError(f"{who}: samples must be a Tensor, got {type(samples).__name__}")
        if samples.dim() == 4:
            if n is None:
                raise ValueError(
                    f"{who}: samples {tuple(samples.shape)} are flat [B·N, 3, H, W]; pass n= "
                    "(samples per input, ordered (b n) as samplers return them) or give "
                    "[B, N, 3, H, W]"
                )
            if n < 1 or samples.shape[0] % n:
                raise ValueError(
                    f"{who}: {samples.shape[0]} samples cannot be split into groups of n={n}"
                )
            samples = samples.reshape(samples.shape[0] // n, n, *samples.shape[1:])
        elif samples.dim() == 5:
            if n is not None and n != samples.shape[1]:
                raise ValueError(
                    f"{who}: n={n} but samples {tuple(samples.shape)} hold {samples.shape[1]} "
                    "samples per input"
                )
        else:
            raise ValueError(
                f"{who}: samples must be [B, N, 3, H, W] (or [B·N, 3, H, W] with n=), got "
                f"{tuple(samples.shape)}"
            )
        if samples.shape[2] != 3:
            raise ValueError(f"{who}: LPIPS needs RGB samples, got {samples.shape[2]} channels")
        if samples.shape[1] < 2:
            raise ValueError(
                f"{who}: diversity needs at least 2 samples per input, got {samples.shape[1]}"
            )
        if not bool(torch.isfinite(samples).all()):
            raise ValueError(f"{who}: samples contain NaN or Inf values")
        return samples

    def pair_indices(self, n: int, device: torch.device | str = "cpu") -> Tensor:
        """``[2, P]`` sample indices ``(i, j)``, ``i < j``, of the pairs scored per input."""
        iu = torch.triu_indices(n, n, offset=1, device=device)
        m = self.config.max_pairs
        if m is not None and iu.shape[1] > m:
            keep = torch.linspace(0, iu.shape[1] - 1, m, device=device).round().long()
            iu = iu[:, keep]
        return iu

    def _chunk(self, h: int, w: int) -> int:
        if self.config.pairs_per_batch is not None:
            return self.config.pairs_per_batch
        per_pair = _LPIPS_FLOATS_PER_PIXEL[self.config.net] * h * w * 4
        return max(1, int(self.config.memory_budget_mb * 2**20 // per_pair))

    @torch.no_grad()
    def per_input(self, samples: Tensor, n: int | None = None) -> Tensor:
        """Mean pairwise LPIPS of each input's samples: ``[B]`` (float32), nothing recorded."""
        x = self._grouped(samples, n)
        b, k, c, h, w = x.shape
        self.lpips.to(x.device)
        iu = self.pair_indices(k, x.device)  # [2, P]
        p = iu.shape[1]
        base = torch.arange(b, device=x.device)[:, None] * k  # [B, 1]
        first = (base + iu[0]).reshape(-1)  # [B·P], ordered (b p)
        second = (base + iu[1]).reshape(-1)
        flat = x.reshape(b * k, c, h, w).float()
        step = self._chunk(h, w)
        d = torch.cat(
            [
                self.lpips.distance(flat[first[s : s + step]], flat[second[s : s + step]])
                for s in range(0, b * p, step)
            ]
        )
        return d.float().reshape(b, p).mean(1)

    def update(self, samples: Tensor, n: int | None = None) -> None:
        """Add inputs: ``samples [B, N, 3, H, W]`` in [-1, 1] (or ``[B·N, 3, H, W]``, ``n=N``)."""
        x = self._grouped(samples, n)
        k, size = int(x.shape[1]), (int(x.shape[-2]), int(x.shape[-1]))
        if self._n is not None and (k, size) != (self._n, self._size):
            raise ValueError(
                f"core.lpips_diversity: this update has n={k} samples of size {size} per input "
                f"but earlier ones had n={self._n}, size {self._size}; one result needs one "
                "setting (call reset() or use another metric)"
            )
        means = self.per_input(x)
        self._n, self._size = k, size
        self._pairs = int(self.pair_indices(k).shape[1])
        self._means.append(means.detach().double().cpu())

    def compute(self) -> dict[str, Any]:
        """``{"lpips_diversity", "std", "num_inputs", "settings"}``."""
        if not self._means:
            raise ValueError("core.lpips_diversity: nothing to compute; call update(samples) first")
        m = torch.cat(self._means)
        if self._weights_info is None:
            self._weights_info = lpips_weights_info(self.config.net, self.config.weights)
        return {
            "lpips_diversity": float(m.mean()),
            "std": float(m.std(correction=0)),
            "num_inputs": int(m.numel()),
            "settings": {
                "net": self.config.net,
                "weights": self._weights_info,
                "lpips_version": self.config.version,
                "lpips_package": _dist_version("lpips"),
                "resolution": list(self._size) if self._size else None,
                "n": self._n,
                "pairs_per_input": self._pairs,
            },
        }


# --------------------------------------------------------------------------- identity recovery


class IdentityRecovery(Metric):
    """Identity recovery of diverse sampling (nested-scale paper, §4.1 "Identity Recovery").

    For each test input, ``n`` samples are drawn and the distance from the closest one to the
    ground truth is kept (best-of-n, ``core.best_of_n`` with the ``distance`` loss, LPIPS by
    default as in the paper). ``compute()`` returns per compared model (``name``):

    - ``"shortest_distance"``: the mean of that closest distance over inputs (lower = better);
    - ``"recovery_count"``: for how many inputs this model's closest sample is the closest of
      all models; ``"recovery_percent"`` the same in percent of the inputs (the paper's
      "Recovery Count (%)"). **Ties are split evenly**: an input where ``k`` models reach the
      same smallest distance adds ``1/k`` to each, so counts sum to the number of inputs and
      percentages to 100 (as in the paper's tables); counts are therefore floats.

    Every model must be evaluated on the same inputs in the same order (``compute`` checks the
    counts and raises if they differ). ``update`` takes, for one ``name``:

    - a :class:`~synth.SynthesisModel` with ``cond`` and ``target``: runs
      ``model.sample(cond, n, sampler=core.best_of_n(distance, batch_size), target=target,
      generator=generator)`` and records ``extras["distance"]``;
    - a ``core.best_of_n`` :class:`~synth.SynthesisOutput` (its ``extras["distance"]``);
    - precomputed per-input shortest distances, a Tensor ``[B]``.
    """

    class Config(PartConfig):
        n: int = Field(10, ge=1, description="samples drawn per input")
        distance: PartSpec = Field(
            default_factory=lambda: {"type": "core.lpips"},
            description="image distance loss ranking samples against the ground truth",
        )
        batch_size: int | None = Field(
            None, ge=1, description="generator/distance passes of at most this many images"
        )

    config: Config

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._sampler: BestOfN | None = None
        self._clear()

    def _clear(self) -> None:
        self._dist: dict[str, list[Tensor]] = {}
        self._source: dict[str, str] = {}
        self._size: tuple[int, int] | None = None

    def reset(self) -> None:
        """Forget recorded distances (the sampler and its distance network are kept)."""
        self._clear()

    def to(self, device: torch.device | str) -> IdentityRecovery:
        if self._sampler is not None and self._sampler._distance is not None:
            self._sampler._distance.to(device)
        return self

    def example_inputs(
        self, *, batch_size: int, size: tuple[int, int], generator: torch.Generator
    ) -> dict[str, Any]:
        """Conformance-kit inputs: precomputed shortest distances of two models, two updates."""
        updates = []
        for _ in range(2):
            for name in ("a", "b"):
                d = torch.rand(batch_size, generator=generator)
                updates.append({"source": d, "name": name})
        return {"updates": updates}

    def sampler(self, model: SynthesisModel | None = None) -> BestOfN:
        """The ``core.best_of_n`` sampler used for models (built on first use, then kept)."""
        if self._sampler is None:
            from ..registry import get_registry

            registry = getattr(model, "_registry", None) or get_registry()
            self._sampler = registry.build(
                {
                    "type": "core.best_of_n",
                    "distance": self.config.distance,
                    "batch_size": self.config.batch_size,
                }
            )
        return self._sampler

    def _record_size(self, target: Tensor | None) -> None:
        if target is None:
            return
        size = (int(target.shape[-2]), int(target.shape[-1]))
        if self._size is not None and size != self._size:
            raise ValueError(
                f"core.identity_recovery: targets of size {size} after ones of size "
                f"{self._size}; evaluate every model at one resolution"
            )
        self._size = size

    def update(
        self,
        source: SynthesisModel | SynthesisOutput | Tensor,
        cond: Any = None,
        target: Tensor | None = None,
        *,
        name: str = "model",
        generator: torch.Generator | None = None,
    ) -> None:
        """Record the shortest distances of ``name`` on a batch of inputs (see the class doc)."""
        from ..model import SynthesisModel

        who = "core.identity_recovery"
        n = self.config.n
        if isinstance(source, SynthesisModel):
            if cond is None or target is None:
                raise ValueError(
                    f"{who}: to evaluate a model, pass its inputs and ground truth: "
                    "update(model, cond, target, name=...) with target [B, 3, H, W] in [-1, 1]"
                )
            _check_images(who, target, "target")
            out = source.sample(
                cond, n, sampler=self.sampler(source), generator=generator, target=target
            )
            d, how = out.extras["distance"], "sampled"
        elif isinstance(source, SynthesisOutput):
            if "distance" not in source.extras:
                raise ValueError(
                    f"{who}: this SynthesisOutput has no extras['distance']; pass the output "
                    "of core.best_of_n, a model, or a Tensor [B] of shortest distances"
                )
            d, how = source.extras["distance"], "given"
            all_d = source.extras.get("distances")
            if isinstance(all_d, Tensor) and all_d.dim() == 2 and all_d.shape[1] != n:
                raise ValueError(
                    f"{who}: this best-of-n output ranked {all_d.shape[1]} samples per input "
                    f"but the metric is configured with n={n}"
                )
        elif isinstance(source, Tensor):
            d, how = source, "given"
        else:
            raise TypeError(
                f"{who}: update takes a SynthesisModel, a core.best_of_n SynthesisOutput or a "
                f"Tensor [B] of shortest distances, not {type(source).__name__}"
            )
        if d.dim() != 1:
            raise ValueError(
                f"{who}: shortest distances must be one per input, [B], got {tuple(d.shape)}"
            )
        if target is not None:
            if target.shape[0] != d.shape[0]:
                raise ValueError(
                    f"{who}: {d.shape[0]} distances for {target.shape[0]} target images"
                )
            self._record_size(target)
        if not bool(torch.isfinite(d).all()):
            raise ValueError(f"{who}: distances for {name!r} contain NaN or Inf")
        self._dist.setdefault(name, []).append(d.detach().double().cpu())
        prev = self._source.get(name)
        self._source[name] = how if prev in (None, how) else "mixed"

    def _weights_info(self) -> str | dict[str, Any] | None:
        """Trunk weights of the LPIPS distance this metric ran (None if it ran none)."""
        part: Loss | None = None if self._sampler is None else self._sampler._distance
        if isinstance(part, LPIPS):
            return lpips_weights_info(part.config.net, part.config.weights)
        return None

    def compute(self) -> dict[str, Any]:
        """``{"shortest_distance", "recovery_count", "recovery_percent", "num_inputs",
        "settings"}``; the first three map each model name to its value."""
        who = "core.identity_recovery"
        if not self._dist:
            raise ValueError(f"{who}: nothing to compute; call update(...) for each model first")
        per = {k: torch.cat(v) for k, v in self._dist.items()}
        counts = {k: int(v.numel()) for k, v in per.items()}
        if len(set(counts.values())) > 1:
            raise ValueError(
                f"{who}: models were evaluated on different numbers of inputs {counts}; "
                "evaluate every model on the same inputs, in the same order"
            )
        names = list(per)
        d = torch.stack([per[k] for k in names])  # [M, I]
        num = d.shape[1]
        wins = d == d.min(0, keepdim=True).values  # ties: every closest model wins
        share = wins.double() / wins.sum(0, keepdim=True)  # ... a 1/k share each
        count = share.sum(1)
        spec = dict(self.config.distance)
        if spec.get("type") == "core.lpips":  # record the defaults in force too
            with contextlib.suppress(ValueError):
                cfg = LPIPSConfig(**{k: v for k, v in spec.items() if k != "type"})
                spec = {"type": "core.lpips", **cfg.model_dump()}
        return {
            "shortest_distance": {k: float(d[i].mean()) for i, k in enumerate(names)},
            "recovery_count": {k: float(count[i]) for i, k in enumerate(names)},
            "recovery_percent": {k: 100.0 * float(count[i]) / num for i, k in enumerate(names)},
            "num_inputs": num,
            "settings": {
                "n": self.config.n,
                "distance": spec,
                "weights": self._weights_info(),
                "resolution": list(self._size) if self._size else None,
                "sources": dict(self._source),
                "ties": "split evenly",
            },
        }


# --------------------------------------------------------------------------- FID

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
    import torch_fidelity.feature_extractor_inceptionv3 as tfi
    from torchmetrics.image.fid import FrechetInceptionDistance

    if not hasattr(tfi, "load_state_dict_from_url"):
        import torch_fidelity

        raise RuntimeError(
            f"torch-fidelity {torch_fidelity.__version__} no longer builds its Inception through "
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
            fid = FrechetInceptionDistance(
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

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        c = self.config
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
        self._sizes: dict[bool, set[tuple[int, int]]] = {True: set(), False: set()}

    def reset(self) -> None:
        """Forget the generated images' statistics, and the real ones unless
        ``reset_real_features=False``."""
        self._fid.reset()
        self._sizes[False] = set()
        if self.config.reset_real_features:
            self._sizes[True] = set()

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
        _check_images("core.fid", images, "images")
        if images.device != self._fid.device:
            self._fid.to(images.device)
        self._fid.update(self.to_uint8(images), real=bool(real))
        self._sizes[bool(real)].add((int(images.shape[-2]), int(images.shape[-1])))

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
        if self._sha256 is None:
            self._sha256 = file_sha256(self.weights_path)
        import torch_fidelity
        import torchmetrics

        sizes = sorted(self._sizes[True] | self._sizes[False])
        resize = (
            "bilinear, antialiased (torch.nn.functional.interpolate)"
            if self.config.antialias
            else "bilinear, TensorFlow 1.x compatible (torch-fidelity)"
        )
        return {
            "fid": value,
            "num_real": num_real,
            "num_fake": num_fake,
            "settings": {
                "weights": str(self.weights_path),
                "sha256": self._sha256,
                "feature": self.config.feature,
                "resolution": list(sizes[0]) if len(sizes) == 1 else [list(s) for s in sizes],
                "inception_input": [299, 299],
                "resize": resize,
                "quantization": "uint8, round((x + 1) * 127.5)",
                "implementation": (
                    f"torchmetrics {torchmetrics.__version__} / torch-fidelity "
                    f"{torch_fidelity.__version__}"
                ),
            },
        }
