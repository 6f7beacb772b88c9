"""The Trainer: devices, precision, the data order, the loop, sample grids and the export.

An objective (``core.gan``, ``cimle.imle``, ...) supplies one iteration's logic through
``objective.step(model, cond, real, updater)``; everything around it is the Trainer's
(DESIGN §6), in modules named for what they hold: :mod:`.config` (the settings),
:mod:`.optimization` (optimizers, LR schedules, GradScalers, freeze rules), :mod:`.updater`
(what the objective calls), :mod:`.ema`, :mod:`.distributed` (torchrun and DDP),
:mod:`.checkpoint` and :mod:`.logs`.

Exact resume: the data order is a function of ``(seed, epoch)`` and each item's augmentation of
``(seed, epoch, index)`` (see :mod:`synth.data`); checkpoints hold the weights, optimizer,
scheduler and scaler states, EMA, the position in the epoch and every RNG state (torch CPU and
CUDA, numpy, Python; per rank). A run killed at any point and resumed from its last checkpoint
replays the same iterations and ends with the same weights as an uninterrupted run (bitwise
on CPU).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..model import SynthesisModel
from .checkpoint import CheckpointError, Checkpoints, rng_state, seed_everything, set_rng_state
from .config import TrainerConfig, validate
from .distributed import Process, Replicas, resolve_device
from .ema import GeneratorEMA, with_generator
from .logs import RunLog, TensorBoard, progress_line
from .optimization import Optimization, schedule_factor
from .updater import Updater

__all__ = ["Trainer", "TrainingDiverged", "epoch_order"]


class TrainingDiverged(FloatingPointError):
    """A logged loss became NaN or Inf; the run stopped without writing a checkpoint."""

    def __init__(self, message: str, *, step: int, loss: str, checkpoint: Path | None):
        super().__init__(message)
        self.step, self.loss, self.checkpoint = step, loss, checkpoint


def epoch_order(n: int, seed: int, epoch: int) -> Tensor:
    """The permutation of ``range(n)`` used in ``epoch`` (the same on every rank and resume)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def _trained_networks(model: SynthesisModel, names: tuple[str, ...]) -> dict[str, nn.Module]:
    """The model's networks among ``names`` that have parameters to train."""
    out = {}
    for name in names:
        net = getattr(model, name, None)
        if isinstance(net, nn.Module) and any(p.requires_grad for p in net.parameters()):
            out[name] = net
    return out


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

    Under ``torchrun`` each rank trains on its slice of the data and the networks the
    objective updates run through ``DistributedDataParallel`` (:mod:`.distributed`).
    """

    def __init__(
        self,
        model: SynthesisModel,
        dataset: Any,
        config: TrainerConfig | Mapping[str, Any] | None = None,
    ) -> None:
        self.config: TrainerConfig = validate(TrainerConfig, config, "trainer config")
        cfg = self.config
        if model.objective is None:
            raise ConfigError(
                "the model has no training objective: add e.g. `objective: {type: core.gan}` "
                "to the model spec"
            )
        self.model, self.dataset, self.objective = model, dataset, model.objective
        self._place_model()
        self.run_dir = Path(cfg.run_dir)
        self._checkpoints = Checkpoints(self.run_dir / "checkpoints", cfg.keep_last)
        self._log = RunLog(self.run_dir / "log.jsonl", writer=self.dist.main)
        _ = self.batches_per_epoch  # fail now, not at the first step, on a too-small data set
        self.networks = _trained_networks(model, tuple(self.objective.networks))
        self.optim = Optimization(
            model,
            self.networks,
            cfg,
            known=tuple(self.objective.networks),
            device_type=self.device.type,
        )
        self._ema = GeneratorEMA(model.generator, cfg.ema) if cfg.ema is not None else None
        if cfg.compile:  # after the EMA copy: a compiled module does not deep-copy
            for name in ("generator", "discriminator"):
                net = getattr(model, name, None)
                if net is not None:
                    net.compile(backend=cfg.compile_backend)
        self.replicas = Replicas(self.dist, self.device)
        self.updater = Updater(cfg, self.optim, self.replicas, self.device)
        self.step = 0
        self.epoch = 0
        self.position = 0  # batches consumed in the current epoch (per rank)
        self._grid_items: list[dict[str, Any]] | None = None
        self._stop_requested = False
        self._tensorboard: TensorBoard | None = None
        self._use_tensorboard = TensorBoard.wanted(cfg.tensorboard)  # fail before training
        self.resumed_from: int | None = None

    def _place_model(self) -> None:
        """Join torchrun's process group, pick the device, move the model there."""
        cfg = self.config
        probe = cfg.device
        if probe == "auto":
            probe = "cuda" if torch.cuda.is_available() else "cpu"
        self.dist = Process(torch.device(probe).type)
        self.device = resolve_device(cfg.device, self.dist.local_rank)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if cfg.precision == "fp16" and self.device.type == "cpu":
            warnings.warn(
                "fp16 autocast on CPU is slow and rarely useful; bf16 is the CPU choice",
                stacklevel=3,
            )
        self.model.to(self.device)
        if cfg.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.model.train()

    # ------------------------------------------------------------------ state
    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self.optim.optimizers

    @property
    def params(self) -> dict[str, list[nn.Parameter]]:
        return self.optim.params

    @property
    def ema(self) -> nn.Module | None:
        """The EMA generator (``train.ema``), or None."""
        return self._ema.module if self._ema is not None else None

    def scaler(self, key: str) -> torch.amp.GradScaler | None:
        """The GradScaler of one update group (fp16 only)."""
        return self.optim.scaler(key)

    def lr_factor(self, step: int) -> float:
        """Constant, then linear decay to 0 at ``steps`` (pix2pixHD/SPADE schedule), or the
        multi-step decay of ``lr_milestones``."""
        return schedule_factor(step, self.config)

    def sampling_model(self) -> SynthesisModel:
        """The model the sample grids and the export use: with the EMA generator when EMA is
        on (the trained model itself is never altered)."""
        return self.model if self._ema is None else with_generator(self.model, self._ema.module)

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
        return self._checkpoints.paths()

    def save_checkpoint(self) -> Path:
        """Write ``checkpoints/step-<7 digits>.pt`` atomically (rank 0) and keep the last K."""
        rngs = self.dist.gather_objects(rng_state())
        path = self._checkpoints.path(self.step)
        if self.dist.main:
            state = {
                "step": self.step,
                "epoch": self.epoch,
                "position": self.position,
                "world": self.dist.world,
                # the bare networks: DDP's wrappers are the Trainer's, so no `module.` keys
                "model": self.model.checkpoint_state(),
                "ema": self._ema.state_dict() if self._ema is not None else None,
                **self.optim.state_dict(),
                "objective": self.objective.state_dict(),
                "rng": rngs,
                "config": self.config.model_dump(mode="json"),
            }
            self._checkpoints.write(self.step, state)
        self.dist.barrier()
        return path

    def load_checkpoint(self, path: Path | None = None) -> Path | None:
        """Restore the given checkpoint, or the newest readable one (a truncated or corrupt file
        is reported and the previous one used). Returns the path restored, or None."""
        for cand, state in self._checkpoints.readable(path):
            self._restore(state, cand)
            return cand
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
        self._restore_ema(state, path)
        self.optim.load_state_dict(state, state["step"])
        self.objective.load_state_dict(state.get("objective") or {})
        self.step, self.epoch, self.position = state["step"], state["epoch"], state["position"]
        set_rng_state(state["rng"][self.dist.rank])

    def _restore_ema(self, state: dict[str, Any], path: Path) -> None:
        if self._ema is None:
            return
        ema = state["ema"]
        if ema is None:
            raise CheckpointError(f"{path} has no EMA weights but train.ema is set")
        if state.get("version", 1) < 2:  # version 1 saved the EMA generator's state dict
            ema = {"weights": ema, "n_averaged": max(int(state["step"]), 1)}
        self._ema.load_state_dict(ema)

    # ------------------------------------------------------------------ one step
    def _apply_schedule(self) -> None:
        """Before each step: the freeze rules for this step, and DDP wrappers that match the
        parameters that train now."""
        self.optim.apply_freeze(self.step)
        self.replicas.sync(self.networks)

    def _train_step(self, batch: Any) -> dict[str, float]:
        """One iteration on ``batch``; returns the lrs it used."""
        batch = batch.to(self.device, non_blocking=True)
        real = batch.real
        if self.config.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        self._apply_schedule()
        lrs = self.optim.lrs()
        self.updater.step = self.step
        logs = self.objective.step(self.model, batch.cond, real, self.updater)
        self._check_finite(logs)
        if self._ema is not None:
            self._ema.update(self.model.generator)
        self.optim.step_schedules()
        self.step += 1
        self._log.add(logs)
        return lrs

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

    def _after_step(self, end: int, lrs: dict[str, float], bar: Any) -> None:
        """Log line, sample grid and checkpoint when due; stop when asked to."""
        cfg = self.config
        done = self.step == end
        if self.step % cfg.log_every == 0 or done:
            head = {"step": self.step, "epoch": self.epoch}
            line = self._log.flush(head, lrs, images=cfg.batch_size * self.dist.world)
            bar.set_postfix(self._log.shown())
            if self._plain_progress():
                self._say(progress_line(line, end, skip=self._settings()))
            if self._tensorboard is not None:
                self._tensorboard.add(line)
        grid_due = cfg.sample_every is not None and (self.step % cfg.sample_every == 0 or done)
        if grid_due and self.dist.main:
            self.generate_grid(self.run_dir / "samples" / f"step-{self.step:07d}.png")
        if self.step % cfg.checkpoint_every == 0 or done or self._stop_requested:
            self.save_checkpoint()
        if self._stop_requested:
            raise KeyboardInterrupt(
                f"stopped at step {self.step}; checkpoint written, fit() resumes"
            )

    # ------------------------------------------------------------------ the loop
    def fit(self, resume: bool = True) -> dict[str, Any]:
        """Train to ``config.steps``; returns a summary (final step, run dir, last losses).

        Ctrl-C finishes the current step, writes a checkpoint and raises KeyboardInterrupt;
        ``fit()`` again resumes from there.
        """
        self._begin(resume)
        bar = self._progress_bar()
        batches = self._loader()
        start, first, end = time.perf_counter(), self.step, self.config.steps
        self._stop_requested = False
        try:
            with self._sigint_stops():
                while self.step < end:
                    lrs = self._train_step(next(batches))
                    if self.config.time_limit is not None:
                        end = self._time_limited_end(start, first, bar)
                    bar.update(1)
                    self._after_step(end, lrs, bar)
        finally:
            bar.close()
            self.replicas.release()
            if self._tensorboard is not None:
                self._tensorboard.close()
                self._tensorboard = None
        self._recalibrate_ema()
        self._finish()
        return {
            "step": self.step,
            "run_dir": str(self.run_dir),
            "losses": self._log.last,
            "resumed_from": self.resumed_from,
        }

    def _begin(self, resume: bool) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.objective.setup(self.model, self.dataset, self.device)
        seed_everything(self.config.seed + self.dist.rank)
        restored = self.load_checkpoint() if resume else None
        self.resumed_from = self.step if restored is not None else None
        self.optim.place_schedules(self.step)
        self._log.start(resumed_at=self.resumed_from)
        if restored is not None and self.config.progress is not False:
            self._say(f"resumed from step {self.step} of {self.config.steps} ({restored})")
        if self.dist.main and self._use_tensorboard:
            self._tensorboard = TensorBoard(self.run_dir / "tensorboard", self.resumed_from)
        self.dist.barrier()

    # ------------------------------------------------------------------ talking
    def _say(self, text: str) -> None:
        """A line on stderr from rank 0 (what a log file or CI console shows)."""
        if self.dist.main:
            print(text, file=sys.stderr, flush=True)

    def _plain_progress(self) -> bool:
        """Plain log lines instead of the bar: ``progress`` unset and stderr not a TTY."""
        return self.config.progress is None and not sys.stderr.isatty()

    def _settings(self) -> frozenset[str]:
        """Logged keys of the objective that are settings, not losses (no loss curve)."""
        return frozenset(getattr(self.objective, "logged_settings", frozenset()))

    def _progress_bar(self) -> Any:
        from tqdm.auto import tqdm

        show = self.config.progress
        if show is None:
            show = sys.stderr.isatty()
        return tqdm(
            total=self.config.steps,
            initial=self.step,
            disable=not (show and self.dist.main),
            desc="train",
            dynamic_ncols=True,
        )

    #: Training items the EMA generator's batch-norm statistics are recomputed on at the end.
    EMA_RECALIBRATION_ITEMS = 64

    def _recalibrate_ema(self) -> None:
        """The EMA generator's batch-norm statistics, recomputed on its own activations before
        the export (:meth:`GeneratorEMA.recalibrate`): the first ``EMA_RECALIBRATION_ITEMS``
        training items in batches, with prior latents from a generator seeded by
        ``config.seed`` (the global random state, which a resume restores, is not touched)."""
        if self._ema is None:
            return
        from ..data import make_collate

        collate, bs = make_collate(self.dataset), self.config.batch_size
        count = min(len(self.dataset), self.EMA_RECALIBRATION_ITEMS)
        g = torch.Generator(self.device).manual_seed(self.config.seed)
        injector = self.model.injector

        def inputs() -> Iterator[tuple[Any, Any]]:
            for start in range(0, count, bs):
                items = [self.dataset[i] for i in range(start, min(count, start + bs))]
                cond = collate(items).to(self.device).cond
                yield cond, None if injector is None else injector.prior(cond, g)

        with self.updater.autocast():
            self._ema.recalibrate(inputs())

    def _finish(self) -> None:
        """Rank 0's buffers everywhere (what DDP's next forward would broadcast), then the
        exported model and the loss curve."""
        self.dist.broadcast([b for net in self.networks.values() for b in net.buffers()])
        if self.dist.main:
            self.export(self.run_dir / "model")
            from ..extras import MissingExtraError
            from ..viz import LOSS_CURVE_EXCLUDE, loss_curve

            log = self.run_dir / "log.jsonl"
            keys = self._log.curve_keys(LOSS_CURVE_EXCLUDE, self._settings())
            try:
                loss_curve(log, self.run_dir / "loss_curve.png", keys=keys)
            except MissingExtraError as e:  # charts are the [viz] extra; training needs none
                warnings.warn(f"no loss_curve.png: {e}", stacklevel=2)
        self.dist.barrier()

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

    # ------------------------------------------------------------------ outputs
    def generate_grid(self, path: Path) -> Path:
        """Sample grid (condition | real | samples) of fixed inputs, drawn from a fixed seed so
        it never touches the training RNG; with the EMA generator when EMA is on."""
        from ..data import make_collate
        from ..viz import sample_grid

        batch = make_collate(self.dataset)(self._grid_inputs()).to(self.device)
        model = self.sampling_model()
        was_training = self.model.training
        model.eval()
        try:
            g = torch.Generator(self.device).manual_seed(self.config.seed)
            with torch.no_grad(), self.updater.autocast():
                out = model.sample(batch.cond, self.config.num_samples, generator=g)
        finally:
            self.model.train(was_training)
        samples = out.image.float().reshape(
            batch.real.shape[0], self.config.num_samples, *out.image.shape[1:]
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        sample_grid(batch.cond, samples, real=batch.real.float(), path=path)
        return path

    def _grid_inputs(self) -> list[dict[str, Any]]:
        """The first items of epoch 0 (the same grid inputs all run long)."""
        if self._grid_items is None:
            n = min(self.config.sample_inputs, len(self.dataset))
            epoch = getattr(self.dataset, "epoch", None)
            if hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(0)
            self._grid_items = [self.dataset[i] for i in range(n)]
            if epoch is not None and hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(epoch)
        return self._grid_items

    def export(self, path: Path) -> Path:
        """``save_pretrained`` the model (with the EMA generator when EMA is on)."""
        return self.sampling_model().save_pretrained(path)

    def close(self) -> None:
        """Leave the process group this Trainer created (torchrun)."""
        self.replicas.release()
        self.dist.close()
