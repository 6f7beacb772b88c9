"""Training that talks (issue 17, item 6): plain progress lines when stderr is not a TTY,
"resumed from step N", a sample grid at the final step, TensorBoard scalars when it is
installed, ``synth train --set``, and loss curves of losses only (no objective settings)."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import pytest
import torch

import synth
from synth.cli import main
from synth.errors import ConfigError
from synth.train import Trainer
from synth.train.logs import RunLog, progress_line
from synth.train.run import apply_settings

from .test_trainer import SPEC, ToyData


def _trainer(run_dir: Path, **cfg) -> Trainer:
    torch.manual_seed(0)
    base = dict(
        steps=4, batch_size=2, run_dir=str(run_dir), checkpoint_every=2, log_every=2,
        sample_every=None, tensorboard=False, device="cpu",
    )  # fmt: skip
    return Trainer(synth.compose(SPEC), ToyData(), {**base, **cfg})


class _NotATTY:
    """stderr as CI and ``nohup`` give it: a file, not a terminal."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        self.lines.extend(ln for ln in text.splitlines() if ln)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


# ------------------------------------------------------------------ progress lines, resume
def test_plain_lines_every_log_every_steps_and_resumed_from(tmp_path, monkeypatch):
    err = _NotATTY()
    monkeypatch.setattr(sys, "stderr", err)
    _trainer(tmp_path, steps=2).fit()
    assert [ln.split("  ")[0] for ln in err.lines] == ["step 2/2"]
    line = err.lines[0]
    assert "g/total" in line and "lr/generator" in line and "s/step" in line, line
    err.lines.clear()
    summary = _trainer(tmp_path, steps=4).fit()  # resumes from the step-2 checkpoint
    assert summary["resumed_from"] == 2
    assert err.lines[0].startswith("resumed from step 2 of 4 (")
    assert "step-0000002.pt" in err.lines[0]
    assert [ln.split("  ")[0] for ln in err.lines[1:]] == ["step 4/4"]


def test_progress_false_is_silent_and_a_tty_gets_the_bar(tmp_path, monkeypatch):
    err = _NotATTY()
    monkeypatch.setattr(sys, "stderr", err)
    _trainer(tmp_path / "a", progress=False).fit()
    _trainer(tmp_path / "a", progress=False, steps=6).fit()  # a resume, silently
    assert err.lines == []
    monkeypatch.setattr(err, "isatty", lambda: True)
    trainer = _trainer(tmp_path / "b")
    assert not trainer._plain_progress()


def test_progress_line_format():
    line = {"step": 20, "epoch": 1, "g/total": 0.693147, "imle/chunk": 256.0,
            "lr/generator": 2e-4, "time/step_s": 0.1534, "time/images_per_s": 13.0}  # fmt: skip
    text = progress_line(line, 100, skip={"imle/chunk"})
    assert text == "step 20/100  epoch 1  g/total 0.6931  lr/generator 0.0002  0.153 s/step"


# ------------------------------------------------------------------ the final grid
def test_sample_grid_at_the_final_step(tmp_path):
    _trainer(tmp_path, steps=3, sample_every=2, sample_inputs=2, num_samples=2).fit()
    grids = sorted(p.name for p in (tmp_path / "samples").glob("*.png"))
    assert grids == ["step-0000002.png", "step-0000003.png"]


# ------------------------------------------------------------------ TensorBoard
class _FakeWriter:
    made: list[_FakeWriter] = []

    def __init__(self, log_dir: str, purge_step: int | None = None) -> None:
        self.log_dir, self.purge_step, self.scalars, self.closed = log_dir, purge_step, [], False
        _FakeWriter.made.append(self)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars.append((tag, value, step))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_tensorboard(monkeypatch):
    """torch.utils.tensorboard's SummaryWriter, recorded (the real one needs tensorboard)."""
    module = types.ModuleType("torch.utils.tensorboard")
    module.SummaryWriter = _FakeWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", module)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: object() if name == "tensorboard" else real(name, *a),
    )
    _FakeWriter.made.clear()
    return _FakeWriter.made


