"""The nested-scale losses on generators that never had them: SPADE (clvae) and pix2pixHD's
global generator, each wrapped in ``nested_scale.pyramid``, trained with ``core.gan`` drawing
N = 4 samples per input (``samples_per_input``), a per-level PatchGAN pyramid discriminator,
the hinge loss, disentanglement (eq. 1) and progressive NDiv (eq. 5) at 32 px."""

from __future__ import annotations

import importlib
import json
import math
from typing import Any

import pytest
import torch
from einops import rearrange

import synth
import synth.data
import synth.testing
from synth.train import Trainer, TrainerConfig

SIZE, K, N = 32, 8, 4
PLUGINS = ("synth_nested_scale", "synth_clvae", "synth_pix2pixhd")

#: The wrapped generators, tiny.
WRAPPED: dict[str, dict[str, Any]] = {
    "clvae.spade_generator": {
        "type": "clvae.spade_generator",
        "num_classes": K,
        "ngf": 2,
        "norm": {"type": "clvae.spade", "hidden": 8},
    },
    "pix2pixhd.global_generator": {
        "type": "pix2pixhd.global_generator",
        "num_classes": K,
        "ngf": 4,
        "n_downsampling": 2,
        "n_blocks": 1,
    },
}

#: One PatchGAN per pyramid level; no norm: the coarsest levels are a few pixels wide.
LEVEL_D: dict[str, Any] = {
    "type": "core.patch_discriminator",
    "num_scales": 1,
    "ndf": 4,
    "n_layers": 2,
    "norm": "none",
}


def _spec(wrapped: str) -> dict[str, Any]:
    return {
        "generator": {
            "type": "nested_scale.pyramid",
            "style_dim": 8,
            "generator": WRAPPED[wrapped],
        },
        "injector": {"type": "core.gaussian", "shared_styles": True},
        "discriminator": {"type": "nested_scale.pyramid_discriminator", "discriminator": LEVEL_D},
        "losses": {
            "gan": "core.hinge",
            "disentangle": "nested_scale.disentangle",
            "ndiv": "nested_scale.ndiv",
        },
        "objective": {"type": "core.gan", "samples_per_input": N},
    }


@pytest.fixture
def registry():
    modules = []
    for package in PLUGINS:
        pytest.importorskip(package)
        modules.append(importlib.import_module(f"{package}.plugin"))
    with synth.testing.fresh_registry(*modules) as reg:
        yield reg


def _weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.named_parameters()}


@pytest.mark.parametrize("wrapped", sorted(WRAPPED))
def test_ndiv_and_disentangle_train_a_wrapped_generator(registry, tmp_path, wrapped):
    torch.manual_seed(0)
    model = synth.compose(_spec(wrapped))
    levels = len(model.generator.pyramid_scales)
    assert model.discriminator.num_scales == levels >= 3
    before = {net: _weights(getattr(model, net)) for net in ("generator", "discriminator")}

    run = tmp_path / "run"
    config = TrainerConfig(
        steps=3,
        batch_size=2,
        run_dir=str(run),
        device="cpu",
        progress=False,
        sample_every=None,
        log_every=1,
        seed=0,
    )
    Trainer(model, synth.data.demo(SIZE, K, crops_per_photo=1), config).fit()

    lines = [json.loads(ln) for ln in (run / "log.jsonl").read_text().splitlines()]
    assert [ln["step"] for ln in lines] == [1, 2, 3]
    for line in lines:
        assert {"g/gan", "g/disentangle", "g/ndiv", "g/total", "d/gan"} <= set(line), sorted(line)
        losses = {k: v for k, v in line.items() if k.startswith(("g/", "d/"))}
        assert all(math.isfinite(v) for v in losses.values()), losses
    # at initialisation the adapter's per-scale modulations are the identity and the wrapped
    # generator draws nothing else: the N samples coincide and every level's NDiv is its
    # maximum α·N / (N·(N−1)); training makes them differ, and the term falls
    collapsed = levels * 0.8 / (N - 1)
    assert lines[0]["g/ndiv"] == pytest.approx(collapsed, rel=1e-4)
    assert lines[-1]["g/ndiv"] < lines[0]["g/ndiv"]
    for net, old in before.items():
        new = _weights(getattr(model, net))
        changed = {n for n in old if not torch.equal(old[n], new[n])}
        assert changed, f"{net} did not train"
        if net == "generator":  # the wrapped generator and the adapter's own parameters
            assert any(n.startswith("wrapped.") for n in changed)
            assert any(n.startswith("modulations.") for n in changed)

    # N samples of one input differ: the per-scale codes now change the image
    item = synth.data.demo(SIZE, K, split="all")[0]
    cond = synth.Condition(label_map=item["label_map"][None], num_classes=K)
    model.eval()
    with torch.no_grad():
        out = model.sample(cond, N, "core.prior", torch.Generator().manual_seed(0))
    samples = rearrange(out.image, "(b n) c h w -> b n c h w", n=N)[0]
    assert torch.isfinite(samples).all()
    for i, j in [(0, 1), (0, 2), (1, 3)]:
        assert (samples[i] - samples[j]).abs().mean() > 1e-5, (i, j)
