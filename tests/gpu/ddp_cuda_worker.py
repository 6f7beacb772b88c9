"""Run by tests/gpu/test_trainer_cuda.py under ``torchrun --nproc_per_node 1`` (not a test):
the Trainer's DistributedDataParallel path on CUDA over NCCL, one rank, bf16 autocast.

One GPU means one rank, and the Trainer skips DDP when the world has one process (there is
nothing to average). To run its DDP path anyway, this worker joins a one-rank NCCL process
group itself and shows the Trainer's :class:`~synth.train.distributed.Replicas` a world of 2
(only the "wrap or not" decision reads it): the networks are then wrapped in
``DistributedDataParallel(device_ids=[0])`` and every step's gradients go through NCCL
all-reduces, as with more GPUs. Writes ``OUT/ddp.json``. Without CUDA (a dry run of this
script on a CPU machine) the same runs on the CPU over gloo.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

import synth
from synth.train import Trainer
from tests.core.test_trainer import SPEC, ToyData

if __name__ == "__main__":
    out = Path(sys.argv[1])
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(0)
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    torch.manual_seed(0)
    model = synth.compose(SPEC)
    cfg = dict(
        steps=3,
        batch_size=2,
        run_dir=str(out / "run"),
        checkpoint_every=3,
        log_every=1,
        sample_every=None,
        seed=0,
        progress=False,
        device="cuda" if cuda else "cpu",
        precision="bf16",
    )
    t = Trainer(model, ToyData(), cfg)
    view = copy.copy(t.replicas.process)
    view.world = 2  # wrap decision only: the NCCL group itself has one rank
    t.replicas.process = view
    wrapped: set[str] = set()
    real_sync = t.replicas.sync

    def spy(networks):
        real_sync(networks)
        for name, net in networks.items():
            if t.replicas.get(net) is not net:
                wrapped.add(name)

    t.replicas.sync = spy
    summary = t.fit()
    ckpt = torch.load(out / "run" / "checkpoints" / "step-0000003.pt", weights_only=True)
    report = {
        "backend": dist.get_backend(),
        "world_size": dist.get_world_size(),
        "step": summary["step"],
        "wrapped": sorted(wrapped),
        "module_prefixed_keys": [k for k in ckpt["model"] if ".module." in f".{k}"],
        "finite": all(v == v for v in summary["losses"].values()),
    }
    (out / "ddp.json").write_text(json.dumps(report))
    t.close()
    dist.destroy_process_group()
