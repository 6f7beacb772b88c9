"""The Trainer and core.gan: exact resume (in process and after SIGKILL), corrupt checkpoints,
NaN stop, bf16 and compile steps, torchrun data parallel, EMA, schedules, freezing, outputs."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import synth
from synth.registry import discover
from synth.train import Trainer, TrainingDiverged, epoch_order

K = 4


class ToyData(torch.utils.data.Dataset):
    """Label maps of blocks and images coloured by class, with seeded per-item flips."""

    num_classes = K
    fields = frozenset({"label_map"})

    def __init__(self, n: int = 8, size: int = 16, seed: int = 0):
        self.n, self.size, self.seed, self.epoch = n, size, seed, 0
        g = torch.Generator().manual_seed(123)
        self.labels = torch.randint(0, K, (n, size // 4, size // 4), generator=g)
        self.labels = self.labels.repeat_interleave(4, 1).repeat_interleave(4, 2)
        self.colours = torch.rand(K, 3, generator=g) * 2 - 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(self.seed * 1000003 + self.epoch * 10007 + i)
        lab = self.labels[i]
        if torch.rand((), generator=g) < 0.5:
            lab = lab.flip(-1)
        real = self.colours[lab].permute(2, 0, 1).contiguous()
        return {"real": real, "label_map": lab, "index": i}


SPEC = {
    "generator": {
        "type": "core.simple_generator",
        "num_classes": K,
        "ngf": 8,
        "num_stages": 2,
        "z_dim": 4,
    },
    "injector": {"type": "core.gaussian"},
    "discriminator": {"type": "core.patch_discriminator", "ndf": 8, "n_layers": 2},
    "losses": {"gan": {"type": "core.hinge"}, "l1": {"type": "core.l1", "weight": 2.0}},
    "objective": {"type": "core.gan"},
}


def make(tmp: Path, spec=SPEC, **cfg) -> Trainer:
    torch.manual_seed(0)
    model = synth.compose(spec)
    base = dict(
        steps=8,
        batch_size=2,
        run_dir=str(tmp),
        checkpoint_every=3,
        log_every=2,
        sample_every=None,
        seed=0,
    )
    base.update(cfg)
    return Trainer(model, ToyData(), base)


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ----------------------------------------------------------------------------- resume


def test_interrupted_run_resumes_bitwise(tmp_path, monkeypatch):
    full = make(tmp_path / "a", decay_start=4)
    full.fit()
    ref = weights(full)

    interrupted = make(tmp_path / "b", decay_start=4)
    real_step = interrupted.objective.step
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # Ctrl-C during step 5: it finishes, is checkpointed, and stops
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(*args, **kwargs)

    monkeypatch.setattr(interrupted.objective, "step", flaky)
    with pytest.raises(KeyboardInterrupt, match="stopped at step 5"):
        interrupted.fit()
    assert (tmp_path / "b" / "checkpoints" / "step-0000005.pt").exists()

    resumed = make(tmp_path / "b", decay_start=4)
    resumed.fit()
    assert resumed.step == 8
    assert_same(weights(resumed), ref)
    # the log holds each step once (replayed steps are trimmed, not duplicated)
    steps = [
        json.loads(ln)["step"] for ln in (tmp_path / "b" / "log.jsonl").read_text().splitlines()
    ]
    assert steps == [2, 4, 6, 8]


KILL_SCRIPT = """
import sys, torch, synth
sys.path.insert(0, {tests!r})
from core.test_trainer import SPEC, ToyData
from synth.train import Trainer
torch.manual_seed(0)
model = synth.compose(SPEC)
slow = float(sys.argv[2])
step = model.objective.step
def slowed(*a, **k):
    import time; time.sleep(slow)
    return step(*a, **k)
model.objective.step = slowed
Trainer(model, ToyData(), dict(steps=12, batch_size=2, run_dir=sys.argv[1], checkpoint_every=2,
        log_every=1, sample_every=None, seed=0)).fit()
