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


def test_injector_is_reinitialised_at_the_reinit_round():
    """``reinit_injector_at = k`` (official ``reinit_point``): at Trainer step k the noise
    encoder restarts from fresh parameters (then trains); other steps leave it alone; the
    re-initialisation is seeded (the same on every rank and after a resume)."""
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
        "objective": {
            "type": "cimle.imle",
            "num_codes": 2,
            "inner_steps": 1,
            "minibatch": 2,
            "reinit_injector_at": 2,
        },
    }
    g = torch.Generator().manual_seed(0)
    cond = synth.Condition(label_map=torch.randint(0, 3, (2, 8, 8), generator=g), num_classes=3)
    real = torch.rand(2, 3, 8, 8, generator=g) * 2 - 1
    fresh = []
    for _ in range(2):
        torch.manual_seed(0)
        model = synth.compose(spec).train()
        for p in model.injector.parameters():  # "trained" values the reinit must replace
            p.data.fill_(0.5)
        up = _Snapshot(model, step=1)
        model.objective.step(model, cond, real, up)
        assert all((v - 0.5).abs().max() < 1e-12 for v in up.first.values())  # untouched
        up = _Snapshot(model, step=2)
        model.objective.step(model, cond, real, up)
        norm = up.first["norm1.weight"]
        assert torch.equal(norm, torch.ones_like(norm))  # LayerNorm2d back to scale 1
        assert up.first["conv1.weight"].std() > 0  # convs re-drawn (not 0.5 everywhere)
        fresh.append(up.first)
    for k in fresh[0]:
        assert torch.equal(fresh[0][k], fresh[1][k])  # seeded


class _Snapshot(_Updater):
    """Records the injector's parameters at the first update (after any re-initialisation)."""

    def __init__(self, model: nn.Module, step: int) -> None:
        super().__init__(model, step)
        self.first: dict[str, torch.Tensor] | None = None

    def update(self, network, loss):
        if self.first is None:
            self.first = {k: v.clone() for k, v in self.model.injector.state_dict().items()}
        super().update(network, loss)


def test_perturbation_statistics():
    codes = synth.Latents(spatial=torch.zeros(200, 4, 8, 8))
    out = perturb_codes(codes, 0.1, torch.Generator().manual_seed(0))
    assert abs(float(out.spatial.std()) - 0.1) < 0.005
    assert perturb_codes(codes, 0.0, torch.Generator()).spatial is codes.spatial


def test_kept_candidates_leave_the_selection_unchanged():
    """``keep_others``: the first unchosen candidates of each input in draw order, raw; the
    choice, the chosen codes and their distances are those of a selection without them."""
    model = tiny_sr_model()
    cond, real = lr_batch(3)
    m, k = 6, 3
    with torch.no_grad():
        ref = select_codes(model, cond, real, model.losses["imle"], m, seed=5, chunk_size=4)
        sel = select_codes(
            model, cond, real, model.losses["imle"], m, seed=5, chunk_size=4, keep_others=k
        )
        _, raw = _brute_force(model, cond, real, m, seed=5)
    assert ref.others is None
    assert torch.equal(sel.index, ref.index) and torch.equal(sel.distance, ref.distance)
    assert torch.equal(sel.codes.spatial, ref.codes.spatial)
    rows = [i * m + j for i in range(3) for j in range(m) if j != int(ref.index[i])]
    want = raw.spatial[torch.tensor(rows)].view(3, m - 1, *raw.spatial.shape[1:])[:, :k]
    assert torch.equal(sel.others.spatial, want.flatten(0, 1))
    with pytest.raises(ValueError, match="at most 5 others"):
        select_codes(model, cond, real, model.losses["imle"], m, keep_others=m)


def test_hierarchical_kept_candidates_come_from_the_first_round():
    """Every stage's code of a kept candidate is a fresh draw (the first round fixes none)."""
    model = tiny_sr_model(scale=4, hierarchical=True)
    cond, real = lr_batch(2, h=4, scale=4)
    m, seed = 5, 3
    with torch.no_grad():
        sel = select_codes(
            model,
            cond,
            real,
            model.losses["imle"],
            m,
            seed=seed,
            chunk_size=3,
            hierarchical=True,
            keep_others=2,
        )
        raw0 = model.injector.draw(
            cond.repeat_interleave(m), torch.Generator().manual_seed(_mix(seed, 0, 0))
        )
    first = sel.index[:, 0]
    cols = torch.stack([torch.tensor([j for j in range(m) if j != int(c)][:2]) for c in first])
    rows = (torch.arange(2)[:, None] * m + cols).flatten()
    for s in range(2):
        key = stage_code_key(s)
        assert torch.equal(sel.others.extras[key], raw0.extras[key][rows])


class _Recorder(synth.Loss):
    """A generator loss that keeps the inputs it saw (and returns 0 with a gradient path)."""

    needs = frozenset({"samples"})

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[synth.LossInputs] = []

    def forward(self, batch: synth.LossInputs) -> torch.Tensor:
        self.seen.append(batch)
        return batch.samples.sum() * 0.0


def test_samples_per_input_exposes_the_chosen_code_and_other_candidates():
    cond, real = lr_batch(4)
    runs = {}
    for n in (1, 3):
        model = tiny_sr_model().train()
        model.objective = IMLE(num_codes=6, inner_steps=2, minibatch=2, samples_per_input=n)
        recorder = _Recorder()
        if n > 1:
            model.losses["samples"] = recorder
        logs = model.objective.step(model, cond, real, _Updater(model, step=7))
        runs[n] = logs
    # the selection (and so the chosen distance) does not depend on N
    assert torch.equal(runs[1]["imle/distance"], runs[3]["imle/distance"])
    torch.testing.assert_close(runs[1]["g/imle"], runs[3]["g/imle"])
    assert len(recorder.seen) == 2
    for batch in recorder.seen:
        assert batch.samples.shape == (2, 3, 3, 16, 16)
        assert batch.sample_latents.spatial.shape == (6, 2, 8, 8)
        assert torch.equal(batch.samples[:, 0], batch.fake.image)
        assert torch.equal(batch.sample_latents.spatial[::3], batch.latents.spatial)
        assert len(batch.sample_output.pyramid) == 1  # the RRDB's [image]
        # the others are raw candidates, distinct from the chosen (perturbed) code
        assert not torch.equal(batch.sample_latents.spatial[1::3], batch.latents.spatial)


def test_samples_per_input_config():
    assert IMLE.provided(IMLE.Config(num_codes=4, samples_per_input=2)) == {"samples"}
    assert IMLE.provided(IMLE.Config(num_codes=4)) == frozenset()
    with pytest.raises(ValueError, match="samples_per_input=5 .* num_codes=4"):
        IMLE.Config(num_codes=4, samples_per_input=5)
