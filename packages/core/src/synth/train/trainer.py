"""The Trainer: devices, precision, optimizers, schedules, EMA, data order, checkpoints, logs.

An objective (``core.gan``, ``cimle.imle``, ...) supplies one iteration's logic through
``objective.step(model, cond, real, updater)``; everything around it lives here (DESIGN §6).

Exact resume: the data order is a function of ``(seed, epoch)`` and each item's augmentation of
``(seed, epoch, index)`` (see :mod:`synth.data`); checkpoints hold the weights, optimizer and
scaler states, EMA, the position in the epoch and every RNG state (torch CPU and CUDA, numpy,
Python; per rank). A run killed at any point and resumed from its last checkpoint replays the
same iterations and ends with the same weights as an uninterrupted run (bitwise on CPU).

Data parallel: launched by ``torchrun``, each rank trains on its slice of every epoch's
permutation; after each backward the gradients of the updated networks are averaged with one
coalesced all-reduce, and buffers are broadcast from rank 0. This is what
``DistributedDataParallel`` does, done at the optimizer step instead of inside ``forward``
because a GAN step calls the discriminator several times per update and wrapping would
rename every parameter (``module.``) in the saved state.
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import json
import math
import os
import random
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch import Tensor, nn

from ..config import format_validation_error
from ..errors import ConfigError
from ..io.files import atomic_write
from ..model import SynthesisModel

__all__ = [
    "CheckpointError",
    "OptimizerConfig",
    "RunConfig",
    "Trainer",
    "TrainerConfig",
    "TrainingDiverged",
    "epoch_order",
    "train",
]

CHECKPOINT_FORMAT = "synth-checkpoint"


class TrainingDiverged(FloatingPointError):
    """A logged loss became NaN or Inf; the run stopped without writing a checkpoint."""

    def __init__(self, message: str, *, step: int, loss: str, checkpoint: Path | None):
        super().__init__(message)
        self.step, self.loss, self.checkpoint = step, loss, checkpoint


class CheckpointError(RuntimeError):
    """No readable checkpoint where one was expected."""


# --------------------------------------------------------------------------- config


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OptimizerConfig(_Strict):
    """Adam(W) settings of one network (TTUR = different ``lr`` per network)."""

    type: Literal["adam", "adamw"] = "adam"
    lr: float = Field(2e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = Field(0.0, ge=0)
    eps: float = Field(1e-8, gt=0)


class FreezeRule(_Strict):
    """Parameters whose names match ``pattern`` (fnmatch, e.g. ``"generator.global.*"``) get no
    updates until step ``until`` (pix2pixHD: train the enhancer with the global net frozen)."""

    pattern: str
    until: int = Field(ge=0)


class TrainerConfig(_Strict):
    """Everything about *how* a model is trained (the model spec says *what*)."""

    steps: int = Field(1000, ge=1, description="training iterations (batches)")
    batch_size: int = Field(4, ge=1, description="per process")
    num_workers: int = Field(0, ge=0)
    device: str = "auto"
    precision: Literal["off", "bf16", "fp16"] = "off"
    compile: bool = False
    compile_backend: str = "inductor"
    channels_last: bool = False
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    optimizers: dict[str, OptimizerConfig] = Field(
        default_factory=dict, description="per network, overriding `optimizer`"
    )
    decay_start: int | None = Field(
        None, ge=0, description="lr constant until this step, then linear decay to 0 at `steps`"
    )
    ema: float | None = Field(None, ge=0, lt=1, description="generator EMA decay, e.g. 0.999")
    grad_clip: float | None = Field(None, gt=0)
    d_steps: int = Field(1, ge=1, description="discriminator steps per generator step")
    freeze: list[FreezeRule] = Field(default_factory=list)
    seed: int = 0
    run_dir: str = "runs/train"
    checkpoint_every: int = Field(500, ge=1)
    keep_last: int = Field(3, ge=1)
    log_every: int = Field(10, ge=1)
    sample_every: int | None = Field(500, ge=1)
    sample_inputs: int = Field(4, ge=1, description="conditions per sample grid")
    num_samples: int = Field(4, ge=1, description="samples per condition in the grid")
    progress: bool | None = Field(None, description="tqdm bar; default: when stderr is a TTY")
    time_limit: float | None = Field(
        None,
        gt=0,
        description="seconds of training in this fit(); then it ends as if `steps` were reached "
        "(checkpoint, exported model, loss curve)",
    )


class RunConfig(_Strict):
    """A ``synth train`` config file: the model, the data and the training settings."""

    model: Any
    data: dict[str, Any]
    train: TrainerConfig = Field(default_factory=TrainerConfig)


def _validate(cls: type[BaseModel], data: Any, what: str) -> Any:
    if isinstance(data, cls):
        return data
    try:
        return cls.model_validate(data or {})
    except ValidationError as e:
        raise format_validation_error(e, what, cls) from None


# --------------------------------------------------------------------------- helpers


def epoch_order(n: int, seed: int, epoch: int) -> Tensor:
    """The permutation of ``range(n)`` used in ``epoch`` (the same on every rank and resume)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "python": random.getstate(),
    }


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


