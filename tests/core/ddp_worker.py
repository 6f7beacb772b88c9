"""Run under ``torchrun --nproc_per_node 2`` by tests/core/test_trainer_ddp.py (not a test).

``python -m torch.distributed.run ... ddp_worker.py OUT_DIR`` runs two cases:

- ``parts``: every rank starts from different weights (DDP's first wrapper broadcasts rank
  0's), the generator has BatchNorm (buffers), an output head no loss reads and a freeze rule;
  the injector (a VAE encoder) has a prior-only parameter. Writes each rank's final state.
- ``match``: a deterministic GAN (posterior codes, no noise) trained with 2 ranks x batch 2,
  to be compared with one process x batch 4 on the same items.
- ``unsynced``: an objective that updates the generator from a forward that bypasses its DDP
  view; the Trainer must refuse (the ranks would drift apart). Writes the error message.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import torch
from torch import nn

import synth
from synth.parts.generators import SimpleGenerator
from synth.testing._tiny import TinyInjector
from synth.train import Trainer

sys.path.insert(0, str(Path(__file__).parents[1]))
from core.test_trainer import ToyData

K = 4


class UnusedHeadGenerator(SimpleGenerator):
    """SimpleGenerator plus an RGB head whose output (``pyramid``) no loss reads."""

    def __init__(self, config=None, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.extra_head = nn.Conv2d(3, 3, 1)

    def forward(self, cond, latents=None, *, return_features=False):
        out = super().forward(cond, latents, return_features=return_features)
        out.pyramid = [self.extra_head(out.image)]
        return out


class PriorScaleEncoder(TinyInjector):
    """TinyInjector with a parameter only its prior reads (unused under ``posterior``)."""

    def __init__(self, config=None, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.prior_scale = nn.Parameter(torch.ones(()))

    def prior(self, cond, generator=None):
        latents = super().prior(cond, generator)
        latents.z = latents.z * self.prior_scale
        return latents


class UnsyncedL1(synth.Objective):
    """Updates the generator from a bare forward: the mistake the Trainer must catch."""

    networks = ("generator",)

    def step(self, model, cond, real, updater):
        with updater.autocast():
            fake = model.generator(cond, model.injector.prior(cond)).image
            loss = (fake - real).abs().mean()
        updater.update("generator", loss)
        return {"l1": loss.detach()}


def _register(registry) -> None:
    registry.add("ddpt.generator", kind="generator", target=UnusedHeadGenerator)
    registry.add("ddpt.encoder", kind="injector", target=PriorScaleEncoder)
    registry.add("ddpt.unsynced", kind="objective", target=UnsyncedL1)


def registry() -> synth.Registry:
    plugin = types.ModuleType("ddpt")
    plugin.synth_register = synth.hookimpl(_register)
    reg = synth.Registry()
    synth.registry.discover(reg, entry_points=False)
    synth.register_plugin(reg, plugin, "ddpt")
    return reg


def spec(generator: str, norm: str) -> dict:
    return {
        "generator": {
            "type": generator,
            "num_classes": K,
            "ngf": 8,
            "num_stages": 2,
            "z_dim": 4,
            "norm": {"type": norm},
        },
        "injector": {"type": "ddpt.encoder"},
        "discriminator": {"type": "core.patch_discriminator", "ndf": 8, "n_layers": 2},
        "losses": {
            "gan": {"type": "core.hinge"},
            "l1": {"type": "core.l1", "weight": 2.0},
            "kl": {"type": "core.kl", "weight": 0.05},
        },
        "objective": {"type": "core.gan"},
    }


def trainer_config(run_dir: str, batch_size: int, **extra) -> dict:
    return dict(
        steps=4,
        batch_size=batch_size,
        run_dir=run_dir,
        checkpoint_every=2,
        log_every=1,
        sample_every=None,
        seed=0,
        progress=False,
        **extra,
    )


def run_parts(out: Path, rank: int) -> Trainer:
    torch.manual_seed(100 + rank)  # different weights per rank: DDP must broadcast rank 0's
    model = synth.compose(spec("ddpt.generator", "core.batch_norm"), registry=registry())
    torch.save(model.state_dict(), out / f"init{rank}.pt")
    freeze = [{"pattern": "generator.to_rgb.*", "until": 2}]
    t = Trainer(model, ToyData(), trainer_config(str(out / "run"), 2, freeze=freeze, ema=0.9))
    assert t.updater.synced(model.generator) is model.generator  # wrapped only inside fit()
    t.fit()
    torch.save(model.state_dict(), out / f"final{rank}.pt")
    return t


def run_match(out: Path, rank: int) -> Trainer:
    torch.manual_seed(0)
    model = synth.compose(spec("core.simple_generator", "core.instance_norm"), registry=registry())
    t = Trainer(model, ToyData(), trainer_config(str(out / "match"), 2))
    t.fit()
    torch.save(model.state_dict(), out / f"match{rank}.pt")
    return t


def run_unsynced(out: Path, rank: int) -> Trainer:
    torch.manual_seed(0)
    model_spec = {
        **spec("core.simple_generator", "core.instance_norm"),
        "objective": "ddpt.unsynced",
    }
    model = synth.compose(model_spec, registry=registry())
    t = Trainer(model, ToyData(), trainer_config(str(out / "unsynced"), 2))
    try:
        t.fit()
        message = "no error"
    except RuntimeError as e:
        message = str(e)
    (out / f"unsynced{rank}.txt").write_text(message)
    return t


if __name__ == "__main__":
    out = Path(sys.argv[1])
    rank = int(os.environ["RANK"])
    trainers = [run_parts(out, rank), run_match(out, rank), run_unsynced(out, rank)]
    for t in reversed(trainers):  # the first one owns the process group
        t.close()
