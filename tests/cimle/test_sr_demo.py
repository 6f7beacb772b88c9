"""The demo-photo SR data set, PSNR/bicubic helpers, and a tiny cIMLE SR run on it (the
minute-long quality run lives in bench/cimle.py --sr-steps)."""

from __future__ import annotations

import math

import torch

import synth
from synth_cimle.data import DemoSuperResolution, bicubic_upsample, psnr


def test_psnr_by_hand():
    x = torch.zeros(1, 3, 2, 2)
    y = torch.full((1, 3, 2, 2), 0.2)  # mse 0.04, peak range 2 -> 10·log10(4 / 0.04) = 20 dB
    assert abs(float(psnr(x, y)[0]) - 20.0) < 1e-5
    assert bicubic_upsample(torch.zeros(1, 3, 4, 4), 4).shape == (1, 3, 16, 16)


def test_demo_sr_split_and_tiny_run():
    train = DemoSuperResolution(16, 4, "train", work=64, length=8)
    test = DemoSuperResolution(16, 4, "test", work=64, length=4, seed=1)
    assert train.photos.shape[-1] == 48 and test.photos.shape[-1] == 16  # held-out columns
    item = train[0]
    assert item["real"].shape == (3, 16, 16) and item["image"].shape == (3, 4, 4)
    torch.manual_seed(0)
    model = synth.compose(
        {
            "generator": {
                "type": "cimle.rrdb_generator",
                "scale": 4,
                "nf": 4,
                "nb": 1,
                "gc": 2,
                "code_channels": 2,
                "residual": "bicubic",
            },
            "injector": {"type": "cimle.spatial_code"},
            "losses": {"imle": {"type": "cimle.distance", "preset": "none", "pixel_weight": 1.0}},
            "objective": {"type": "cimle.imle", "num_codes": 4, "inner_steps": 2, "minibatch": 4},
        }
    )
    # untrained with residual="bicubic": exactly the bicubic baseline (last conv zero)
    lr = torch.stack([test[i]["image"] for i in range(4)])
    real = torch.stack([test[i]["real"] for i in range(4)])
    cond = synth.Condition(image=lr, size=(16, 16))
    with torch.no_grad():
        out = model.generate(cond, generator=torch.Generator().manual_seed(0)).image
    base = torch.tanh(torch.atanh(bicubic_upsample(lr, 4).clamp(-0.99, 0.99)))
    torch.testing.assert_close(out, base)
    assert math.isfinite(float(psnr(out, real).mean()))
