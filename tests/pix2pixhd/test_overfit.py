"""The 512 recipe scaled down overfits one fixed pair with the core Trainer."""

from __future__ import annotations

import json
import math

import torch

import synth
from synth import Condition
from synth.train import Trainer
from synth_pix2pixhd import recipe, training_config

from .helpers import OnePair, demo_pair

STEPS = 90


def test_scaled_down_cityscapes_512_overfits_one_pair(reg, tmp_path):
    k = 8
    torch.manual_seed(0)
    spec = recipe("cityscapes_512", num_classes=k, ngf=8, n_downsampling=3, n_blocks=2)
    spec["discriminator"].update(ndf=8)
    # The VGG19 term needs ImageNet weights, which tests never download; LSGAN + FM remain.
    del spec["losses"]["vgg"]
    model = synth.compose(spec)
    item = demo_pair(64, k)
    cond = Condition(
        label_map=item["label_map"][None], num_classes=k, instance_map=item["instance_map"][None]
    )
    real = item["real"][None]

    def l1() -> float:
        model.eval()
        with torch.no_grad():
            out = model.generator(cond).image
        model.train()
        return float((out - real).abs().mean())

    before = l1()
    cfg = training_config(
        steps=STEPS,
        decay_start=STEPS,
        batch_size=1,
        device="cpu",
        run_dir=str(tmp_path),
        sample_every=None,
        checkpoint_every=STEPS,
        progress=False,
        log_every=10,
    )
    Trainer(model, OnePair(item, k, length=8), cfg).fit()
    after = l1()
    print(f"L1 before {before:.4f} after {after:.4f}")
    assert after <= 0.5 * before, (before, after)
    rows = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    losses = [v for r in rows for key, v in r.items() if key.startswith(("g/", "d/"))]
    assert losses and all(math.isfinite(v) for v in losses)
    assert {"g/gan", "g/feat", "d/gan"} <= {key for r in rows for key in r}
