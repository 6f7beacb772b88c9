"""The Trainer under torchrun (2 ranks, gloo on CPU): DistributedDataParallel wrappers that
stay out of saved state, broadcast initial weights and buffers, freeze rules, parameters and
outputs no loss reads, and agreement with one process on the same items."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import synth
from synth.train import Trainer

from .ddp_worker import registry, spec, trainer_config
from .test_trainer import ToyData

TESTS = Path(__file__).parents[1]
MODULE_KEY = re.compile(r"(^|\.)module\.")


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(Path(__file__).with_name("ddp_worker.py")),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(TESTS)},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def _load(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)


@pytest.mark.slow
def test_ddp_ranks_agree_with_unused_parameters_frozen_rules_and_buffers(ddp_run):
    init0, init1 = _load(ddp_run / "init0.pt"), _load(ddp_run / "init1.pt")
    final0, final1 = _load(ddp_run / "final0.pt"), _load(ddp_run / "final1.pt")
    assert not torch.equal(init0["generator.head.weight"], init1["generator.head.weight"])
    # rank 0's initial weights were broadcast; gradients averaged; buffers are rank 0's
    assert final0.keys() == final1.keys()
    for k in final0:
        assert torch.equal(final0[k], final1[k]), k
    ckpts = ddp_run / "run" / "checkpoints"
    at2, at4 = _load(ckpts / "step-0000002.pt"), _load(ckpts / "step-0000004.pt")
    # frozen until step 2 (rank 0's initial value), trained after
    rgb = "generator.to_rgb.weight"
    assert torch.equal(at2["model"][rgb], init0[rgb])
    assert not torch.equal(final0[rgb], init0[rgb])
    # an output head no loss reads and a prior-only parameter: no gradient, no hang
    for k in ("generator.extra_head.weight", "injector.prior_scale"):
        assert torch.equal(final0[k], init0[k]), k
    assert not torch.equal(final0["injector.enc.weight"], init0["injector.enc.weight"])
    # BatchNorm statistics moved; the checkpoint holds rank 0's, which every rank ends with
    stats = [k for k in final0 if k.endswith("running_mean")]
    assert stats
    for k in stats:
        assert not torch.equal(final0[k], init0[k]) and torch.equal(at4["model"][k], final0[k])


@pytest.mark.slow
def test_ddp_saved_state_has_no_module_prefix_and_exports_the_ema(ddp_run):
    state = _load(ddp_run / "run" / "checkpoints" / "step-0000004.pt")
    exported = load_file(str(ddp_run / "run" / "model" / "model.safetensors"))
    for keys in (state["model"], state["ema"]["weights"], exported):
        assert not [k for k in keys if MODULE_KEY.search(k)]
    assert state["world"] == 2 and int(state["ema"]["n_averaged"]) == 4
    # the export's batch-norm statistics are recomputed on the EMA generator's own activations
    # after the last checkpoint (test_trainer.py); every weight is the checkpoint's
    recomputed = ("running_mean", "running_var", "num_batches_tracked")
    for k, v in state["ema"]["weights"].items():
        if not k.endswith(recomputed):
            assert torch.equal(exported[f"generator.{k}"], v), k
    assert set(state["schedulers"]) == {"generator", "injector", "discriminator"}


@pytest.mark.slow
def test_ddp_two_ranks_match_one_process_on_the_same_items(ddp_run, tmp_path):
    """2 ranks x batch 2 see the items one process sees in a batch of 4 (rank r takes every
    other item of the epoch order), and every loss is a batch mean, so the averaged gradients
    equal the single-process ones up to summation order (~1e-8). Not bitwise: the sums run in
    another order, as they did with the hand-rolled all-reduce before."""
    m0, m1 = _load(ddp_run / "match0.pt"), _load(ddp_run / "match1.pt")
    for k in m0:
        assert torch.equal(m0[k], m1[k]), k
    torch.manual_seed(0)
    model = synth.compose(spec("core.simple_generator", "core.instance_norm"), registry=registry())
    Trainer(model, ToyData(), trainer_config(str(tmp_path), 4)).fit()
    single = model.state_dict()
    # a conv bias right before an instance norm has zero true gradient: Adam scales its
    # rounding noise up to lr-sized steps, so those are not comparable
    before_norm = re.compile(r"(generator\.stages\.\d+|discriminator\..*layers\.[12])\.conv\.bias")
    compared = [k for k in single if not before_norm.fullmatch(k)]
    assert len(compared) > len(single) // 2
    for k in compared:
        torch.testing.assert_close(m0[k], single[k], rtol=0, atol=1e-6, msg=k)


@pytest.mark.slow
def test_an_update_whose_forward_bypassed_ddp_is_refused(ddp_run):
    for rank in (0, 1):
        message = (ddp_run / f"unsynced{rank}.txt").read_text()
        assert "no forward of this loss ran through its DDP view" in message, message
        assert "'generator'" in message and "synced(updater, model.generator)" in message
