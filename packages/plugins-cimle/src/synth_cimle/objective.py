"""``cimle.imle``: conditional IMLE training (Algorithm 1), for any generator + injector.

How Algorithm 1 maps onto the core Trainer (which calls ``step`` once per batch from a
deterministic, resumable data order):

- **each Trainer batch is the outer batch S** (``TrainerConfig.batch_size = |S|``; the paper's
  SR setting is 640, layouts 400);
- for every input of S, ``num_codes`` (m) raw codes are drawn from the injector's prior,
  generated and scored with the distance; ``σ(i) = argmin_j L(T(x_i, z_ij), y_i)``; the chosen
  codes get the optional ``perturb · N(0, 1)`` (official SRIM: 0.1);
- then ``inner_steps`` (L) updates on mini-batches of ``minibatch`` (|S̃|) cached pairs, each
  minimising the model's generator losses (``cimle.distance``: ``Σ_{i∈S̃} L(ỹ_iσ(i), y_i)/|S̃|``).

All randomness of a step (codes, perturbation, mini-batches) comes from ``torch.Generator``s
seeded by ``(seed, Trainer step, rank, block)``, so the objective holds no state between steps:
a resumed run replays exactly (the Trainer restores weights and the data position), and under
DDP every rank selects codes for its own slice of S while the updater averages gradients.

Selection is batched: raw codes are drawn in blocks of ``draw_block`` inputs (memory for codes
is bounded; the draw does not depend on ``chunk_size``) and generator + distance passes run on
chunks of ``chunk_size`` candidates under ``no_grad`` (and the Trainer's autocast). The
target's backbone features are computed once per input and gathered for its candidates.

Hierarchical variant (``hierarchical=True``, generator with a ``pyramid`` and codes
``extras["cimle.code.k"]``): the code of ×2 stage k is chosen with the codes of stages < k
fixed to their chosen values, comparing ``pyramid[k]`` with the target area-downsampled to
its size — coarse to fine.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import Field
from torch import Tensor

from synth import Condition, Latents, Loss, LossInputs, PartConfig, TrainingObjective
from synth.objectives import weighted_losses

from .distance import CIMLEDistance, Target
from .generators import stage_code_key

if TYPE_CHECKING:
    from synth import SynthesisModel

__all__ = ["IMLE", "Selection", "select_codes"]

_MASK64 = (1 << 63) - 1


def _mix(*values: int) -> int:
    """A 63-bit seed from integers (splitmix64 chain)."""
    x = 0x9E3779B97F4A7C15
    for v in values:
        x = (x ^ (int(v) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x = (x ^ (x >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 29
    return x & _MASK64


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def draw_codes(injector: Any, cond: Condition, generator: torch.Generator | None) -> Latents:
    """Raw codes: ``injector.draw`` when it has one (cIMLE injectors), else its prior."""
    draw = getattr(injector, "draw", None)
    return draw(cond, generator) if draw is not None else injector.prior(cond, generator)


def codes_to_latents(injector: Any, cond: Condition, codes: Latents) -> Latents:
    """The generator's latents of raw codes (``injector.from_codes``; identity otherwise)."""
    fn = getattr(injector, "from_codes", None)
    return fn(cond, codes) if fn is not None else codes


class _Scorer:
    """Distance adapter: cIMLE's prepared-target path, or any ``Loss.distance`` as fallback."""

    def __init__(self, loss: Loss) -> None:
        self.loss = loss
        self.fast = isinstance(loss, CIMLEDistance)

    def prepare(self, real: Tensor, cond: Condition) -> Target:
        if self.fast:
            assert isinstance(self.loss, CIMLEDistance)
            return self.loss.prepare(real, self.loss.mask_for(real, cond))
        return Target(real, [], None)

    def score(self, x: Tensor, target: Target) -> Tensor:
        """``x: [N, 3, H, W]`` against ``target`` with N rows -> ``[N]``."""
        if self.fast:
            assert isinstance(self.loss, CIMLEDistance)
            return self.loss.distance_to(x, target)[:, 0]
        return self.loss.distance(x, target.image.to(x.dtype)).float()


def _resize_target(target: Target, scorer: _Scorer, size: tuple[int, int]) -> Target:
    """The target area-downsampled to ``size`` (hierarchical stages), features recomputed."""
    image = F.interpolate(target.image.float(), size=size, mode="area").to(target.image.dtype)
    mask = None if target.mask is None else F.adaptive_avg_pool2d(target.mask.float(), size)
    if scorer.fast:
        assert isinstance(scorer.loss, CIMLEDistance)
        return scorer.loss.prepare(image, mask)
    return Target(image, [], mask)


class Selection:
    """Result of :func:`select_codes`: chosen raw ``codes`` (batch B), ``index [B]`` (per
    stage for the hierarchical variant: ``index [B, K]``) and the chosen ``distance [B]``."""

    def __init__(self, codes: Latents, index: Tensor, distance: Tensor) -> None:
        self.codes, self.index, self.distance = codes, index, distance


