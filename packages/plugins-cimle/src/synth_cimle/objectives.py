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
a resumed run replays exactly (the Trainer restores weights and the data position). Under
DDP every rank selects codes for its own slice of S on the bare networks (no-grad passes: no
communication), and the inner updates run the generator and injector through their DDP views
(:func:`synth.parts.objectives.synced`), which average the gradients during backward.

Selection is batched: raw codes are drawn in blocks of ``draw_block`` inputs (memory for codes
is bounded; the draw does not depend on the chunking) and generator + distance passes run on
chunks of candidates under ``no_grad`` (and the Trainer's autocast). The target's backbone
features are computed once per input and gathered for its candidates. The chunk is either
``chunk_size`` candidates (exact, reproducible) or, when that is ``None``, derived from
``memory_budget_mb``: one probe pass measures the activation bytes per candidate (CUDA:
allocator peak; elsewhere: peak of live tensors allocated by the pass) and the chunk is the
budget divided by that cost (see :func:`select_codes`). On CPU the budget only caps the chunk:
batching buys nothing there (VGG19 at 128² runs fastest per image at batch 1–8, as caches
hold its activations), so the first passes time real work at chunks 1, 2, 4, ... up to the
cap and the rest runs at the fastest (:class:`_ChunkTuner`, cached per input size like the
memory cost). Chunking does not change the choice (other batch sizes may only round
differently, which matters for exact near-ties).

Diversity losses (``samples_per_input = N > 1``, a synth extension): each update also sees N
samples per input -- the chosen code and N−1 of the other candidates drawn for it -- in
``LossInputs.samples`` / ``sample_latents`` / ``sample_output``, as ``core.gan`` gives them
(see :class:`IMLE`); the selection is the same for every N.

Hierarchical variant (``hierarchical=True``, generator with a ``pyramid`` and codes
``extras["cimle.code.k"]``): the code of ×2 stage k is chosen with the codes of stages < k
fixed to their chosen values, comparing ``pyramid[k]`` with the target area-downsampled to
its size — coarse to fine.
"""

from __future__ import annotations

import sys
import time
import weakref
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import Field, model_validator
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from synth import Condition, Latents, Loss, LossInputs, Objective, PartConfig, SynthesisOutput
from synth.parts.objectives import synced, weighted_losses

from .generators import stage_code_key
from .losses import Distance, Target

if TYPE_CHECKING:
    from synth import SynthesisModel

__all__ = ["IMLE", "Selection", "chunk_for_budget", "select_codes"]

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
        self.fast = isinstance(loss, Distance)

    def prepare(self, real: Tensor, cond: Condition) -> Target:
        if self.fast:
            assert isinstance(self.loss, Distance)
            return self.loss.prepare(real, self.loss.mask_for(real, cond))
        return Target(real, [], None)

    def score(self, x: Tensor, target: Target) -> Tensor:
        """``x: [N, 3, H, W]`` against ``target`` with N rows -> ``[N]``."""
        if self.fast:
            assert isinstance(self.loss, Distance)
            return self.loss.distance_to(x, target)[:, 0]
        return self.loss.distance(x, target.image.to(x.dtype)).float()


def _resize_target(target: Target, scorer: _Scorer, size: tuple[int, int]) -> Target:
    """The target area-downsampled to ``size`` (hierarchical stages), features recomputed."""
    image = F.interpolate(target.image.float(), size=size, mode="area").to(target.image.dtype)
    mask = None if target.mask is None else F.adaptive_avg_pool2d(target.mask.float(), size)
    if scorer.fast:
        assert isinstance(scorer.loss, Distance)
        return scorer.loss.prepare(image, mask)
    return Target(image, [], mask)


class Selection:
    """Result of :func:`select_codes`: chosen raw ``codes`` (batch B), ``index [B]`` (per
    stage for the hierarchical variant: ``index [B, K]``), the chosen ``distance [B]`` and
    ``chunk_size``, the candidates per generator + distance pass that were used (given or
    derived from the memory budget). ``others`` (with ``keep_others = k > 0``): each input's
    first ``k`` unchosen candidates of the first round in draw order, raw, batch ``B·k``
    ordered ``(b k)``; ``None`` otherwise."""

    def __init__(
        self,
        codes: Latents,
        index: Tensor,
        distance: Tensor,
        chunk_size: int,
        others: Latents | None = None,
    ) -> None:
        self.codes, self.index, self.distance = codes, index, distance
        self.chunk_size, self.others = chunk_size, others


def _blocks(b: int, size: int) -> Iterator[tuple[int, int]]:
    for s in range(0, b, size):
        yield s, min(s + size, b)


#: bytes in one "MB" of ``memory_budget_mb`` (MiB)
_MIB = 1 << 20
#: candidates in the probe pass that measures the per-candidate cost
_PROBE_CANDIDATES = 2

#: per-candidate cost cache key (see :func:`_cost_key`) -> bytes
CostCache = MutableMapping[tuple[Any, ...], float]


def _score_pass(
    model: SynthesisModel,
    scorer: _Scorer,
    cond: Condition,
    raw: Latents,
    target: Target,
    owner: Tensor,
    stage: int,
    hierarchical: bool,
) -> Tensor:
    """One generator + distance pass on N candidates: ``cond``/``raw`` with N rows, each
    compared with row ``owner [N]`` of ``target`` -> distances ``[N]``."""
    lat = codes_to_latents(model.injector, cond, raw)
    out = model.generator(cond, lat)
    x = out.pyramid[stage] if hierarchical and out.pyramid else out.image
    t = target.index(owner)
    if tuple(x.shape[-2:]) != tuple(t.image.shape[-2:]):
        t = _resize_target(t, scorer, (x.shape[-2], x.shape[-1]))
    return scorer.score(x, t)


class _LiveBytes(TorchDispatchMode):
    """Peak bytes of the tensors allocated while active and still alive (devices without
    allocator statistics, e.g. CPU).

    Every op output whose storage is new (not one of the op's inputs' storages, so views and
    in-place results are not counted twice) adds its storage size until the tensor is freed
    (a weakref finalizer; views keep their base alive, so a storage counts until its last
    user dies). This sees every op, also functional ones between modules (``cat``, ``+``,
    ``interpolate``), but not allocator caching, fragmentation or library workspaces.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._seen: set[int] = set()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        inputs = {
            t.untyped_storage().data_ptr()
            for t in tree_leaves((args, kwargs))
            if isinstance(t, Tensor) and t.layout == torch.strided
        }
        out = func(*args, **kwargs)
        for t in tree_leaves(out):
            if not isinstance(t, Tensor) or t.layout != torch.strided:
                continue  # sparse/nested tensors have no single storage (not used here)
            storage = t.untyped_storage()
            key, nbytes = storage.data_ptr(), storage.nbytes()
            if nbytes == 0 or key in inputs or key in self._seen:
                continue
            self._seen.add(key)
            self.live += nbytes
            self.peak = max(self.peak, self.live)
            weakref.finalize(t, self._free, key, nbytes)
        return out

    def _free(self, key: int, nbytes: int) -> None:
        self.live -= nbytes
        self._seen.discard(key)


def _cost_key(
    model: SynthesisModel, distance: Loss, cond: Condition, real: Tensor, hierarchical: bool
) -> tuple[Any, ...]:
    """What the per-candidate cost depends on: the networks, the per-input sizes and dtypes
    of the condition and target, the device and the autocast state (not B, m or weights)."""
    dev = real.device.type
    fields = tuple(
        (n, tuple(getattr(cond, n).shape[1:]), getattr(cond, n).dtype)
        for n in sorted(cond.fields())
    )
    amp = torch.is_autocast_enabled(dev) and torch.get_autocast_dtype(dev)
    return (
        id(model.generator),
        id(distance),
        fields,
        cond.size,
        tuple(real.shape[1:]),
        real.dtype,
        str(real.device),
        amp,
        hierarchical,
    )


def _probe_candidate_bytes(
    model: SynthesisModel,
    scorer: _Scorer,
    cond: Condition,
    target: Target,
    stage: int,
    hierarchical: bool,
) -> float:
    """Bytes one candidate adds to a selection pass, measured on a pass of
    ``_PROBE_CANDIDATES`` copies of input 0 (peak bytes / candidates; the pass's fixed costs
    are charged to the candidates, so this errs on the large side). On CUDA: the allocator
    peak of a pass after a warm-up pass (``max_memory_allocated`` after
    ``reset_peak_memory_stats``, so the CUDA peak statistics restart there); on other devices
    the peak of the live tensors the pass allocates.

    Side-effect free for the selection: codes come from a private generator, the global RNG
    is restored and the networks' buffers (e.g. BatchNorm statistics) are put back.
    """
    device = target.image.device
    n = _PROBE_CANDIDATES
    pc = cond[:1].repeat_interleave(n)
    raw = draw_codes(model.injector, pc, torch.Generator(device=device).manual_seed(0))
    owner = torch.zeros(n, dtype=torch.long, device=device)
    nets = [net for net in (model.generator, model.injector) if isinstance(net, torch.nn.Module)]
    saved = [(buf, buf.clone()) for net in nets for buf in net.buffers()]
    cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=[device] if cuda else [], device_type="cuda"):
        if cuda:
            # a warm-up pass first, so one-time costs (cuBLAS handles, cuDNN benchmark trials)
            # are not charged per candidate; then the pass's peak over what is allocated now
            # (weights, targets, codes)
            _score_pass(model, scorer, pc, raw, target, owner, stage, hierarchical)
            torch.cuda.synchronize(device)
            base = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
            _score_pass(model, scorer, pc, raw, target, owner, stage, hierarchical)
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device) - base
        else:
            with _LiveBytes() as live:
                _score_pass(model, scorer, pc, raw, target, owner, stage, hierarchical)
            peak = live.peak
    for buf, value in saved:
        buf.copy_(value)
    return max(float(peak), 0.0) / n