class _Dist:
    """Rank and world size (1 outside torchrun); owns the process group it created."""

    def __init__(self, device_type: str) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.owns_group = False
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
            self.owns_group = True

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_reduce_mean(self, tensors: list[Tensor]) -> None:
        """Average ``tensors`` over ranks with one coalesced all-reduce."""
        if self.world == 1 or not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for t in tensors:
            t.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()

    def all_reduce_min(self, t: Tensor) -> None:
        if self.world > 1:
            dist.all_reduce(t, op=dist.ReduceOp.MIN)

    def broadcast(self, tensors: list[Tensor]) -> None:
        if self.world == 1:
            return
        for t in tensors:
            dist.broadcast(t, 0)

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def gather_objects(self, obj: Any) -> list[Any]:
        if self.world == 1:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def _resolve_device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device = {name!r} but CUDA is not available; use 'cpu' or 'auto'")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device


# --------------------------------------------------------------------------- the updater


class _Updater:
    """Applies a loss to named networks: zero, backward (scaled), all-reduce, clip, step."""

    def __init__(self, trainer: Trainer) -> None:
        self.t = trainer
        self.step = 0
        self.d_steps = trainer.config.d_steps

    def autocast(self) -> contextlib.AbstractContextManager:
        prec = self.t.config.precision
        if prec == "off":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if prec == "bf16" else torch.float16
        return torch.autocast(self.t.device.type, dtype=dtype)

    def update(self, network: str | tuple[str, ...], loss: Tensor) -> None:
        names = [
            n
            for n in ((network,) if isinstance(network, str) else network)
            if n in self.t.optimizers
        ]
        if not names:
            return
        params = [p for n in names for p in self.t.params[n]]
        for p in params:
            p.grad = None
        scaler = self.t.scaler("+".join(names))
        (scaler.scale(loss) if scaler is not None else loss).backward()
        live = [p for p in params if p.requires_grad]
        if self.t.dist.world > 1:
            for p in live:
                if p.grad is None:  # identical flattening on every rank
                    p.grad = torch.zeros_like(p)
            self.t.dist.all_reduce_mean([p.grad for p in live])
        if self.t.config.grad_clip is not None:
            if scaler is not None:
                for n in names:
                    scaler.unscale_(self.t.optimizers[n])
            torch.nn.utils.clip_grad_norm_(live, self.t.config.grad_clip)
        for n in names:
            if scaler is not None:
                scaler.step(self.t.optimizers[n])
            else:
                self.t.optimizers[n].step()
        if scaler is not None:
            scaler.update()
        self.t.dist.broadcast([b for n in names for b in self.t.networks[n].buffers()])


# --------------------------------------------------------------------------- the trainer