def _blocks(b: int, size: int) -> Iterator[tuple[int, int]]:
    for s in range(0, b, size):
        yield s, min(s + size, b)


def select_codes(
    model: SynthesisModel,
    cond: Condition,
    real: Tensor,
    distance: Loss,
    num_codes: int,
    *,
    seed: int = 0,
    chunk_size: int = 64,
    draw_block: int = 64,
    hierarchical: bool = False,
    progress: bool = False,
) -> Selection:
    """``σ(i) = argmin_j L(T(x_i, z_ij), y_i)`` for every input (Algorithm 1, inner loop over S).

    Args:
        model: a composed model with ``generator`` and ``injector``.
        cond: ``B`` inputs; ``real``: their targets ``[B, 3, H, W]``.
        distance: an image distance (``cimle.distance`` uses the prepared-target fast path).
        num_codes: m, candidates per input.
        seed: codes of draw block j are drawn from ``Generator().manual_seed(mix(seed, j))``.
        chunk_size: candidates per generator + distance pass (the memory budget).
        draw_block: inputs whose ``B·m`` raw codes are drawn together.
        hierarchical: choose the code of each ×2 stage in turn (coarse to fine).
        progress: tqdm bar over the chunks.

    Runs under ``no_grad`` (wrap in autocast for mixed precision). Returns a :class:`Selection`.
    """
    if model.injector is None:
        raise ValueError("cimle.imle needs an injector (the codes' prior), e.g. cimle.spatial_code")
    m, b = int(num_codes), cond.batch_size
    scorer = _Scorer(distance)
    device = real.device
    n_stages = 1
    with torch.no_grad():
        target = scorer.prepare(real, cond)
        if hierarchical:
            probe = draw_codes(model.injector, cond[:1], torch.Generator(device=device))
            n_stages = sum(stage_code_key(k) in probe.extras for k in range(64))
            if n_stages == 0:
                raise ValueError(
                    "hierarchical cIMLE needs per-stage codes extras['cimle.code.k'] "
                    "(cimle.spatial_code with per_stage=True)"
                )
        n_chunks = n_stages * sum(-(-(e - s) * m // chunk_size) for s, e in _blocks(b, draw_block))
        from tqdm.auto import tqdm

        bar = tqdm(total=n_chunks, desc="imle select", disable=not progress, leave=False)
        chosen: list[Latents] = []
        best: list[Tensor] = []
        indices: list[Tensor] = []
        for j, (s, e) in enumerate(_blocks(b, draw_block)):
            cb, nb = cond[s:e], e - s
            cand_cond = cb.repeat_interleave(m)
            fixed: Latents | None = None
            stage_idx: list[Tensor] = []
            for k in range(n_stages):
                g = torch.Generator(device=device).manual_seed(_mix(seed, j, k))
                raw = draw_codes(model.injector, cand_cond, g)  # [(nb m)]
                if hierarchical and fixed is not None:
                    for kk in range(k):
                        key = stage_code_key(kk)
                        raw.extras[key] = fixed.extras[key].repeat_interleave(m, dim=0)
                tgt = target.index(torch.arange(s, e, device=device))
                dists = torch.empty(nb * m, device=device)
                for c0 in range(0, nb * m, chunk_size):
                    c1 = min(c0 + chunk_size, nb * m)
                    rows = torch.arange(c0, c1, device=device)
                    owner = torch.div(rows, m, rounding_mode="floor")
                    ccond = cand_cond[c0:c1]
                    lat = codes_to_latents(model.injector, ccond, raw[c0:c1])
                    out = model.generator(ccond, lat)
                    x = out.pyramid[k] if hierarchical and out.pyramid else out.image
                    t = tgt.index(owner)
                    if tuple(x.shape[-2:]) != tuple(t.image.shape[-2:]):
                        t = _resize_target(t, scorer, (x.shape[-2], x.shape[-1]))
                    dists[c0:c1] = scorer.score(x, t)
                    bar.update(1)
                d = rearrange(dists, "(b m) -> b m", m=m)
                val, idx = d.min(dim=1)
                flat = torch.arange(nb, device=device) * m + idx
                fixed = raw[flat]
                stage_idx.append(idx)
            assert fixed is not None
            chosen.append(fixed)
            best.append(val)
            indices.append(torch.stack(stage_idx, dim=1) if hierarchical else stage_idx[0])
        bar.close()
    return Selection(Latents.cat(chosen), torch.cat(indices), torch.cat(best))


def perturb_codes(codes: Latents, std: float, generator: torch.Generator) -> Latents:
    """``z + std · N(0, 1)`` on every floating-point code tensor (official SRIM: std 0.1)."""
    if std == 0:
        return codes

    def add(t: Tensor) -> Tensor:
        if not t.is_floating_point():
            return t
        noise = torch.randn(t.shape, generator=generator, device=t.device, dtype=torch.float32)
        return t + std * noise.to(t.dtype)

    return codes.map(add)


class IMLE(TrainingObjective):
    """Conditional IMLE (Algorithm 1; Li, Peng, Zhang & Malik). See the module docstring.

    One ``step`` = one outer round on the Trainer batch S: select codes (:func:`select_codes`)
    then ``inner_steps`` updates of ``generator`` and ``injector`` on mini-batches of the
    cached pairs. Logged: ``imle/distance`` (mean selected distance), ``g/<loss>`` (mean over
    the inner steps). Needs a loss with ``distance`` in the model (``distance`` names it; by
    default the first one that has it, e.g. ``cimle.distance``).
    """

    class Config(PartConfig):
        num_codes: int = Field(100, ge=1, description="m: codes drawn per input")
        inner_steps: int = Field(1, ge=1, description="L: updates per outer round")
        minibatch: int = Field(4, ge=1, description="|S̃|: cached pairs per update")
        perturb: float = Field(0.1, ge=0, description="std of the noise added to chosen codes")
        chunk_size: int = Field(64, ge=1, description="candidates per selection pass")
        draw_block: int = Field(64, ge=1, description="inputs whose codes are drawn together")
        hierarchical: bool = False
        distance: str | None = Field(None, description="name of the distance loss in the model")
        seed: int = 0
        progress: bool | None = None

    networks: ClassVar[tuple[str, ...]] = ("generator", "injector")
    config: Config

    def distance_loss(self, model: SynthesisModel) -> Loss:
        """The model loss used to rank candidates."""
        name = self.config.distance
        if name is not None:
            if name not in model.losses:
                raise ValueError(
                    f"cimle.imle: distance {name!r} is not a loss of the model "
                    f"({sorted(model.losses)})"
                )
            return model.losses[name]
        for loss in model.losses.values():
            if type(loss).distance is not Loss.distance:
                return loss
        raise ValueError(
            "cimle.imle needs an image distance among the model's losses: add e.g. "
            "`losses: {imle: {type: cimle.distance, preset: sr}}`"
        )

    def example_inputs(
        self, *, batch_size: int, size: tuple[int, int], generator: torch.Generator
    ) -> dict[str, Any]:
        """Conformance-kit inputs: the kit's tiny model with core.l1 as the distance."""
        from torch import nn

        from synth.losses import L1
        from synth.testing._tiny import TINY_NUM_CLASSES, tiny_model
        from synth.testing.inputs import make_condition, make_image

        model = tiny_model(0)
        model.losses = nn.ModuleDict({"l1": L1()})
        cond = make_condition(
            {"label_map"},
            batch_size=batch_size,
            size=size,
            generator=generator,
            num_classes=TINY_NUM_CLASSES,
        )
        return {
            "model": model,
            "cond": cond,
            "real": make_image(batch_size, size, generator=generator),
        }

    def step(
        self, model: SynthesisModel, cond: Condition, real: Tensor, updater: Any
    ) -> dict[str, Tensor]:
        """One outer round of Algorithm 1 on the batch ``S = (cond, real [B, 3, H, W])``."""
        cfg = self.config
        rank, step = _rank(), int(getattr(updater, "step", 0))
        base = _mix(cfg.seed, step, rank)
        show = cfg.progress if cfg.progress is not None else (sys.stderr.isatty() and rank == 0)
        dist_loss = self.distance_loss(model)
        with updater.autocast():
            sel = select_codes(
                model,
                cond,
                real,
                dist_loss,
                cfg.num_codes,
                seed=base,
                chunk_size=cfg.chunk_size,
                draw_block=cfg.draw_block,
                hierarchical=cfg.hierarchical,
                progress=bool(show),
            )
        g = torch.Generator(device=real.device).manual_seed(_mix(base, 0x5EED))
        codes = perturb_codes(sel.codes, cfg.perturb, g)
        b = cond.batch_size
        mb = min(cfg.minibatch, b)
        needs_features = any("features" in loss.needs for loss in model.losses.values())
        sums: dict[str, Tensor] = {}
        from tqdm.auto import tqdm

        steps = tqdm(
            range(cfg.inner_steps),
            desc="imle inner steps",
            disable=not (show and cfg.inner_steps >= 50),
            leave=False,
        )
        for _ in steps:
            idx = torch.randperm(b, generator=g, device=real.device)[:mb]
            c_i, r_i = cond[idx], real[idx]
            with updater.autocast():
                lat = codes_to_latents(model.injector, c_i, codes[idx])
                fake = model.generator(c_i, lat, return_features=needs_features)
                batch = LossInputs("generator", c_i, real=r_i, fake=fake, latents=lat)
                loss, logs = weighted_losses(model.losses, batch, frozenset({"generator"}), "g")
            updater.update(("generator", "injector"), loss)
            for k, v in logs.items():
                sums[k] = sums.get(k, 0) + v
        out = {k: (v / cfg.inner_steps).detach() for k, v in sums.items()}
        out["imle/distance"] = sel.distance.float().mean().detach()
        return out