print("finished")
"""


def test_sigkill_mid_run_then_resume_matches_uninterrupted(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT.format(tests=str(Path(__file__).parents[1])))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}

    def run(run_dir: Path, slow: float, kill_after: str | None = None) -> None:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(run_dir), str(slow)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        if kill_after is None:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err.decode()
            return
        deadline = time.time() + 300
        while not (run_dir / "checkpoints" / kill_after).exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.time() < deadline
            time.sleep(0.05)
        time.sleep(0.3)  # well into the next steps, past the checkpoint
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL

    run(tmp_path / "full", 0.0)
    run(tmp_path / "killed", 0.15, kill_after="step-0000006.pt")
    ckpts = sorted(p.name for p in (tmp_path / "killed" / "checkpoints").glob("*.pt"))
    assert ckpts and "step-0000012.pt" not in ckpts
    run(tmp_path / "killed", 0.0)
    a = load_file(str(tmp_path / "full" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "model" / "model.safetensors"))
    assert_same(a, b)


def test_truncated_checkpoint_falls_back_to_previous(tmp_path):
    t = make(tmp_path, steps=6, checkpoint_every=2)
    t.fit()
    newest = t.checkpoints()[-1]
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])
    again = make(tmp_path, steps=6, checkpoint_every=2)
    with pytest.warns(UserWarning, match="unreadable"):
        restored = again.load_checkpoint()
    assert restored.name == "step-0000004.pt" and again.step == 4


def test_keep_last_and_atomic_names(tmp_path):
    t = make(tmp_path, steps=8, checkpoint_every=1, keep_last=2)
    t.fit()
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step-0000007.pt", "step-0000008.pt"]  # no temporaries left


# ----------------------------------------------------------------------------- NaN


class NaNLater(synth.Loss):
    """Finite for two calls, then NaN."""

    roles = frozenset({"generator"})

    def __init__(self, config=None, **kw):
        super().__init__(config, **kw)
        self.calls = 0

    def forward(self, batch):
        self.calls += 1
        value = batch.fake.image.mean() * 0
        return value + (float("nan") if self.calls > 2 else 0.0)


def test_nan_loss_stops_with_step_loss_and_checkpoint(tmp_path):
    plugin = types.ModuleType("nanplug")
    plugin.synth_register = synth.hookimpl(
        lambda registry: registry.add("nanplug.nan_later", kind="loss", target=NaNLater)
    )
    reg = synth.Registry()
    discover(reg, entry_points=False)
    synth.register_plugin(reg, plugin, "nanplug")
    spec = {**SPEC, "losses": {**SPEC["losses"], "boom": {"type": "nanplug.nan_later"}}}
    torch.manual_seed(0)
    model = synth.compose(spec, registry=reg)
    t = Trainer(
        model,
        ToyData(),
        dict(steps=6, batch_size=2, run_dir=str(tmp_path), checkpoint_every=2, sample_every=None),
    )
    with pytest.raises(TrainingDiverged) as err:
        t.fit()
    msg = str(err.value)
    assert "loss 'g/boom' became nan at step 3" in msg
    assert "step-0000002.pt" in msg and err.value.step == 3
    assert [p.name for p in t.checkpoints()] == ["step-0000002.pt"]


# ----------------------------------------------------------------------------- precision, compile


def test_bf16_autocast_step(tmp_path):
    t = make(tmp_path, steps=2, precision="bf16", checkpoint_every=10)
    before = weights(t)
    out = t.fit()
    assert all(torch.isfinite(torch.tensor(v)) for v in out["losses"].values())
    changed = [k for k, v in weights(t).items() if not torch.equal(v, before[k])]
    assert any(k.startswith("generator.") for k in changed)
    assert any(k.startswith("discriminator.") for k in changed)


def test_compiled_training_step(tmp_path):
    torch._dynamo.reset()
    try:
        t = make(tmp_path, steps=2, compile=True, compile_backend="aot_eager", checkpoint_every=10)
        out = t.fit()
    finally:
        torch._dynamo.reset()
    assert all(torch.isfinite(torch.tensor(v)) for v in out["losses"].values())


def test_fp16_scaler_state_is_checkpointed(tmp_path):
    with pytest.warns(UserWarning, match="fp16 autocast on CPU"):
        t = make(tmp_path, steps=2, precision="fp16", checkpoint_every=2)
    t.fit()
    state = torch.load(t.checkpoints()[-1], weights_only=True)
    assert set(state["scalers"]) == {"generator", "discriminator"}


# ----------------------------------------------------------------------------- data parallel

DDP_SCRIPT = """
import os, sys, torch, synth
sys.path.insert(0, {tests!r})
from core.test_trainer import SPEC, ToyData
from synth.train import Trainer
torch.manual_seed(0)
model = synth.compose(SPEC)
t = Trainer(model, ToyData(n=8), dict(steps=4, batch_size=2, run_dir=sys.argv[1],
            checkpoint_every=2, log_every=1, sample_every=None, seed=0))