#: chunk sizes the CPU timing probe tries (those up to the budget's chunk), smallest first
_TUNED_CHUNKS = (1, 2, 4, 8, 16, 32, 64)


class _ChunkTuner:
    """The CPU chunk from timed real passes (:func:`select_codes` with ``tune_chunk``).

    ``next()`` hands out each size of ``sizes`` once, smallest first, then the one with the
    least seconds per candidate; ``record`` takes the time of a pass. The passes are part of
    the selection (no extra work); only full passes count (a block's last, shorter pass is
    not a measurement). Once every size is timed the winner goes to ``cache[key]``, so the
    objective probes once per input size, as for the memory cost.
    """

    def __init__(self, sizes: list[int], cache: CostCache | None, key: tuple[Any, ...]) -> None:
        self.sizes, self.cache, self.key = sizes, cache, key
        self.seconds: dict[int, float] = {}
        self.best: int | None = sizes[0] if len(sizes) == 1 else None

    def next(self) -> int:
        if self.best is not None:
            return self.best
        return next(c for c in self.sizes if c not in self.seconds)

    def record(self, size: int, n: int, seconds: float) -> None:
        if self.best is not None or n != size or size in self.seconds:
            return
        self.seconds[size] = seconds / n
        if len(self.seconds) == len(self.sizes):
            self.best = min(self.seconds, key=self.seconds.__getitem__)
            if self.cache is not None:
                self.cache[self.key] = float(self.best)

    @property
    def chunk(self) -> int:
        """The chosen chunk, or the largest timed so far while still probing."""
        return self.best if self.best is not None else max(self.seconds, default=self.sizes[0])


