"""cimle.imle under the core Trainer: runs, and a resumed run ends with the same weights."""

from __future__ import annotations

from typing import Any

import torch

import synth.train
from synth.data.base import SynthDataset

from .conftest import tiny_sr_model


class _RandomSR(SynthDataset):
    fields = frozenset({"image"})
    num_classes = None

    def __init__(self, n: int = 12) -> None:
        super().__init__(0)
        g = torch.Generator().manual_seed(0)
        self.hr = torch.rand(n, 3, 16, 16, generator=g) * 2 - 1

    def __len__(self) -> int:
        return len(self.hr)

    def _load(self, index: int, generator: torch.Generator) -> dict[str, Any]:
        hr = self.hr[index]
        lr = torch.nn.functional.avg_pool2d(hr[None], 2)[0]
        return {"real": hr, "image": lr}


def _fit(run_dir, steps: int, stop_at: int | None = None):
    model = tiny_sr_model()
    cfg = synth.train.TrainerConfig(
        steps=steps,
        batch_size=4,
        sample_every=None,
        run_dir=str(run_dir),
        checkpoint_every=2,
        progress=False,
        device="cpu",
        log_every=1,
    )
    trainer = synth.train.Trainer(model, _RandomSR(), cfg)
    trainer.fit()
    return model


def test_resume_is_exact(tmp_path):
    straight = _fit(tmp_path / "a", 4)
    _fit(tmp_path / "b", 2)
    resumed = _fit(tmp_path / "b", 4)  # resumes from the step-2 checkpoint
    for (k, v), (_, w) in zip(
        straight.generator.state_dict().items(), resumed.generator.state_dict().items()
    ):
        assert torch.equal(v, w), k