class Trainer:
    """Trains a composed model on a dataset with its objective.

    Args:
        model: a :class:`synth.SynthesisModel` with an ``objective``.
        dataset: a map-style data set of item dicts (see :mod:`synth.data`), with
            ``num_classes`` and, for exact resume with augmentation, ``set_epoch``.
        config: :class:`TrainerConfig` or a dict of its fields.

    ``fit()`` runs to ``config.steps`` (resuming from the newest readable checkpoint in
    ``run_dir/checkpoints`` unless ``resume=False``) and writes ``run_dir/``: ``log.jsonl``,
    ``samples/step-*.png``, ``loss_curve.png``, ``checkpoints/step-*.pt`` and the final
    ``model/`` (``synth.load``-able; EMA weights when EMA is on).
    """

    def __init__(
        self,
        model: SynthesisModel,
        dataset: Any,
        config: TrainerConfig | Mapping[str, Any] | None = None,
    ) -> None:
        self.config: TrainerConfig = _validate(TrainerConfig, config, "trainer config")
        cfg = self.config
        if model.objective is None:
            raise ConfigError(
                "the model has no training objective: add e.g. `objective: {type: core.gan}` "
                "to the model spec"
            )
        self.model, self.dataset = model, dataset
        self.objective = model.objective
        probe = (
            cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        )
        self.dist = _Dist(torch.device(probe).type)
        self.device = _resolve_device(cfg.device, self.dist.local_rank)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if cfg.precision == "fp16" and self.device.type == "cpu":
            warnings.warn(
                "fp16 autocast on CPU is slow and rarely useful; bf16 is the CPU choice",
                stacklevel=2,
            )
        self.run_dir = Path(cfg.run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        _ = self.batches_per_epoch  # fail now, not at the first step, on a too-small data set

        model.to(self.device)
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
        model.train()
        self.networks: dict[str, nn.Module] = {}
        for name in self.objective.networks:
            net = getattr(model, name, None)
            if isinstance(net, nn.Module) and any(p.requires_grad for p in net.parameters()):
                self.networks[name] = net
        self.dist.broadcast(
            [t for net in self.networks.values() for t in net.state_dict().values()]
        )
        self.params = {n: [p for p in net.parameters()] for n, net in self.networks.items()}
        self.optimizers = {n: self._make_optimizer(n) for n in self.networks}
        self._scalers: dict[str, torch.amp.GradScaler] = {}
        self.ema: nn.Module | None = None
        if cfg.ema is not None:
            self.ema = copy.deepcopy(model.generator).eval().requires_grad_(False)
        self._freeze = [
            (
                rule,
                [
                    p
                    for name, p in model.named_parameters()
                    if fnmatch.fnmatchcase(name, rule.pattern)
                ],
            )
            for rule in cfg.freeze
        ]
        for rule, matched in self._freeze:
            if not matched:
                raise ConfigError(
                    f"freeze pattern {rule.pattern!r} matches no parameter; names look like "
                    f"{next(iter(dict(model.named_parameters())), '?')!r}"
                )
        if cfg.compile:
            for name in ("generator", "discriminator"):
                net = getattr(model, name, None)
                if net is not None:
                    net.compile(backend=cfg.compile_backend)
        self.updater = _Updater(self)
        self.step = 0
        self.epoch = 0
        self.position = 0  # batches consumed in the current epoch (per rank)
        self._grid_items: list[dict[str, Any]] | None = None
        self._stop_requested = False

    # ------------------------------------------------------------------ construction helpers
    def _make_optimizer(self, name: str) -> torch.optim.Optimizer:
        oc = self.config.optimizers.get(name, self.config.optimizer)
        cls = torch.optim.Adam if oc.type == "adam" else torch.optim.AdamW
        opt = cls(
            self.params[name], lr=oc.lr, betas=oc.betas, weight_decay=oc.weight_decay, eps=oc.eps
        )
        for g in opt.param_groups:
            g["initial_lr"] = oc.lr
        return opt

    def scaler(self, key: str) -> torch.amp.GradScaler | None:
        """The GradScaler of one update group (fp16 only)."""
        if self.config.precision != "fp16":
            return None
        if key not in self._scalers:
            self._scalers[key] = torch.amp.GradScaler(self.device.type)
        return self._scalers[key]

    @property
    def batches_per_epoch(self) -> int:
        per_rank = len(self.dataset) // self.dist.world
        n = per_rank // self.config.batch_size
        if n < 1:
            raise ConfigError(
                f"the data set has {len(self.dataset)} items, fewer than one batch of "
                f"{self.config.batch_size} per process ({self.dist.world} processes); lower "
                "train.batch_size or add data"
            )
        return n

    def lr_factor(self, step: int) -> float:
        """Constant, then linear decay to 0 at ``steps`` (pix2pixHD/SPADE schedule)."""
        start, end = self.config.decay_start, self.config.steps
        if start is None or step < start:
            return 1.0
        return max(0.0, 1.0 - (step - start) / max(1, end - start))

    # ------------------------------------------------------------------ data
    def _loader(self) -> Iterator[Any]:
        """Batches from the current (epoch, position) onwards, forever."""
        from ..data import make_collate

        collate = make_collate(self.dataset)
        bs, world, rank = self.config.batch_size, self.dist.world, self.dist.rank
        while True:
            if hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(self.epoch)
            order = epoch_order(len(self.dataset), self.config.seed, self.epoch)
            mine = order[rank::world][: self.batches_per_epoch * bs].tolist()
            mine = mine[self.position * bs :]
            loader = torch.utils.data.DataLoader(
                self.dataset,
                batch_size=bs,
                sampler=mine,
                drop_last=True,
                collate_fn=collate,
                num_workers=self.config.num_workers,
                pin_memory=self.device.type == "cuda",
                # its own generator: making an iterator must not draw from the global RNG, or a
                # resumed run (which makes it mid-epoch) would diverge from an uninterrupted one
                generator=torch.Generator().manual_seed(self.config.seed + self.epoch),
            )
            for batch in loader:
                self.position += 1  # counted before use: a checkpoint after it skips it
                yield batch
            self.epoch += 1
            self.position = 0

    # ------------------------------------------------------------------ checkpoints
    def checkpoints(self) -> list[Path]:
        """Checkpoint files, oldest first."""
        return sorted(self.ckpt_dir.glob("step-*.pt"))

    def save_checkpoint(self) -> Path | None:
        """Write ``checkpoints/step-<7 digits>.pt`` atomically (rank 0) and keep the last K."""
        rngs = self.dist.gather_objects(_rng_state())
        path = self.ckpt_dir / f"step-{self.step:07d}.pt"
        if self.dist.main:
            state = {
                "format": CHECKPOINT_FORMAT,
                "version": 1,
                "step": self.step,
                "epoch": self.epoch,
                "position": self.position,
                "world": self.dist.world,
                "model": self.model.checkpoint_state(),
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
                "scalers": {k: s.state_dict() for k, s in self._scalers.items()},
                "objective": self.objective.state_dict(),
                "rng": rngs,
                "config": self.config.model_dump(mode="json"),
            }
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda f: torch.save(state, f))
            for old in self.checkpoints()[: -self.config.keep_last]:
                old.unlink(missing_ok=True)
        self.dist.barrier()
        return path

    def _read_checkpoint(self, path: Path) -> dict[str, Any]:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path} is not a synth checkpoint")
        return state

    def load_checkpoint(self, path: Path | None = None) -> Path | None:
        """Restore the given checkpoint, or the newest readable one (a truncated or corrupt file
        is reported and the previous one used). Returns the path restored, or None."""
        candidates = [Path(path)] if path is not None else list(reversed(self.checkpoints()))
        for cand in candidates:
            try:
                state = self._read_checkpoint(cand)
            except Exception as e:  # a half-written or damaged file: fall back to an older one
                warnings.warn(
                    f"checkpoint {cand} is unreadable ({type(e).__name__}: {e}); "
                    "trying the previous one",
                    stacklevel=2,
                )
                if path is not None:
                    raise CheckpointError(f"cannot read checkpoint {cand}: {e}") from e
                continue
            self._restore(state, cand)
            return cand
        if path is None and candidates:
            raise CheckpointError(
                f"no readable checkpoint in {self.ckpt_dir}; delete the folder to start over"
            )
        return None

    def _restore(self, state: dict[str, Any], path: Path) -> None:
        if state["world"] != self.dist.world:
            raise CheckpointError(
                f"{path} was written by a run with {state['world']} processes, this one has "
                f"{self.dist.world}; resume with the same number of processes for exact replay"
            )
        missing, unexpected = self.model.load_state_dict(state["model"], strict=False)
        expected = set(self.model.checkpoint_state())
        bad = [k for k in missing if k in expected] + list(unexpected)
        if bad:
            raise CheckpointError(f"{path} does not fit this model: {bad[:10]}")
        if self.ema is not None:
            if state["ema"] is None:
                raise CheckpointError(f"{path} has no EMA weights but train.ema is set")
            self.ema.load_state_dict(state["ema"])
        for n, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][n])
        for k, s in state["scalers"].items():
            scaler = self.scaler(k)
            if scaler is not None:
                scaler.load_state_dict(s)
        self.objective.load_state_dict(state.get("objective") or {})
        self.step, self.epoch, self.position = state["step"], state["epoch"], state["position"]
        _set_rng_state(state["rng"][self.dist.rank])

    # ------------------------------------------------------------------ the loop
    def _apply_schedule(self) -> None:
        factor = self.lr_factor(self.step)
        for opt in self.optimizers.values():
            for g in opt.param_groups:
                g["lr"] = g["initial_lr"] * factor
        for rule, params in self._freeze:
            for p in params:
                p.requires_grad_(self.step >= rule.until)

    @torch.no_grad()
    def _update_ema(self) -> None:
        assert self.ema is not None and self.config.ema is not None
        src = dict(self.model.generator.named_parameters())
        ema_p = [p for n, p in self.ema.named_parameters()]
        torch._foreach_lerp_(
            ema_p, [src[n] for n, _ in self.ema.named_parameters()], 1 - self.config.ema
        )
        for b_ema, b in zip(self.ema.buffers(), self.model.generator.buffers()):
            b_ema.copy_(b)

    def _check_finite(self, logs: Mapping[str, Tensor]) -> None:
        if not logs:
            return
        values = torch.stack([v.detach().float().reshape(()) for v in logs.values()])
        if bool(torch.isfinite(values).all()):
            return
        bad = [k for k, v in logs.items() if not math.isfinite(float(v))]
        good = self.checkpoints()
        last = good[-1] if good else None
        where = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
        raise TrainingDiverged(
            f"loss {bad[0]!r} became {float(logs[bad[0]])} at step {self.step + 1}; training "
            f"stopped and nothing was saved after it ({where}). Lower the learning rate, enable "
            "train.grad_clip, or check the data for NaN",
            step=self.step + 1,
            loss=bad[0],
            checkpoint=last,
        )

    def _log(self, line: dict[str, Any]) -> None:
        if self.dist.main:
            with open(self.run_dir / "log.jsonl", "a") as f:
                f.write(json.dumps(line) + "\n")

    def _trim_log(self) -> None:
        """After a resume, drop log lines of steps that will be replayed."""
        log = self.run_dir / "log.jsonl"
        if not self.dist.main or not log.exists():
            return
        keep = [
            ln
            for ln in log.read_text().splitlines()
            if ln.strip() and json.loads(ln).get("step", 0) <= self.step
        ]
        log.write_text("".join(ln + "\n" for ln in keep))

    def generate_grid(self, path: Path) -> Path:
        """Sample grid (condition | real | samples) of fixed inputs, drawn from a fixed seed so
        it never touches the training RNG."""
        from ..data import make_collate
        from ..viz import sample_grid

        if self._grid_items is None:
            n = min(self.config.sample_inputs, len(self.dataset))
            epoch = getattr(self.dataset, "epoch", None)
            if hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(0)
            self._grid_items = [self.dataset[i] for i in range(n)]
            if epoch is not None and hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(epoch)
        batch = make_collate(self.dataset)(self._grid_items).to(self.device)
        gen = self.model.generator
        was_training = self.model.training
        self.model.eval()
        try:
            if self.ema is not None:
                self.model.generator = self.ema
            g = torch.Generator(self.device).manual_seed(self.config.seed)
            with torch.no_grad(), self.updater.autocast():
                out = self.model.sample(batch.cond, self.config.num_samples, generator=g)
        finally:
            self.model.generator = gen
            self.model.train(was_training)
        samples = out.image.float().reshape(
            batch.real.shape[0], self.config.num_samples, *out.image.shape[1:]
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        sample_grid(batch.cond, samples, real=batch.real.float(), path=path)
        return path

    def request_stop(self) -> None:
        """Finish the current step, write a checkpoint and raise KeyboardInterrupt (what Ctrl-C
        does during ``fit``): stopping between steps keeps the resume exact."""
        self._stop_requested = True

    @contextlib.contextmanager
    def _sigint_stops(self) -> Iterator[None]:
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):
            if self._stop_requested:  # a second Ctrl-C stops at once
                signal.signal(signal.SIGINT, previous)
                raise KeyboardInterrupt
            self.request_stop()

        signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _time_limited_end(self, start: float, first: int, bar: Any) -> int:
        """The step this ``fit`` ends at under ``time_limit``: now when the time is up, else
        where the average step time so far says the limit will fall (shown as the bar's total,
        so its ETA is the time left)."""
        cfg = self.config
        elapsed = time.perf_counter() - start
        done = self.step - first
        if elapsed >= (cfg.time_limit or 0.0) or self.step >= cfg.steps:
            end = self.step
        else:
            expected = self.step + int((cfg.time_limit - elapsed) / (elapsed / done))
            end = min(cfg.steps, max(self.step + 1, expected))
        # every rank must stop at the same step (a collective per step is cheap beside a step)
        if self.dist.world > 1:
            t = torch.tensor([end], device=self.device, dtype=torch.long)
            self.dist.all_reduce_min(t)
            end = int(t.item())
        bar.total = end
        return end

    def fit(self, resume: bool = True) -> dict[str, Any]:
        """Train to ``config.steps``; returns a summary (final step, run dir, last losses).

        Ctrl-C finishes the current step, writes a checkpoint and raises KeyboardInterrupt;
        ``fit()`` again resumes from there.
        """
        cfg = self.config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.objective.setup(self.model, self.dataset, self.device)
        _seed_everything(cfg.seed + self.dist.rank)
        restored = self.load_checkpoint() if resume else None
        if restored is not None:
            self._trim_log()
        elif self.dist.main:
            (self.run_dir / "log.jsonl").unlink(missing_ok=True)
        self.dist.barrier()
        show = cfg.progress if cfg.progress is not None else sys.stderr.isatty()
        from tqdm.auto import tqdm

        bar = tqdm(
            total=cfg.steps,
            initial=self.step,
            disable=not (show and self.dist.main),
            desc="train",
            dynamic_ncols=True,
        )
        sums: dict[str, float] = {}
        count = 0
        tick = start = time.perf_counter()
        end_step = cfg.steps
        last: dict[str, float] = {}
        batches = self._loader()
        self._stop_requested = False
        first = self.step
        stack = contextlib.ExitStack()
        stack.enter_context(self._sigint_stops())
        try:
            while self.step < end_step:
                batch = next(batches).to(self.device, non_blocking=True)
                real = batch.real
                if cfg.channels_last:
                    real = real.contiguous(memory_format=torch.channels_last)
                self._apply_schedule()
                self.updater.step = self.step
                logs = self.objective.step(self.model, batch.cond, real, self.updater)
                self._check_finite(logs)
                if self.ema is not None:
                    self._update_ema()
                self.step += 1
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                count += 1
                if cfg.time_limit is not None:
                    end_step = self._time_limited_end(start, first, bar)
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == end_step:
                    elapsed = time.perf_counter() - tick
                    last = {k: v / count for k, v in sums.items()}
                    line = {"step": self.step, "epoch": self.epoch, **last}
                    for n, opt in self.optimizers.items():
                        line[f"lr/{n}"] = opt.param_groups[0]["lr"]
                    line["time/step_s"] = elapsed / count
                    line["time/images_per_s"] = count * cfg.batch_size * self.dist.world / elapsed
                    self._log(line)
                    shown = [k for k in last if k.endswith("/total")] or list(last)[:4]
                    bar.set_postfix({k: f"{last[k]:.3g}" for k in shown})
                    sums, count, tick = {}, 0, time.perf_counter()
                if cfg.sample_every and self.step % cfg.sample_every == 0 and self.dist.main:
                    self.generate_grid(self.run_dir / "samples" / f"step-{self.step:07d}.png")
                done = self.step == end_step
                if self.step % cfg.checkpoint_every == 0 or done or self._stop_requested:
                    self.save_checkpoint()
                if self._stop_requested:
                    raise KeyboardInterrupt(
                        f"stopped at step {self.step}; checkpoint written, fit() resumes"
                    )
        finally:
            stack.close()
            bar.close()
        if self.dist.main:
            self.export(self.run_dir / "model")
            from ..extras import MissingExtraError
            from ..viz import loss_curve

            try:
                loss_curve(self.run_dir / "log.jsonl", self.run_dir / "loss_curve.png")
            except MissingExtraError as e:  # charts are the [viz] extra; training needs none
                warnings.warn(f"no loss_curve.png: {e}", stacklevel=2)
        self.dist.barrier()
        return {"step": self.step, "run_dir": str(self.run_dir), "losses": last}

    def export(self, path: Path) -> Path:
        """``save_pretrained`` the model (with the EMA generator when EMA is on)."""
        gen = self.model.generator
        try:
            if self.ema is not None:
                self.model.generator = self.ema
            return self.model.save_pretrained(path)
        finally:
            self.model.generator = gen

    def close(self) -> None:
        self.dist.close()