def chunk_for_budget(per_candidate_bytes: float, memory_budget_mb: float | None, total: int) -> int:
    """Candidates per pass for a budget: ``floor(budget / cost)`` clamped to ``[1, total]``
    (``total`` when there is no budget or the cost is 0)."""
    if memory_budget_mb is None or per_candidate_bytes <= 0:
        return max(1, total)
    return max(1, min(total, int(memory_budget_mb * _MIB // per_candidate_bytes)))


def select_codes(
    model: SynthesisModel,
    cond: Condition,
    real: Tensor,
    distance: Loss,
    num_codes: int,
    *,
    seed: int = 0,
    chunk_size: int | None = None,
    memory_budget_mb: float | None = 1024.0,
    draw_block: int = 64,
    hierarchical: bool = False,
    progress: bool = False,
    cost_cache: CostCache | None = None,
    keep_others: int = 0,
    tune_chunk: bool | None = None,
) -> Selection:
    """``σ(i) = argmin_j L(T(x_i, z_ij), y_i)`` for every input (Algorithm 1, inner loop over S).

    Args:
        model: a composed model with ``generator`` and ``injector``.
        cond: ``B`` inputs; ``real``: their targets ``[B, 3, H, W]``.
        distance: an image distance (``cimle.distance`` uses the prepared-target fast path).
        num_codes: m, candidates per input.
        seed: stage k's codes of draw block j come from ``manual_seed(mix(seed, j, k))``.
        chunk_size: candidates per generator + distance pass; ``None``: derived from
            ``memory_budget_mb``. An explicit value wins: bit-exact runs across machines
            (other batch sizes may round differently and so flip near-ties) and fixed timings.
        memory_budget_mb: approximate bound, in MiB, on the activations of one pass (the
            generator outputs, the distance's backbone features of the candidates and their
            gathered targets). Not covered: weights, the prepared targets of the B inputs,
            the drawn codes of a block and the training step. ``None`` with ``chunk_size``
            ``None``: all candidates of a draw block in one pass.
        draw_block: inputs whose ``B·m`` raw codes are drawn together.
        hierarchical: choose the code of each ×2 stage in turn (coarse to fine).
        progress: tqdm bar over the chunks.
        cost_cache: keeps the measured per-candidate cost between calls, keyed by networks,
            per-input sizes/dtypes, device and autocast (the objective's: one probe per size).
        keep_others: also return, per input, this many of its unchosen candidates
            (``Selection.others``; at most ``num_codes - 1``): the first ones in draw order of
            the first round, where every code is a fresh prior draw (the hierarchical variant
            fixes earlier stages only in later rounds). They do not take part in the choice.
        tune_chunk: with ``chunk_size`` None, time real passes at chunks 1, 2, 4, ... (up to the
            budget's chunk) and run the rest at the fastest; the pick is cached in
            ``cost_cache``. ``None``: on CPU only (where large batches are no faster per
            candidate); on GPU the budget's chunk (large batches) is used as before.

    The budget becomes a chunk through one probe pass on 2 candidates
    (:func:`_probe_candidate_bytes`; on CUDA it resets the peak memory statistics): the chunk
    is ``floor(budget / cost)`` clamped to ``[1, min(B, draw_block)·m]``, an estimate that
    allocator caching, fragmentation and workspaces can exceed. Chunking never changes the
    choice.

    Runs under ``no_grad`` (wrap in autocast for mixed precision). Returns a :class:`Selection`
    (its ``chunk_size`` is the chunk that was used).
    """
    if model.injector is None:
        raise ValueError("cimle.imle needs an injector (the codes' prior), e.g. cimle.spatial_code")
    m, b = int(num_codes), cond.batch_size
    if not 0 <= keep_others < m:
        raise ValueError(
            f"keep_others={keep_others}: each input has num_codes={m} candidates, one of them "
            f"chosen, so at most {m - 1} others can be kept"
        )
    scorer = _Scorer(distance)
    with torch.no_grad():
        target = scorer.prepare(real, cond)
        n_stages = _stage_count(model, cond, real.device) if hierarchical else 1
        total = min(b, draw_block) * m  # candidates of the largest draw block
        if chunk_size is not None:
            chunk = max(1, min(int(chunk_size), total))
        elif memory_budget_mb is None:
            chunk = total
        else:
            key = _cost_key(model, distance, cond, real, hierarchical)
            cost = None if cost_cache is None else cost_cache.get(key)
            if cost is None:
                # the last stage compares at full resolution: the largest distance features
                cost = _probe_candidate_bytes(
                    model, scorer, cond, target, n_stages - 1, hierarchical
                )
                if cost_cache is not None:
                    cost_cache[key] = cost
            chunk = chunk_for_budget(cost, memory_budget_mb, total)
        if tune_chunk is None:
            tune_chunk = real.device.type == "cpu"
        tuner = None
        if chunk_size is None and tune_chunk:
            key = ("tuned chunk", *_cost_key(model, distance, cond, real, hierarchical))
            cached = None if cost_cache is None else cost_cache.get(key)
            if cached is not None:
                chunk = min(chunk, int(cached))
            else:
                # larger chunks are not tried: no faster on CPU, and a slow pass is costly
                tried = [c for c in _TUNED_CHUNKS if c < chunk]
                if chunk <= _TUNED_CHUNKS[-1]:
                    tried.append(chunk)
                # only as many sizes as the first draw block's candidates can time
                first_block = min(b, draw_block) * m
                sizes = [c for i, c in enumerate(tried) if sum(tried[: i + 1]) <= first_block]
                tuner = _ChunkTuner(sizes or [1], cost_cache, key)
        n_chunks = n_stages * sum(-(-(e - s) * m // chunk) for s, e in _blocks(b, draw_block))
        from tqdm.auto import tqdm

        bar = tqdm(total=n_chunks, desc="imle select", disable=not progress, leave=False)
        run = _SelectionPass(
            model, scorer, m, chunk, n_stages, hierarchical, bar, keep_others, tuner
        )
        blocks = [
            run.block(cond[s:e], target.index(torch.arange(s, e, device=real.device)), seed, j)
            for j, (s, e) in enumerate(_blocks(b, draw_block))
        ]
        bar.close()
    codes, best, indices, others = zip(*blocks)
    kept = Latents.cat(list(others)) if keep_others else None
    if tuner is not None:
        chunk = tuner.chunk
    return Selection(Latents.cat(list(codes)), torch.cat(indices), torch.cat(best), chunk, kept)


def _stage_count(model: SynthesisModel, cond: Condition, device: torch.device) -> int:
    """The number of per-stage codes ``extras["cimle.code.k"]`` the injector draws."""
    probe = draw_codes(model.injector, cond[:1], torch.Generator(device=device))
    n_stages = sum(stage_code_key(k) in probe.extras for k in range(64))
    if n_stages == 0:
        raise ValueError(
            "hierarchical cIMLE needs per-stage codes extras['cimle.code.k'] "
            "(cimle.spatial_code with per_stage=True)"
        )
    return n_stages


class _SelectionPass:
    """The settings of one :func:`select_codes` call, applied one draw block at a time."""

    def __init__(
        self,
        model: SynthesisModel,
        scorer: _Scorer,
        m: int,
        chunk: int,
        n_stages: int,
        hierarchical: bool,
        bar: Any,
        keep_others: int = 0,
        tuner: _ChunkTuner | None = None,
    ) -> None:
        self.model, self.scorer, self.m, self.chunk = model, scorer, m, chunk
        self.n_stages, self.hierarchical, self.bar = n_stages, hierarchical, bar
        self.keep_others, self.tuner = keep_others, tuner

    def block(
        self, cond: Condition, target: Target, seed: int, j: int
    ) -> tuple[Latents, Tensor, Tensor, Latents | None]:
        """Chosen codes, their distances ``[nb]`` and indices (``[nb]``, or ``[nb, K]`` per
        stage) for the ``nb`` inputs of draw block ``j``, and the kept unchosen candidates
        (``[(nb k)]``, see :func:`select_codes`); stage k's codes are drawn from
        ``Generator().manual_seed(mix(seed, j, k))`` with the earlier stages' choices fixed."""
        m, nb = self.m, cond.batch_size
        cand_cond = cond.repeat_interleave(m)
        fixed: Latents | None = None
        others: Latents | None = None
        stage_idx: list[Tensor] = []
        for k in range(self.n_stages):
            g = torch.Generator(device=target.image.device).manual_seed(_mix(seed, j, k))
            raw = draw_codes(self.model.injector, cand_cond, g)  # [(nb m)]
            if self.hierarchical and fixed is not None:
                for kk in range(k):
                    key_k = stage_code_key(kk)
                    raw.extras[key_k] = fixed.extras[key_k].repeat_interleave(m, dim=0)
            d = rearrange(self._distances(cand_cond, raw, target, k), "(b m) -> b m", m=m)
            val, idx = d.min(dim=1)
            fixed = raw[torch.arange(nb, device=idx.device) * m + idx]
            if k == 0 and self.keep_others:
                others = raw[_other_rows(idx, m, self.keep_others)]
            stage_idx.append(idx)
        assert fixed is not None
        index = torch.stack(stage_idx, dim=1) if self.hierarchical else stage_idx[0]
        return fixed, val, index, others

    def _distances(self, cand_cond: Condition, raw: Latents, target: Target, stage: int) -> Tensor:
        """Distances ``[(nb m)]`` of every candidate to its input's target, ``chunk`` at a time."""
        n = cand_cond.batch_size
        device = target.image.device
        dists = torch.empty(n, device=device)
        c0 = 0
        while c0 < n:
            size = self.chunk if self.tuner is None else self.tuner.next()
            c1 = min(c0 + size, n)
            owner = torch.div(torch.arange(c0, c1, device=device), self.m, rounding_mode="floor")
            t0 = time.perf_counter()
            dists[c0:c1] = _score_pass(
                self.model,
                self.scorer,
                cand_cond[c0:c1],
                raw[c0:c1],
                target,
                owner,
                stage,
                self.hierarchical,
            )
            if self.tuner is not None:  # CPU only: the pass has finished when it returns
                self.tuner.record(size, c1 - c0, time.perf_counter() - t0)
            self.bar.update(1)
            c0 = c1
        return dists


def _other_rows(chosen: Tensor, m: int, k: int) -> Tensor:
    """Rows of ``[(nb m)]`` candidates holding each input's first ``k`` unchosen ones in draw
    order, ``[(nb k)]``: columns ``0..k-1`` shifted past the chosen column ``chosen [nb]``."""
    cols = torch.arange(k, device=chosen.device)
    cols = cols + (cols >= chosen[:, None]).long()  # [nb, k]
    rows = torch.arange(chosen.shape[0], device=chosen.device)[:, None] * m + cols
    return rearrange(rows, "b k -> (b k)")


def reinit_parameters(module: Any, seed: int) -> None:
    """``reset_parameters()`` of every submodule that has one, from ``manual_seed(seed)``
    (the same on every rank and after a resume; the global RNG is restored). The official
    layout code re-initialises its noise encoder at round ``reinit_point`` (6) and trains on
    with lr 1e-5; the optimizer's moments of those parameters are kept."""
    if not isinstance(module, torch.nn.Module):
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in module.modules():
            reset = getattr(m, "reset_parameters", None)
            if callable(reset):
                with torch.no_grad():
                    reset()


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


class IMLE(Objective):
    """Conditional IMLE (Algorithm 1; Li, Peng, Zhang & Malik). See the module docstring.

    One ``step`` = one outer round on the Trainer batch S: select codes (:func:`select_codes`)
    then ``inner_steps`` updates of ``generator`` and ``injector`` on mini-batches of the
    cached pairs. Logged: ``imle/distance`` (mean selected distance), ``g/<loss>`` (mean over
    the inner steps), ``imle/chunk`` (candidates per selection pass). Needs a loss with
    ``distance`` in the model (``distance`` names it; by default the first one that has it,
    e.g. ``cimle.distance``).

    Several samples per input for diversity losses (a synth extension, not in the paper or
    the official code; ``samples_per_input = N > 1``, at most ``num_codes``): the m candidates
    drawn for an input anyway supply them. Sample 0 of input i is its chosen code (perturbed,
    the code of the cached pair), samples 1..N−1 its first N−1 unchosen candidates of the
    selection's first round (raw prior draws, :func:`select_codes` ``keep_others``). Each
    update runs the generator once on the mini-batch's ``|S̃|·N`` codes; the losses get
    ``fake``/``latents`` = the chosen codes' rows (Algorithm 1's pairs, as with N = 1) and
    ``samples [|S̃|, N, C, H, W]``, ``sample_latents`` and ``sample_output`` (pyramid,
    extras) of all ``|S̃|·N``, ordered ``(b n)`` as ``core.gan``'s ``samples_per_input``. The
    selection, its draws and the chosen codes do not depend on N.

    Selection memory: ``chunk_size`` fixes the candidates per generator + distance pass;
    left ``None`` it is derived from ``memory_budget_mb`` (see :func:`select_codes`) with the
    per-candidate cost probed once per input size / dtype / autocast state and cached on the
    objective. The last chunk used is ``last_chunk_size`` (and is logged as ``imle/chunk``).
    """

    class Config(PartConfig):
        num_codes: int = Field(100, ge=1, description="m: codes drawn per input")
        inner_steps: int = Field(1, ge=1, description="L: updates per outer round")
        minibatch: int = Field(4, ge=1, description="|S̃|: cached pairs per update")
        perturb: float = Field(0.1, ge=0, description="std of the noise added to chosen codes")
        chunk_size: int | None = Field(
            None,
            ge=1,
            description="candidates per selection pass; None: derived from memory_budget_mb",
        )
        memory_budget_mb: float | None = Field(
            1024.0,
            gt=0,
            description="approximate MiB of activations per selection pass (chunk_size None)",
        )
        draw_block: int = Field(64, ge=1, description="inputs whose codes are drawn together")
        tune_chunk: bool | None = Field(
            None,
            description="chunk_size None: time real passes at chunks 1, 2, 4, ... (up to the "
            "budget's) and use the fastest; None: on CPU only (select_codes)",
        )
        hierarchical: bool = False
        distance: str | None = Field(None, description="name of the distance loss in the model")
        seed: int = 0
        reinit_injector_at: int | None = Field(
            None,
            ge=1,
            description="re-initialise the injector's parameters at the start of this "
            "Trainer step (outer round; official layout code's reinit_point: 6)",
        )
        progress: bool | None = None
        samples_per_input: int = Field(
            1,
            ge=1,
            description="N samples per input for diversity losses: the chosen code and N-1 "
            "other candidates (at most num_codes)",
        )

        @model_validator(mode="after")
        def _enough_codes(self) -> IMLE.Config:
            if self.samples_per_input > self.num_codes:
                raise ValueError(
                    f"samples_per_input={self.samples_per_input} takes its samples from the "
                    f"num_codes={self.num_codes} candidates drawn per input; raise num_codes "
                    "or lower samples_per_input"
                )
            return self

    networks: ClassVar[tuple[str, ...]] = ("generator", "injector")
    logged_settings: ClassVar[frozenset[str]] = frozenset({"imle/chunk"})  # not a loss
    config: Config

    @classmethod
    def provided(cls, config: PartConfig | None = None) -> frozenset[str]:
        """``samples`` (with ``sample_latents`` and ``sample_output``) when N > 1."""
        n = getattr(config, "samples_per_input", 1)
        return frozenset({"samples"}) if n > 1 else frozenset()

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        # measured per-candidate selection cost; a cache only (not saved: it is re-measured
        # after a resume and depends on the device)
        self._cost_cache: dict[tuple[Any, ...], float] = {}
        self.last_chunk_size: int | None = None

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

        from synth.parts.losses import L1
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
        if cfg.reinit_injector_at is not None and step == cfg.reinit_injector_at:
            reinit_parameters(model.injector, _mix(cfg.seed, step, 0x1417))
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
                memory_budget_mb=cfg.memory_budget_mb,
                draw_block=cfg.draw_block,
                hierarchical=cfg.hierarchical,
                progress=bool(show),
                cost_cache=self._cost_cache,
                tune_chunk=cfg.tune_chunk,
                keep_others=cfg.samples_per_input - 1,
            )
        self.last_chunk_size = sel.chunk_size
        g = torch.Generator(device=real.device).manual_seed(_mix(base, 0x5EED))
        codes = perturb_codes(sel.codes, cfg.perturb, g)
        b, n = cond.batch_size, cfg.samples_per_input
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
        generator, injector = synced(updater, model.generator), synced(updater, model.injector)
        for _ in steps:
            idx = torch.randperm(b, generator=g, device=real.device)[:mb]
            others = None if sel.others is None else sel.others[_group_rows(idx, n - 1)]
            with updater.autocast():
                batch = self._loss_inputs(
                    generator, injector, cond[idx], real[idx], codes[idx], others, needs_features
                )
                loss, logs = weighted_losses(model.losses, batch, frozenset({"generator"}), "g")
            updater.update(("generator", "injector"), loss)
            for k, v in logs.items():
                sums[k] = sums.get(k, 0) + v
        out = {k: (v / cfg.inner_steps).detach() for k, v in sums.items()}
        out["imle/distance"] = sel.distance.float().mean().detach()
        out["imle/chunk"] = torch.tensor(float(sel.chunk_size), device=real.device)
        return out

    def _loss_inputs(
        self,
        generator: Any,
        injector: Any,
        cond: Condition,
        real: Tensor,
        codes: Latents,
        others: Latents | None,
        needs_features: bool,
    ) -> LossInputs:
        """The generator phase's loss inputs for one update on a mini-batch of ``|S̃|`` cached
        pairs (``cond``, ``real [|S̃|, 3, H, W]``, chosen perturbed ``codes``) and, with N > 1,
        their kept candidates ``others`` (``|S̃|·(N−1)``, ordered ``(b n)``): one generator pass
        on all ``|S̃|·N`` codes, the chosen ones' rows as ``fake`` (see the class doc)."""
        if others is None:
            lat = codes_to_latents(injector, cond, codes)
            fake = generator(cond, lat, return_features=needs_features)
            return LossInputs("generator", cond, real=real, fake=fake, latents=lat)
        n = self.config.samples_per_input
        cond_n = cond.repeat_interleave(n)
        lat_n = codes_to_latents(
            injector, cond_n, _interleave(codes, others, cond.batch_size, n, real.device)
        )
        out = generator(cond_n, lat_n, return_features=needs_features)
        chosen = torch.arange(cond.batch_size, device=real.device) * n
        return LossInputs(
            "generator",
            cond,
            real=real,
            fake=_output_rows(out, chosen),
            latents=lat_n[chosen],
            samples=rearrange(out.image, "(b n) c h w -> b n c h w", n=n),
            sample_latents=lat_n,
            sample_output=out,
        )


def _group_rows(idx: Tensor, k: int) -> Tensor:
    """Rows ``[(b k)]`` of the groups ``idx [b]`` in a batch of groups of ``k`` rows each."""
    rows = idx[:, None] * k + torch.arange(k, device=idx.device)
    return rearrange(rows, "b k -> (b k)")


def _interleave(first: Latents, rest: Latents, b: int, n: int, device: torch.device) -> Latents:
    """``b`` codes ``first`` and ``b·(n−1)`` codes ``rest`` (ordered ``(b n)``) as ``b·n``
    codes ordered ``(b n)``, each input's ``first`` code leading its group."""
    joined = Latents.cat([first, rest])
    group = torch.arange(b, device=device)[:, None]
    order = torch.cat([group, b + group * (n - 1) + torch.arange(n - 1, device=device)], dim=1)
    return joined[rearrange(order, "b n -> (b n)")]


def _output_rows(out: SynthesisOutput, rows: Tensor) -> SynthesisOutput:
    """Rows ``rows`` of a generator output (image, features, pyramid, latents, extras)."""
    return SynthesisOutput(
        image=out.image[rows],
        features=None if out.features is None else [f[rows] for f in out.features],
        pyramid=None if out.pyramid is None else [p[rows] for p in out.pyramid],
        latents=None if out.latents is None else out.latents[rows],
        extras={k: v[rows] for k, v in out.extras.items()},
    )
