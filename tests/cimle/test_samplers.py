"""core.prior, core.interpolate and core.best_of_n work with cIMLE models."""

from __future__ import annotations

import torch

import synth

from .conftest import lr_batch, tiny_sr_model


def test_core_samplers_work(cimle_registry):
    model = tiny_sr_model().eval()
    cond, real = lr_batch(2)
    g = torch.Generator().manual_seed(0)
    out = model.sample(cond, 3, sampler={"type": "core.prior"}, generator=g)
    assert out.image.shape == (6, 3, 16, 16)
    assert not torch.allclose(out.image[0], out.image[1])  # different codes, different samples
    out = model.sample(cond, 4, sampler={"type": "core.interpolate"}, generator=g)
    assert out.image.shape == (8, 3, 16, 16)
    best = model.sample(
        cond,
        5,
        sampler={"type": "core.best_of_n", "distance": {"type": "core.l1"}},
        generator=g,
        target=real,
    )
    assert best.image.shape == (2, 3, 16, 16)
    assert torch.all(best.extras["distance"] <= best.extras["distances"].min(1).values + 1e-7)


def test_same_code_many_layouts_noise_encoder(cimle_registry):
    """Fig. 12: one raw code z̃ with several layouts (the noise encoder adapts it per layout)."""
    spec = {
        "generator": {
            "type": "cimle.crn_generator",
            "num_classes": 3,
            "num_levels": 2,
            "ngf": 4,
            "noise_channels": 2,
        },
        "injector": {"type": "cimle.noise_encoder", "noise_dim": 2, "hidden": 4},
    }
    torch.manual_seed(0)
    model = synth.compose(spec).eval()
    g = torch.Generator().manual_seed(0)
    cond = synth.Condition(label_map=torch.randint(0, 3, (3, 8, 8), generator=g), num_classes=3)
    raw = model.injector.draw(cond[:1], g)
    shared = synth.Latents(extras={k: v.expand(3, -1, -1, -1) for k, v in raw.extras.items()})
    with torch.no_grad():
        out = model.generator(cond, model.injector.from_codes(cond, shared))
    assert out.image.shape == (3, 3, 8, 8)
