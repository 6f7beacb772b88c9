"""Conditional IMLE with a pyramid and progressive NDiv, composed from registered names only:
``cimle.imle`` (Algorithm 1) drawing m codes per input and keeping N of them as samples
(``samples_per_input``: the chosen code and N−1 other candidates), a generator wrapped in
``nested_scale.pyramid`` (cIMLE's own CRN, or pix2pixHD's global generator), ``core.gaussian``
per-scale codes, ``cimle.distance`` on the chosen samples and ``nested_scale.ndiv`` (eq. 5) on
the N samples' pyramids, at 32 px on the demo photos.

A model has one injector, and no registered injector gives both the adapter's per-scale
``styles`` and the wrapped generator's own noise (cIMLE's ``spatial``): the codes cIMLE
selects here are the per-scale codes, the wrapped generators run without noise inputs, and
the composition with ``cimle.noise_encoder`` is refused (the last test says what it lacks).
"""

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

SIZE, K, N, M = 32, 8, 4, 6
PLUGINS = ("synth_nested_scale", "synth_cimle", "synth_pix2pixhd")

#: The wrapped generators, tiny, without noise inputs (the injector draws the per-scale codes).
WRAPPED: dict[str, dict[str, Any]] = {
    "cimle.crn_generator": {
        "type": "cimle.crn_generator",
        "num_classes": K,
        "num_levels": 4,
        "ngf": 4,
        "max_channels": 16,
        "noise_channels": 0,
    },
    "pix2pixhd.global_generator": {
        "type": "pix2pixhd.global_generator",
        "num_classes": K,
        "ngf": 4,
        "n_downsampling": 2,
        "n_blocks": 1,
    },
}


