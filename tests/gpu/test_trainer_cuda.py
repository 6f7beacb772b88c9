"""The Trainer on CUDA: fp32, bf16 and fp16 autocast (with the fp16 GradScaler),
``channels_last`` + ``torch.compile``, and DDP over NCCL with one rank under torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import synth
from synth.train import Trainer

from ..core.test_trainer import SPEC, ToyData
from .marks import requires_cuda

pytestmark = requires_cuda

TESTS = Path(__file__).parents[1]


def _train(tmp: Path, **cfg) -> tuple[Trainer, dict, dict]:
    torch.manual_seed(0)
    model = synth.compose(SPEC)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    base = dict(
        steps=3,
        batch_size=2,
        run_dir=str(tmp),
        checkpoint_every=3,
        log_every=1,
        sample_every=None,
        seed=0,
        progress=False,
        device="cuda",
    )
    t = Trainer(model, ToyData(), {**base, **cfg})
    summary = t.fit()
    return t, before, summary


def _assert_trained(t: Trainer, before: dict, summary: dict) -> None:
    assert summary["step"] == 3
    assert next(t.model.generator.parameters()).device.type == "cuda"
    losses = summary["losses"]
    assert losses and all(v == v and abs(v) < 1e6 for v in losses.values()), losses
    after = t.model.state_dict()
    moved = [k for k in before if not torch.equal(before[k].cpu(), after[k].detach().cpu())]
    assert any(k.startswith("generator.") for k in moved)
    lines = (Path(summary["run_dir"]) / "log.jsonl").read_text().splitlines()
    assert lines and json.loads(lines[-1])


@pytest.mark.parametrize("precision", ["off", "bf16", "fp16"])
def test_trainer_steps_on_cuda_with_amp(tmp_path, precision):
    t, before, summary = _train(tmp_path, precision=precision)
    _assert_trained(t, before, summary)
    if precision == "fp16":  # the fp16 path scales the loss
        assert any(t.scaler(k) is not None for k in t.optimizers)
    t.close()


def test_trainer_steps_on_cuda_bf16_channels_last_compiled(tmp_path):
    t, before, summary = _train(
        tmp_path, precision="bf16", channels_last=True, compile=True, compile_backend="inductor"
    )
    _assert_trained(t, before, summary)
    t.close()


def test_trainer_ddp_nccl_one_gpu(tmp_path):
    """torchrun, one rank, NCCL: the Trainer joins the process group, wraps the networks in
    DistributedDataParallel and trains; the checkpoint has no ``module.`` prefix."""
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "1",
            str(Path(__file__).with_name("ddp_cuda_worker.py")),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(TESTS.parent), os.environ.get("PYTHONPATH")) if p
            ),
        },
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    report = json.loads((tmp_path / "ddp.json").read_text())
    assert report["backend"] == "nccl", report
    assert report["world_size"] == 1 and report["step"] == 3, report
    assert report["wrapped"], report
    assert not report["module_prefixed_keys"], report
    assert report["finite"], report