t.fit()
rank = int(os.environ["RANK"])
torch.save({{k: v for k, v in model.state_dict().items()}}, f"{{sys.argv[1]}}/rank{{rank}}.pt")
# time_limit: rank 1 is slower, yet both ranks must stop at the same step
import time
t2 = Trainer(model, ToyData(n=8), dict(steps=10**6, batch_size=2, time_limit=1.5,
             run_dir=sys.argv[1] + "/timed", checkpoint_every=10**6, log_every=10**6,
             sample_every=None, seed=0))
if rank == 1:
    step = t2.objective.step
    def slow(*args, **kwargs):
        time.sleep(0.05)
        return step(*args, **kwargs)
    t2.objective.step = slow
end = t2.fit(resume=False)["step"]
open(f"{{sys.argv[1]}}/timed_rank{{rank}}.txt", "w").write(str(end))
t2.close()
t.close()
"""


@pytest.mark.slow
def test_torchrun_two_ranks_identical_weights_rank0_writes(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT.format(tests=str(Path(__file__).parents[1])))
    run_dir = tmp_path / "run"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(script),
            str(run_dir),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    w0 = torch.load(run_dir / "rank0.pt", weights_only=True)
    w1 = torch.load(run_dir / "rank1.pt", weights_only=True)
    assert_same(w0, w1)
    steps = [json.loads(ln)["step"] for ln in (run_dir / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # one writer
    state = torch.load(run_dir / "checkpoints" / "step-0000004.pt", weights_only=True)
    assert state["world"] == 2 and len(state["rng"]) == 2
    # under time_limit the ranks agreed on where to stop
    ends = [(run_dir / f"timed_rank{r}.txt").read_text() for r in (0, 1)]
    assert ends[0] == ends[1] and int(ends[0]) >= 1
    # each rank saw its own half of every epoch
    order = epoch_order(8, 0, 0)
    assert set(order[0::2].tolist()).isdisjoint(order[1::2].tolist())


# ----------------------------------------------------------------------------- the rest


def test_ema_is_exported(tmp_path):
    t = make(tmp_path, steps=3, ema=0.5, checkpoint_every=10)
    t.fit()
    exported = synth.load(tmp_path / "model")
    ema = t.ema.state_dict()
    for k, v in exported.generator.state_dict().items():
        assert torch.equal(v, ema[k]), k
    live = t.model.generator.state_dict()
    assert any(not torch.equal(live[k], ema[k]) for k in ema)


def test_schedule_ttur_and_freeze(tmp_path):
    t = make(
        tmp_path,
        steps=10,
        decay_start=5,
        optimizers={"generator": {"lr": 1e-4, "betas": [0, 0.9]}, "discriminator": {"lr": 4e-4}},
        freeze=[{"pattern": "generator.to_rgb.*", "until": 3}],
    )
    assert [t.lr_factor(s) for s in (0, 4, 5, 7, 10)] == [1.0, 1.0, 1.0, 0.6, 0.0]
    assert t.optimizers["generator"].param_groups[0]["betas"] == (0.0, 0.9)
    rgb = t.model.generator.to_rgb.weight.detach().clone()
    t.config.steps = 3  # run the frozen part only
    t.fit()
    assert torch.equal(t.model.generator.to_rgb.weight, rgb)
    assert t.optimizers["discriminator"].param_groups[0]["lr"] == pytest.approx(4e-4)


def test_bad_config_errors(tmp_path):
    with pytest.raises(synth.ConfigError, match="unknown field 'stepz'"):
        make(tmp_path, stepz=3)
    with pytest.raises(synth.ConfigError, match="matches no parameter"):
        make(tmp_path, freeze=[{"pattern": "generator.nothing.*", "until": 2}])
    with pytest.raises(synth.ConfigError, match="fewer than one batch"):
        Trainer(synth.compose(SPEC), ToyData(n=1), dict(run_dir=str(tmp_path)))
    model = synth.compose({k: v for k, v in SPEC.items() if k != "objective"})
    with pytest.raises(synth.ConfigError, match="no training objective"):
        Trainer(model, ToyData(), dict(run_dir=str(tmp_path)))


def test_outputs_log_grid_curve_model(tmp_path):
    t = make(tmp_path, steps=4, sample_every=2, log_every=1, checkpoint_every=4)
    t.fit()
    lines = [json.loads(ln) for ln in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [ln["step"] for ln in lines] == [1, 2, 3, 4]
    assert "d/total" not in lines[0]  # one discriminator term: the total would repeat it
    assert {
        "g/gan",
        "g/l1",
        "g/total",
        "d/gan",
        "lr/generator",
        "time/step_s",
        "time/images_per_s",
    } <= set(lines[0])
    assert (tmp_path / "samples" / "step-0000002.png").exists()
    assert (tmp_path / "samples" / "step-0000004.png").exists()
    assert (tmp_path / "loss_curve.png").exists()
    model = synth.load(tmp_path / "model")
    assert isinstance(model, synth.SynthesisModel)


def test_gan_discriminator_gets_no_gradient_from_the_generator_step(tmp_path):
    t = make(tmp_path, steps=1)
    model = t.model
    cond = synth.Condition(label_map=torch.randint(0, K, (2, 16, 16)), num_classes=K)
    real = torch.rand(2, 3, 16, 16) * 2 - 1
    seen = {}

    class Spy:
        step, d_steps = 0, 1

        def autocast(self):
            return torch.autocast("cpu", enabled=False)

        def update(self, network, loss):
            loss.backward()
            seen[network] = [p.grad is not None for p in model.discriminator.parameters()]
            for p in model.parameters():
                p.grad = None

    logs = model.objective.step(model, cond, real, Spy())
    assert not any(seen[("generator", "injector")])
    assert all(seen["discriminator"])
    assert {"g/gan", "g/l1", "d/gan"} <= set(logs)


# ----------------------------------------------------------------------------- options


def test_channels_last_and_grad_clip_step(tmp_path):
    t = make(tmp_path, steps=2, channels_last=True, grad_clip=1e-3, checkpoint_every=10)
    w = t.model.generator.head.weight
    assert w.is_contiguous(memory_format=torch.channels_last)
    before = weights(t)
    t.fit()
    # Adam's first step moves each weight by ~lr whatever the clip; check the clip ran on norms
    assert any(not torch.equal(v, before[k]) for k, v in weights(t).items())


def test_grad_clip_bounds_the_update_norm(tmp_path):
    t = make(
        tmp_path,
        steps=1,
        grad_clip=1e-6,
        checkpoint_every=10,
        optimizer={"type": "adam", "lr": 1.0, "betas": [0.0, 0.0]},
    )
    norms = []
    real_update = t.updater.update

    def spy(network, loss):
        real_update(network, loss)
        params = [
            p
            for n in ([network] if isinstance(network, str) else network)
            if n in t.params
            for p in t.params[n]
            if p.grad is not None
        ]
        norms.append(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))

    t.updater.update = spy
    t.fit()
    assert all(n <= 1e-6 * 1.0001 for n in norms)


def test_d_steps_updates_generator_every_other_step(tmp_path):
    t = make(tmp_path, steps=4, d_steps=2, checkpoint_every=10)
    seen = []
    real_update = t.updater.update

    def spy(network, loss):
        seen.append((t.updater.step, network))
        real_update(network, loss)

    t.updater.update = spy
    t.fit()
    g_steps = [s for s, n in seen if n == ("generator", "injector")]
    d_steps = [s for s, n in seen if n == "discriminator"]
    assert g_steps == [0, 2] and d_steps == [0, 1, 2, 3]


def test_vae_gan_trains_the_encoder_with_kl(tmp_path):
    from synth.testing._tiny import TinyInjector

    plugin = types.ModuleType("encplug")
    plugin.synth_register = synth.hookimpl(
        lambda registry: registry.add("encplug.encoder", kind="injector", target=TinyInjector)
    )
    reg = synth.Registry()
    discover(reg, entry_points=False)
    synth.register_plugin(reg, plugin, "encplug")
    spec = {
        **SPEC,
        "injector": {"type": "encplug.encoder"},
        "losses": {**SPEC["losses"], "kl": {"type": "core.kl", "weight": 0.05}},
    }
    torch.manual_seed(0)
    model = synth.compose(spec, registry=reg)
    t = Trainer(
        model,
        ToyData(),
        dict(
            steps=2,
            batch_size=2,
            run_dir=str(tmp_path),
            checkpoint_every=10,
            log_every=1,
            sample_every=None,
        ),
    )
    assert set(t.optimizers) == {"generator", "injector", "discriminator"}
    enc = model.injector.enc.weight.detach().clone()
    t.fit()
    assert not torch.equal(model.injector.enc.weight, enc)
    line = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[0])
    assert line["g/kl"] > 0


def test_synth_train_cli_on_the_demo_set(tmp_path):
    import yaml

    from synth.cli import main

    config = {
        "model": {**SPEC, "generator": {**SPEC["generator"], "num_classes": 4}},
        "data": {"type": "demo", "size": 16, "num_classes": 4, "crops_per_photo": 1},
        "train": {"steps": 2, "batch_size": 2, "sample_every": 2, "checkpoint_every": 2},
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", str(path), "--run-dir", str(tmp_path / "run")]) == 0
    run = tmp_path / "run"
    for name in (
        "config.json",
        "log.jsonl",
        "loss_curve.png",
        "model/synth.json",
        "samples/step-0000002.png",
        "checkpoints/step-0000002.pt",
    ):
        assert (run / name).exists(), name
    demo4 = json.dumps({"type": "demo", "size": 16, "num_classes": 4})
    sample = ["sample", str(run / "model"), "-n", "2", "--out", str(tmp_path / "s")]
    assert main([*sample, "--data", demo4, "--index", "0", "--index", "1"]) == 0
    assert (tmp_path / "s" / "grid.png").exists()
    assert (tmp_path / "s" / "sample_01_01.png").exists()
    # the demo set's default has 8 classes: refused with a message, not a crash
    assert main([*sample, "--data", "demo", "--index", "0"]) == 1


def test_objective_setup_and_state_are_checkpointed(tmp_path):
    from synth.parts.objectives import GAN

    class Counting(GAN):
        def setup(self, model, dataset, device):
            self.dataset_len = len(dataset)

        def step(self, model, cond, real, updater):
            self.calls = getattr(self, "calls", 0) + 1
            return super().step(model, cond, real, updater)

        def state_dict(self):
            return {"calls": torch.tensor(self.calls)}

        def load_state_dict(self, state):
            self.calls = int(state["calls"]) if state else 0

    t = make(tmp_path, steps=3, checkpoint_every=3)
    t.model.objective = t.objective = Counting(t.objective.config)
    t.fit()
    assert t.objective.dataset_len == 8
    assert int(torch.load(t.checkpoints()[-1], weights_only=True)["objective"]["calls"]) == 3
    again = make(tmp_path, steps=4, checkpoint_every=3)
    again.model.objective = again.objective = Counting(again.objective.config)
    again.fit()
    assert again.objective.calls == 4  # 3 restored + 1 new


def test_time_limit_ends_the_run_like_reaching_steps(tmp_path, monkeypatch):
    """A fake clock: every step takes 10 s, the limit is 35 s -> 4 steps, then the normal end
    (checkpoint, exported model, loss curve), and the bar's total became the expected end."""
    import synth.train as tr

    clock = {"t": 0.0}
    real_step = tr.Trainer._apply_schedule

    def slow_schedule(self):
        clock["t"] += 10.0
        return real_step(self)

    monkeypatch.setattr(time, "perf_counter", lambda: clock["t"])
    monkeypatch.setattr(tr.Trainer, "_apply_schedule", slow_schedule)
    t = make(tmp_path, steps=1000, time_limit=35.0, checkpoint_every=1000, log_every=1000)
    summary = t.fit()
    assert summary["step"] == 4 and t.step == 4
    assert (tmp_path / "model" / "synth.json").exists()
    assert (tmp_path / "loss_curve.png").exists()
    assert list((tmp_path / "checkpoints").iterdir())  # the end wrote a checkpoint
    lines = [json.loads(ln) for ln in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [ln["step"] for ln in lines] == [4]  # the last step is logged, as at `steps`
    # a second fit() resumes and trains another 35 s
    assert t.fit()["step"] == 8


# ----------------------------------------------------------------------------- schedules and EMA


def test_ema_and_lr_schedule_resume_bitwise(tmp_path, monkeypatch):
    """EMA (AveragedModel) and LambdaLR state go into checkpoints: stopping at step 3 and
    resuming ends with the same weights, EMA weights and lrs as an uninterrupted run."""
    cfg = dict(steps=6, decay_start=2, ema=0.8, checkpoint_every=10)
    full = make(tmp_path / "a", **cfg)
    full.fit()

    stopped = make(tmp_path / "b", **cfg)
    real_step = stopped.objective.step

    def stop_at_3(*args, **kwargs):
        out = real_step(*args, **kwargs)
        if stopped.step == 2:  # this is the 3rd step
            stopped.request_stop()
        return out

    monkeypatch.setattr(stopped.objective, "step", stop_at_3)
    with pytest.raises(KeyboardInterrupt, match="stopped at step 3"):
        stopped.fit()
    state = torch.load(stopped.checkpoints()[-1], weights_only=True)
    assert state["version"] == 2 and int(state["ema"]["n_averaged"]) == 3
    assert {s["last_epoch"] for s in state["schedulers"].values()} == {3}

    resumed = make(tmp_path / "b", **cfg)
    resumed.fit()
    assert_same(weights(resumed), weights(full))
    assert_same(resumed.ema.state_dict(), full.ema.state_dict())
    assert resumed.optimizers["generator"].param_groups[0]["lr"] == pytest.approx(0.0)
    lrs = [json.loads(ln)["lr/generator"] for ln in (tmp_path / "b" / "log.jsonl").open()]
    assert lrs == pytest.approx([2e-4 * full.lr_factor(s) for s in (1, 3, 5)])


def test_multistep_lr_schedule_matches_torch_and_resumes(tmp_path, monkeypatch):
    """``lr_milestones``/``lr_gamma``: the lrs of every step are those of torch's
    MultiStepLR stepped once per Trainer step (a repeated milestone multiplies twice), the
    schedule resumes from a checkpoint, and it cannot be combined with ``decay_start``."""
    cfg = dict(steps=6, lr_milestones=[2, 4, 4], lr_gamma=0.5, log_every=1, checkpoint_every=10)
    full = make(tmp_path / "a", **cfg)
    full.fit()
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=2e-4)
    ref = torch.optim.lr_scheduler.MultiStepLR(opt, [2, 4, 4], 0.5)
    want = []
    for _ in range(6):
        want.append(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()
    lrs = [json.loads(ln)["lr/generator"] for ln in (tmp_path / "a" / "log.jsonl").open()]
    assert lrs == pytest.approx(want)  # 2e-4, 2e-4, 1e-4, 1e-4, 2.5e-5, 2.5e-5
    assert [full.lr_factor(s) for s in range(6)] == pytest.approx([w / 2e-4 for w in want])

    stopped = make(tmp_path / "b", **cfg)
    real_step = stopped.objective.step

    def stop_at_3(*args, **kwargs):
        out = real_step(*args, **kwargs)
        if stopped.step == 2:
            stopped.request_stop()
        return out

    monkeypatch.setattr(stopped.objective, "step", stop_at_3)
    with pytest.raises(KeyboardInterrupt):
        stopped.fit()
    resumed = make(tmp_path / "b", **cfg)
    resumed.fit()
    for name in ("generator", "discriminator"):
        got = resumed.optimizers[name].param_groups[0]["lr"]
        assert got == pytest.approx(full.optimizers[name].param_groups[0]["lr"])
    assert_same(weights(resumed), weights(full))
    with pytest.raises(synth.ConfigError, match="decay_start"):
        make(tmp_path / "c", lr_milestones=[2], decay_start=3)


def test_ema_follows_the_averaged_model_formula(tmp_path):
    """W_ema = W after the first step, then W_ema <- d·W_ema + (1-d)·W; the live generator is
    never replaced (no swapping in and out for grids or the export)."""
    t = make(tmp_path, steps=2, ema=0.75, checkpoint_every=10, sample_every=1)
    generator = t.model.generator
    seen = []
    real_step = t.objective.step

    def record(*args, **kwargs):
        out = real_step(*args, **kwargs)
        seen.append({k: v.detach().clone() for k, v in generator.state_dict().items()})
        return out

    t.objective.step = record
    t.fit()
    assert t.model.generator is generator
    ema = t.ema.state_dict()
    for k, w1 in seen[0].items():
        expected = 0.75 * w1 + 0.25 * seen[1][k] if w1.is_floating_point() else seen[1][k]
        torch.testing.assert_close(ema[k], expected, rtol=0, atol=1e-7, msg=k)
    assert (tmp_path / "samples" / "step-0000002.png").exists()


def test_single_process_runs_the_bare_networks(tmp_path):
    t = make(tmp_path, steps=1, checkpoint_every=10)
    seen = []
    real_step = t.objective.step

    def spy(model, cond, real, updater):
        seen.append(updater.synced(model.generator) is model.generator)
        seen.append(updater.synced(model.discriminator) is model.discriminator)
        return real_step(model, cond, real, updater)

    t.objective.step = spy
    t.fit()
    assert seen == [True, True]
    state = torch.load(t.checkpoints()[-1], weights_only=True)
    assert not [k for k in state["model"] if k.startswith("module.") or ".module." in k]


def test_unknown_network_in_optimizers_is_an_error(tmp_path):
    with pytest.raises(synth.ConfigError, match=r"optimizers has settings for \['genrator'\]"):
        make(tmp_path, optimizers={"genrator": {"lr": 1e-4}})


def test_version_1_checkpoint_resumes_with_its_schedule(tmp_path):
    """A checkpoint of the previous format (no scheduler state; the EMA as the generator's
    state dict) still resumes: the lr is placed at the checkpoint's step."""
    t = make(tmp_path, steps=2, decay_start=0, ema=0.5, checkpoint_every=2)
    t.fit()
    path = t.checkpoints()[-1]
    state = torch.load(path, weights_only=True)
    state.update(version=1, ema=state["ema"]["weights"])
    del state["schedulers"]
    torch.save(state, path)
    again = make(tmp_path, steps=4, decay_start=0, ema=0.5, checkpoint_every=2)
    assert again.load_checkpoint() == path and again.step == 2
    assert again.optimizers["generator"].param_groups[0]["lr"] == pytest.approx(1e-4)
    again.fit()
    assert again.step == 4


def test_continuing_with_more_steps_moves_the_end_of_the_decay(tmp_path):
    """`synth train --steps N` again with a larger N: the linear decay ends at the new N."""
    make(tmp_path, steps=2, decay_start=0, checkpoint_every=2).fit()
    make(tmp_path, steps=4, decay_start=0, checkpoint_every=2, log_every=1).fit()
    lrs = [json.loads(ln)["lr/generator"] for ln in (tmp_path / "log.jsonl").open()]
    assert lrs == pytest.approx([1e-4, 1e-4, 5e-5])  # steps 2 (of 2), then 3 and 4 (of 4)


def test_ema_batch_norm_statistics_are_the_averaged_generators_own(tmp_path):
    """Before the export, the EMA generator's batch-norm running statistics are recomputed on
    its own activations (the live generator's, copied at each update, belong to other
    weights): cumulative means and variances over the first training items, prior latents
    from a generator seeded by ``seed``; the global random state is untouched."""
    spec = {**SPEC, "generator": {**SPEC["generator"], "norm": {"type": "core.batch_norm"}}}
    t = make(tmp_path, spec=spec, steps=3, ema=0.5, checkpoint_every=10)
    t.fit()
    ema = t.ema
    norms = [m for m in ema.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not ema.training
    exported = synth.load(tmp_path / "model").generator.state_dict()
    for k, v in ema.state_dict().items():
        assert torch.equal(exported[k], v), k
    # the same pass by hand: a copy in train mode on the same items and latents
    trial = copy.deepcopy(ema).train()
    seen: list[list[torch.Tensor]] = [[] for _ in norms]
    blocks = [m for m in trial.modules() if isinstance(m, synth.parts.conditioning.BatchNorm)]
    assert len(blocks) == len(norms)  # each block holds one nn.BatchNorm2d, in order
    for i, m in enumerate(blocks):  # the block normalises functionally: hook the block
        m.register_forward_hook(lambda m, a, o, i=i: seen[i].append(a[0]))
    collate, g = synth.data.make_collate(t.dataset), torch.Generator().manual_seed(0)
    for start in range(0, 8, 2):
        cond = collate([t.dataset[i] for i in range(start, start + 2)]).cond
        trial(cond, t.model.injector.prior(cond, g))
    for m, xs in zip(norms, seen, strict=True):
        means = torch.stack([x.mean(dim=(0, 2, 3)) for x in xs])
        variances = torch.stack([x.var(dim=(0, 2, 3), unbiased=True) for x in xs])
        torch.testing.assert_close(m.running_mean, means.mean(0), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(m.running_var, variances.mean(0), rtol=1e-4, atol=1e-5)
    before, stats = torch.get_rng_state(), [m.running_mean.clone() for m in norms]
    t._recalibrate_ema()
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(m.running_mean, s) for m, s in zip(norms, stats, strict=True))