def _spec(wrapped: dict[str, Any], injector: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "generator": {"type": "nested_scale.pyramid", "style_dim": 8, "generator": wrapped},
        "injector": injector or {"type": "core.gaussian", "shared_styles": True},
        "losses": {
            # pixel L1: no backbone weights in tests (the paper's layout preset reads VGG19)
            "imle": {"type": "cimle.distance", "preset": "none", "pixel_weight": 1.0},
            "ndiv": "nested_scale.ndiv",
        },
        "objective": {
            "type": "cimle.imle",
            "num_codes": M,
            "samples_per_input": N,
            "inner_steps": 1,
            "minibatch": 2,
            "chunk_size": 8,
        },
        "sampler": "core.prior",
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


def _first_photo() -> synth.Condition:
    item = synth.data.demo(SIZE, K, split="all")[0]
    return synth.Condition(label_map=item["label_map"][None], num_classes=K)


def _samples(model: synth.SynthesisModel, cond: synth.Condition, seed: int = 0) -> torch.Tensor:
    with torch.no_grad():
        out = model.sample(cond, N, generator=torch.Generator().manual_seed(seed))
    return rearrange(out.image, "(b n) c h w -> b n c h w", n=N)


def _train(model: synth.SynthesisModel, run) -> list[dict[str, float]]:
    config = TrainerConfig(
        steps=3,
        batch_size=3,
        run_dir=str(run),
        device="cpu",
        progress=False,
        sample_every=None,
        log_every=1,
        seed=0,
    )
    Trainer(model, synth.data.demo(SIZE, K, crops_per_photo=1), config).fit()
    return [json.loads(ln) for ln in (run / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("wrapped", sorted(WRAPPED))
def test_cimle_with_pyramid_and_ndiv_trains(registry, tmp_path, wrapped):
    torch.manual_seed(0)
    model = synth.compose(_spec(WRAPPED[wrapped]))
    levels = len(model.generator.pyramid_scales)
    assert levels >= 3
    before = _weights(model.generator)

    lines = _train(model, tmp_path / "run")
    assert [ln["step"] for ln in lines] == [1, 2, 3]
    for line in lines:
        assert {"g/imle", "g/ndiv", "g/total", "imle/distance"} <= set(line), sorted(line)
        losses = {k: v for k, v in line.items() if k.startswith(("g/", "imle/"))}
        assert all(math.isfinite(v) for v in losses.values()), losses
    # at initialisation the adapter's modulations are the identity and the wrapped generator
    # draws nothing else: the N samples of an input coincide and every level's NDiv is its
    # maximum α·N / (N·(N−1)); training makes them differ, and the term falls
    collapsed = levels * 0.8 / (N - 1)
    assert lines[0]["g/ndiv"] == pytest.approx(collapsed, rel=1e-4)
    assert lines[-1]["g/ndiv"] < lines[0]["g/ndiv"]
    after = _weights(model.generator)
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert any(n.startswith("wrapped.") for n in changed), "the wrapped generator did not train"
    assert any(n.startswith("modulations.") for n in changed), "the per-scale codes did not"

    # N samples of one input differ: the per-scale codes now change the image
    model.eval()
    cond = _first_photo()
    samples = _samples(model, cond)[0]
    assert torch.isfinite(samples).all()
    for i, j in [(0, 1), (0, 2), (1, 3)]:
        assert (samples[i] - samples[j]).abs().mean() > 1e-5, (i, j)

    # save -> load: the same weights, and the same samples under the same seed
    model.save_pretrained(tmp_path / "saved")
    loaded = synth.load(tmp_path / "saved")
    state, loaded_state = model.state_dict(), loaded.state_dict()
    assert state.keys() == loaded_state.keys()
    assert all(torch.equal(state[k], loaded_state[k]) for k in state)
    assert torch.equal(_samples(loaded, cond)[0], samples)


def test_ndiv_reads_the_n_candidates_pyramids(registry):
    """The loss inputs of one update: the chosen codes' rows are ``fake``, the N samples
    (chosen first) carry the pyramid and the per-scale codes NDiv reads."""
    torch.manual_seed(0)
    model = synth.compose(_spec(WRAPPED["cimle.crn_generator"])).train()
    seen: list[synth.LossInputs] = []
    ndiv = model.losses["ndiv"]
    ndiv.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    items = [synth.data.demo(SIZE, K, split="all")[i] for i in range(2)]
    cond = synth.Condition(label_map=torch.stack([it["label_map"] for it in items]), num_classes=K)
    real = torch.stack([it["real"] for it in items])

    class _Updater:
        step, d_steps = 0, 1

        def autocast(self):
            return torch.autocast("cpu", enabled=False)

        def update(self, network, loss):
            loss.backward()

    model.objective.step(model, cond, real, _Updater())
    (batch,) = seen
    levels = len(model.generator.pyramid_scales)
    assert batch.samples.shape == (2, N, 3, SIZE, SIZE)
    assert len(batch.sample_output.pyramid) == levels
    assert len(batch.sample_latents.styles) == levels
    assert batch.sample_latents.styles[0].shape == (2 * N, 8)
    # the chosen (perturbed) code leads each input's samples and is what the distance sees
    for k in range(levels):
        torch.testing.assert_close(batch.sample_latents.styles[k][::N], batch.latents.styles[k])
        torch.testing.assert_close(batch.sample_output.pyramid[k][::N], batch.fake.pyramid[k])
    assert torch.equal(batch.samples[:, 0], batch.fake.image)


def test_pyramid_with_cimle_noise_needs_a_second_injector(registry):
    """What is missing for the wrapped generator's own cIMLE noise: the adapter reads per-scale
    ``styles`` and the CRN reads ``spatial``, and a model has one injector, none of which
    provides both."""
    crn = dict(WRAPPED["cimle.crn_generator"], noise_channels=2)
    noise = {"type": "cimle.noise_encoder", "noise_dim": 2, "hidden": 4}
    with pytest.raises(synth.ComposeError, match="requires latent 'styles'"):
        synth.compose(_spec(crn, noise))
    with pytest.raises(synth.ComposeError, match="requires latent 'spatial'"):
        synth.compose(_spec(crn))
