"""cimle.imle: exact argmin selection (vs brute force), chunk invariance, hierarchical, steps."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

import synth
from synth_cimle import IMLE, perturb_codes, select_codes, stage_code_key
from synth_cimle.objectives import _mix

from .conftest import lr_batch, tiny_sr_model


class _Updater:
    def __init__(self, model: nn.Module, step: int = 0) -> None:
        self.model, self.step, self.d_steps, self.calls = model, step, 1, 0

    def autocast(self):
        return contextlib.nullcontext()

    def update(self, network, loss):
        names = [network] if isinstance(network, str) else list(network)
        params = [
            p
            for n in names
            if getattr(self.model, n, None) is not None
            for p in getattr(self.model, n).parameters()
        ]
        for p in params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in params:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-1e-2)
        self.calls += 1


def _brute_force(model, cond, real, m, seed):
    """Reference: one batch-1 forward + distance per (input, code), in Python loops."""
    g = torch.Generator().manual_seed(_mix(seed, 0, 0))
    raw = model.injector.draw(cond.repeat_interleave(m), g)
    best = []
    for i in range(cond.batch_size):
        scores = []
        for j in range(m):
            r = i * m + j
            out = model.generator(cond[i : i + 1], raw[r : r + 1]).image
            x, y = out[0].float(), real[i].float()
            scores.append((x - y).abs().mean())  # pixel L1 = the distance of tiny_sr_model
        best.append(int(torch.stack(scores).argmin()))
    return torch.tensor(best), raw


def test_selection_is_exact_argmin():
    model = tiny_sr_model()
    cond, real = lr_batch(3)
    with torch.no_grad():
        sel = select_codes(model, cond, real, model.losses["imle"], 6, seed=5, chunk_size=4)
        ref_idx, raw = _brute_force(model, cond, real, 6, seed=5)
    assert torch.equal(sel.index, ref_idx)
    chosen = raw.spatial[torch.arange(3) * 6 + ref_idx]
    assert torch.equal(sel.codes.spatial, chosen)


@pytest.mark.parametrize("chunk", [1, 5, 7, 18, 100])
def test_chunking_does_not_change_the_choice(chunk):
    model = tiny_sr_model()
    cond, real = lr_batch(3)
    with torch.no_grad():
        ref = select_codes(model, cond, real, model.losses["imle"], 6, seed=1, chunk_size=18)
        sel = select_codes(model, cond, real, model.losses["imle"], 6, seed=1, chunk_size=chunk)
    assert torch.equal(sel.index, ref.index)
    torch.testing.assert_close(sel.distance, ref.distance)


def test_hierarchical_chooses_each_stage_coarse_to_fine():
    model = tiny_sr_model(scale=4, hierarchical=True)
    cond, real = lr_batch(2, h=4, scale=4)
    m, seed = 5, 3
    with torch.no_grad():
        sel = select_codes(
            model, cond, real, model.losses["imle"], m, seed=seed, chunk_size=3, hierarchical=True
        )
        # reference: stage 0 by brute force on pyramid[0] vs the area-downsampled target
        g0 = torch.Generator().manual_seed(_mix(seed, 0, 0))
        raw0 = model.injector.draw(cond.repeat_interleave(m), g0)
        out0 = model.generator(cond.repeat_interleave(m), raw0).pyramid[0]
        y0 = torch.nn.functional.interpolate(real, scale_factor=0.5, mode="area")
        d0 = (out0 - y0.repeat_interleave(m, 0)).abs().flatten(1).mean(1).view(2, m)
        idx0 = d0.argmin(1)
        assert torch.equal(sel.index[:, 0], idx0)
        code0 = raw0.extras[stage_code_key(0)][torch.arange(2) * m + idx0]
        assert torch.equal(sel.codes.extras[stage_code_key(0)], code0)
        # stage 1 with stage 0 fixed to its chosen code
        g1 = torch.Generator().manual_seed(_mix(seed, 0, 1))
        raw1 = model.injector.draw(cond.repeat_interleave(m), g1)
        raw1.extras[stage_code_key(0)] = code0.repeat_interleave(m, 0)
        out1 = model.generator(cond.repeat_interleave(m), raw1).image
        d1 = (out1 - real.repeat_interleave(m, 0)).abs().flatten(1).mean(1).view(2, m)
        assert torch.equal(sel.index[:, 1], d1.argmin(1))


def test_step_trains_generator_and_is_deterministic():
    cond, real = lr_batch(4)
    states = []
    for _ in range(2):
        model = tiny_sr_model().train()
        obj = model.objective
        assert isinstance(obj, IMLE)
        before = {k: v.clone() for k, v in model.generator.state_dict().items()}
        up = _Updater(model, step=7)
        logs = obj.step(model, cond, real, up)
        assert up.calls == obj.config.inner_steps
        assert "imle/distance" in logs and all(v.dim() == 0 for v in logs.values())
        after = model.generator.state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before)
        states.append(after)
    for k in states[0]:
        assert torch.equal(states[0][k], states[1][k])


def test_noise_encoder_is_trained_through_cached_codes():
    spec = {
        "generator": {
            "type": "cimle.crn_generator",
            "num_classes": 3,
            "num_levels": 2,
            "ngf": 4,
            "noise_channels": 2,
        },
        "injector": {"type": "cimle.noise_encoder", "noise_dim": 2, "hidden": 4},
        "losses": {"imle": {"type": "cimle.distance", "preset": "none", "pixel_weight": 1.0}},
        "objective": {"type": "cimle.imle", "num_codes": 3, "inner_steps": 1, "minibatch": 2},
    }
    torch.manual_seed(0)
    model = synth.compose(spec).train()
    g = torch.Generator().manual_seed(0)
    cond = synth.Condition(label_map=torch.randint(0, 3, (2, 8, 8), generator=g), num_classes=3)
    real = torch.rand(2, 3, 8, 8, generator=g) * 2 - 1
    before = {k: v.clone() for k, v in model.injector.state_dict().items()}
    model.objective.step(model, cond, real, _Updater(model))
    after = model.injector.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_perturbation_statistics():
    codes = synth.Latents(spatial=torch.zeros(200, 4, 8, 8))
    out = perturb_codes(codes, 0.1, torch.Generator().manual_seed(0))
    assert abs(float(out.spatial.std()) - 0.1) < 0.005
    assert perturb_codes(codes, 0.0, torch.Generator()).spatial is codes.spatial