def test_tensorboard_scalars_and_purge_on_resume(tmp_path, fake_tensorboard):
    _trainer(tmp_path, steps=2, tensorboard=True, progress=False).fit()
    (first,) = fake_tensorboard
    assert first.log_dir == str(tmp_path / "tensorboard") and first.purge_step is None
    assert first.closed
    tags = {t for t, _, s in first.scalars if s == 2}
    assert {"g/total", "d/gan", "lr/generator", "epoch"} <= tags
    log = [json.loads(ln) for ln in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert dict((t, v) for t, v, _ in first.scalars)["g/total"] == log[-1]["g/total"]
    _trainer(tmp_path, steps=4, tensorboard=True, progress=False).fit()
    assert fake_tensorboard[1].purge_step == 2  # events after the checkpoint are replayed


def test_tensorboard_default_follows_the_install(tmp_path, monkeypatch, fake_tensorboard):
    _trainer(tmp_path / "c", steps=1, tensorboard=None, progress=False).fit()
    assert len(fake_tensorboard) == 1  # installed: on by default
    real = importlib.util.find_spec
    absent = lambda name, *a: None if name == "tensorboard" else real(name, *a)  # noqa: E731
    monkeypatch.setattr(importlib.util, "find_spec", absent)
    _trainer(tmp_path / "a", steps=1, tensorboard=None, progress=False).fit()
    assert len(fake_tensorboard) == 1  # not installed: off, no error
    with pytest.raises(ConfigError, match="pip install tensorboard"):
        _trainer(tmp_path / "b", steps=1, tensorboard=True, progress=False)


# ------------------------------------------------------------------ loss curves: losses only
def test_curve_keys_leave_out_settings_lrs_and_times(tmp_path):
    log = RunLog(tmp_path / "log.jsonl", writer=True)
    log.start(resumed_at=None)
    for step in (1, 2):
        log.add({"g/l1": torch.tensor(0.5), "imle/distance": torch.tensor(2.0),
                 "imle/chunk": torch.tensor(256.0)})  # fmt: skip
        log.flush({"step": step, "epoch": 0}, {"generator": 1e-4}, images=2)
    from synth.viz import LOSS_CURVE_EXCLUDE

    keys = log.curve_keys(LOSS_CURVE_EXCLUDE, settings={"imle/chunk"})
    assert keys == ["g/l1", "imle/distance"]


def test_cimle_declares_its_chunk_size_a_setting():
    synth_cimle = pytest.importorskip("synth_cimle.objectives")
    assert "imle/chunk" in synth_cimle.IMLE.logged_settings
    assert synth.Objective.logged_settings == frozenset()


# ------------------------------------------------------------------ synth train --set
def test_apply_settings_sets_dotted_paths():
    config = {"model": "core.tiny", "data": {"type": "demo"}, "train": {"steps": 10}}
    out = apply_settings(
        config,
        {"train.batch_size": 8, "train.optimizer.lr": 1e-3, "model.generator.ngf": 16,
         "data.size": 32},
    )  # fmt: skip
    assert out["train"] == {"steps": 10, "batch_size": 8, "optimizer": {"lr": 1e-3}}
    assert out["model"] == {"base": "core.tiny", "generator": {"ngf": 16}}
    assert out["data"] == {"type": "demo", "size": 32}
    assert config["train"] == {"steps": 10}  # the caller's dict is untouched
    with pytest.raises(ConfigError, match=r"model\., data\. or train\."):
        apply_settings(config, {"batch_size": 8})
    with pytest.raises(ConfigError, match="train.steps is 10, not a mapping"):
        apply_settings(config, {"train.steps.x": 1})


def test_synth_train_set_reaches_the_run(tmp_path, capsys):
    spec = tmp_path / "model.json"
    spec.write_text(json.dumps({"spec": SPEC}))
    config = tmp_path / "run.json"
    config.write_text(
        json.dumps(
            {
                "model": str(spec),
                "data": {"type": "demo", "size": 16, "num_classes": 4},
                "train": {"steps": 1, "batch_size": 2, "sample_every": None, "progress": False},
            }
        )
    )
    run_dir = tmp_path / "run"
    code = main(
        ["train", str(config), "--run-dir", str(run_dir), "--device", "cpu",
         "--set", "train.log_every=1", "--set", "train.steps=2",
         "--set", "train.tensorboard=false", "--set", "model.generator.ngf=4"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["train"]["steps"] == 2 and saved["train"]["log_every"] == 1
    assert saved["model"]["generator"]["ngf"] == 4
    code = main(["train", str(config), "--set", "batch_size"])
    assert code == 2 and "--set 'batch_size': write SECTION.KEY=VALUE" in capsys.readouterr().err