# --------------------------------------------------------------------------- entry point


def train(
    config: Mapping[str, Any] | str | Path,
    *,
    run_dir: str | Path | None = None,
    max_steps: int | None = None,
    resume: bool = True,
    device: str | None = None,
) -> Path:
    """Train from a run config (dict or YAML/JSON/TOML file with ``model``, ``data``, ``train``).

    The model is composed after seeding with ``train.seed`` so that a resumed run starts from
    the same initial weights. Returns the run directory. This is ``synth train CONFIG``.
    """
    from ..compose import _read_file, compose
    from ..data import build_dataset

    data = _read_file(Path(config)) if isinstance(config, (str, Path)) else dict(config)
    run = _validate(RunConfig, data, "run config")
    overrides: dict[str, Any] = {}
    if run_dir is not None:
        overrides["run_dir"] = str(run_dir)
    if max_steps is not None:
        overrides["steps"] = max_steps
    if device is not None:
        overrides["device"] = device
    tcfg = run.train.model_copy(update=overrides)
    tcfg = _validate(TrainerConfig, tcfg.model_dump(), "trainer config")
    dataset = build_dataset(run.data)
    _seed_everything(tcfg.seed)
    model = compose(run.model)
    k = getattr(model.generator.config, "num_classes", None)
    if k is not None and getattr(dataset, "num_classes", None) not in (None, k):
        raise ConfigError(
            f"the data set has num_classes = {dataset.num_classes} but the generator was built "
            f"for num_classes = {k}; make them agree in the config"
        )
    out = Path(tcfg.run_dir)
    out.mkdir(parents=True, exist_ok=True)
    if int(os.environ.get("RANK", "0")) == 0:
        saved = {"model": run.model, "data": run.data, "train": tcfg.model_dump(mode="json")}
        (out / "config.json").write_text(json.dumps(saved, indent=2, default=str))
    trainer = Trainer(model, dataset, tcfg)
    try:
        trainer.fit(resume=resume)
    finally:
        trainer.close()
    return out
