"""``core.identity_recovery``: the nested-scale paper's shortest distance and recovery count."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import torch
from pydantic import Field
from torch import Tensor

from ..config import PartConfig, PartSpec
from ..nn.backbones import WHEEL_BACKBONE
from ..outputs import SynthesisOutput
from ..parts.base import Loss, Metric
from ..parts.losses import LPIPS, LPIPSConfig, Perceptual
from .diversity import distance_description, distance_weights_info
from .inputs import check_images

if TYPE_CHECKING:
    from ..model import SynthesisModel
    from ..parts.samplers import BestOfN

__all__ = ["IdentityRecovery"]


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
      percentages to 100 (as in the paper's Tables 1–3, whose rows sum to 100); counts are
      therefore floats. Distances within ``tie_tolerance`` of an input's smallest one tie with
      it (default 0: exact equality, e.g. the same model entered twice); ``"ties"`` is the
      number of inputs where two or more models tied.

    Every model must be evaluated on the same inputs in the same order (``compute`` checks the
    counts and raises if they differ). ``update`` takes, for one ``name``:

    - a :class:`~synth.SynthesisModel` with ``cond`` and ``target``: runs
      ``model.sample(cond, n, sampler=core.best_of_n(distance, batch_size), target=target,
      generator=generator)`` and records ``extras["distance"]``;
    - samples already drawn, with ``target``: a Tensor ``[B, n, 3, H, W]`` or a sampler's
      :class:`~synth.SynthesisOutput` (``image [B·n, 3, H, W]`` ordered ``(b n)``), scored
      against ``target`` with the ``distance`` part (so the samples a diversity metric saw can
      be ranked too);
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
        tie_tolerance: float = Field(
            0.0, ge=0, description="distances this close to an input's smallest one tie with it"
        )

    config: Config
    _dist: dict[str, list[Tensor]]  # model name -> shortest distances [B] of each update
    _source: dict[str, str]  # model name -> "sampled", "ranked", "given" or "mixed"
    _size: tuple[int, int] | None

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._sampler: BestOfN | None = None  # built on first use; reset() keeps it
        self.add_state("_dist", {})
        self.add_state("_source", {})
        self.add_state("_size", None)

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
        who = "core.identity_recovery"
        d, how = self._shortest(source, cond, target, generator)
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

    def _shortest(
        self,
        source: SynthesisModel | SynthesisOutput | Tensor,
        cond: Any,
        target: Tensor | None,
        generator: torch.Generator | None,
    ) -> tuple[Tensor, str]:
        """Shortest distances ``[B]`` of ``source`` and how they came: "sampled" (drawn here),
        "ranked" (given samples scored here) or "given"."""
        from ..model import SynthesisModel

        who = "core.identity_recovery"
        if isinstance(source, SynthesisModel):
            if cond is None or target is None:
                raise ValueError(
                    f"{who}: to evaluate a model, pass its inputs and ground truth: "
                    "update(model, cond, target, name=...) with target [B, 3, H, W] in [-1, 1]"
                )
            check_images(who, target, "target")
            out = source.sample(
                cond,
                self.config.n,
                sampler=self.sampler(source),
                generator=generator,
                target=target,
            )
            return out.extras["distance"], "sampled"
        if isinstance(source, SynthesisOutput):
            if "distance" in source.extras or target is None:
                return self._from_output(source), "given"
            return self.rank(source.image, target), "ranked"
        if isinstance(source, Tensor) and source.dim() == 5:
            return self.rank(source, target), "ranked"
        if isinstance(source, Tensor):
            return source, "given"
        raise TypeError(
            f"{who}: update takes a SynthesisModel, a SynthesisOutput (best-of-n, or samples "
            "with target=), samples [B, n, 3, H, W] with target=, or a Tensor [B] of shortest "
            f"distances, not {type(source).__name__}"
        )

    @torch.no_grad()
    def rank(self, samples: Tensor, target: Tensor | None) -> Tensor:
        """Shortest ``distance`` of each input's samples to its target: ``[B]``.

        ``samples``: ``[B, n, 3, H, W]`` or ``[B·n, 3, H, W]`` ordered ``(b n)`` (``n`` from the
        config); ``target``: ``[B, 3, H, W]`` in ``[-1, 1]`` at the samples' size.
        """
        who, n = "core.identity_recovery", self.config.n
        if target is None:
            raise ValueError(
                f"{who}: to rank samples, pass their ground truth: update(samples, "
                "target=images [B, 3, H, W], name=...)"
            )
        check_images(who, target, "target")
        flat = samples.flatten(0, 1) if samples.dim() == 5 else samples
        check_images(who, flat, "samples")
        b = target.shape[0]
        if flat.shape[0] != b * n or flat.shape[-2:] != target.shape[-2:]:
            raise ValueError(
                f"{who}: samples {tuple(samples.shape)} are not n={n} per target image of "
                f"{tuple(target.shape)}: give [B, n, 3, H, W] (or [B·n, 3, H, W]) at the "
                "targets' size"
            )
        dist = self.sampler().distance_part().to(target.device)
        target_n = target.repeat_interleave(n, dim=0)
        step = self.config.batch_size or flat.shape[0]
        d = torch.cat(
            [
                dist.distance(flat[i : i + step], target_n[i : i + step]).float()
                for i in range(0, flat.shape[0], step)
            ]
        )
        return d.reshape(b, n).min(1).values

    def _from_output(self, out: SynthesisOutput) -> Tensor:
        """``extras["distance"]`` of a ``core.best_of_n`` output that ranked ``n`` samples."""
        who, n = "core.identity_recovery", self.config.n
        if "distance" not in out.extras:
            raise ValueError(
                f"{who}: this SynthesisOutput has no extras['distance']; pass the output "
                "of core.best_of_n, samples with target= (to rank them), a model, or a Tensor "
                "[B] of shortest distances"
            )
        all_d = out.extras.get("distances")
        if isinstance(all_d, Tensor) and all_d.dim() == 2 and all_d.shape[1] != n:
            raise ValueError(
                f"{who}: this best-of-n output ranked {all_d.shape[1]} samples per input "
                f"but the metric is configured with n={n}"
            )
        return out.extras["distance"]

    def _distance_net(self) -> tuple[str, str, str] | None:
        """``(net, weights, version)`` when the distance this metric ran is LPIPS or the
        feature distance on the wheel's backbone (``None`` otherwise, or when it ran none)."""
        part: Loss | None = None if self._sampler is None else self._sampler._distance
        if isinstance(part, LPIPS):
            return part.config.net, part.config.weights, part.config.version
        if isinstance(part, Perceptual) and part.config.backbone == WHEEL_BACKBONE:
            return WHEEL_BACKBONE, part.config.weights, ""
        return None

    def _weights_info(self) -> str | dict[str, Any] | None:
        """Weights of the LPIPS (or wheel-backbone) distance this metric ran (None if none)."""
        net = self._distance_net()
        return None if net is None else distance_weights_info(*net[:2])

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
        wins = d <= d.min(0, keepdim=True).values + self.config.tie_tolerance  # ties all win
        share = wins.double() / wins.sum(0, keepdim=True)  # ... a 1/k share each
        count = share.sum(1)
        net = self._distance_net()
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
            "ties": int((wins.sum(0) > 1).sum()),
            "settings": {
                "n": self.config.n,
                "distance": spec,
                "distance_description": None if net is None else distance_description(*net),
                "weights": self._weights_info(),
                "resolution": list(self._size) if self._size else None,
                "sources": dict(self._source),
                "ties": "split evenly",
                "tie_tolerance": self.config.tie_tolerance,
            },
        }
