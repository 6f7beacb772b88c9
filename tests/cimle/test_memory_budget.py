"""cimle.imle selection chunked to a memory budget in bytes (``chunk_size: None``)."""

from __future__ import annotations

import pytest
import torch

import synth_cimle.objectives as obj_mod
from synth_cimle import IMLE, select_codes
from synth_cimle.objectives import _LiveBytes, chunk_for_budget

from .conftest import lr_batch, tiny_sr_model
from .test_objective import _brute_force, _Updater

MIB = float(1 << 20)


def _cost(model, cond, real) -> float:
    """The measured per-candidate bytes (through the cache select_codes fills)."""
    cache: dict = {}
    select_codes(
        model, cond, real, model.losses["imle"], 6, memory_budget_mb=1.0, cost_cache=cache,
        tune_chunk=False,
    )  # fmt: skip
    (cost,) = cache.values()
    return cost


def test_live_bytes_counts_new_storages_once():
    x = torch.randn(256, 256)  # allocated before: not counted
    size = x.numel() * x.element_size()
    with _LiveBytes() as live:
        y = x * 2
        z = y * 3
        del y
        w = z + 1
        w.relu_()  # in place: same storage
        v = w.t()  # view: same storage
        del z
    assert live.peak == 2 * size  # y and z, then z and w
    assert live.live == size  # w, kept alive by its view v
    del w, v
    assert live.live == 0


def test_chunk_for_budget_clamps():
    assert chunk_for_budget(1000.0, 1e-9, 40) == 1
    assert chunk_for_budget(1000.0, 1e9, 40) == 40
    assert chunk_for_budget(MIB / 8, 1.0, 40) == 8
    assert chunk_for_budget(1000.0, None, 40) == 40
    assert chunk_for_budget(0.0, 1.0, 40) == 40


def test_derived_chunk_grows_with_budget():
    model = tiny_sr_model()
    cond, real = lr_batch(3)
    cost = _cost(model, cond, real)
    assert cost > 0
    chunks = [
        select_codes(
            model, cond, real, model.losses["imle"], 6, memory_budget_mb=budget, tune_chunk=False
        ).chunk_size
        for budget in (1e-9, 2.5 * cost / MIB, 5.5 * cost / MIB, 1e9)
    ]
    assert chunks == [1, 2, 5, 18]  # clamped to [1, B·m]


def test_derived_chunk_shrinks_with_image_size():
    model = tiny_sr_model()
    small, large = lr_batch(3, h=8), lr_batch(3, h=16)
    c_small, c_large = _cost(model, *small), _cost(model, *large)
    assert c_large > 2 * c_small  # 4x the pixels
    budget = 8.5 * c_small / MIB
    kw = dict(memory_budget_mb=budget, tune_chunk=False)
    sel_small = select_codes(model, *small, model.losses["imle"], 6, **kw)
    sel_large = select_codes(model, *large, model.losses["imle"], 6, **kw)
    assert sel_small.chunk_size == 8
    assert 1 <= sel_large.chunk_size < sel_small.chunk_size


@pytest.mark.parametrize("budget", [1e-9, 0.05, 1e9])
def test_budget_chunks_choose_the_same_codes(budget):
    model = tiny_sr_model()
    cond, real = lr_batch(3)
    with torch.no_grad():
        sel = select_codes(
            model, cond, real, model.losses["imle"], 6, seed=5, memory_budget_mb=budget,
            tune_chunk=False,
        )  # fmt: skip
        fixed = select_codes(model, cond, real, model.losses["imle"], 6, seed=5, chunk_size=18)
        ref_idx, _ = _brute_force(model, cond, real, 6, seed=5)
    if budget == 1e-9:
        assert sel.chunk_size == 1
    if budget == 1e9:
        assert sel.chunk_size == 18
    assert torch.equal(sel.index, ref_idx)
    assert torch.equal(sel.index, fixed.index)
    assert torch.equal(sel.codes.spatial, fixed.codes.spatial)
    torch.testing.assert_close(sel.distance, fixed.distance)


def test_hierarchical_budget_matches_fixed_chunks():
    model = tiny_sr_model(scale=4, hierarchical=True)
    cond, real = lr_batch(2, h=4, scale=4)
    loss = model.losses["imle"]
    kw = dict(seed=3, hierarchical=True, tune_chunk=False)
    with torch.no_grad():
        tiny = select_codes(model, cond, real, loss, 5, memory_budget_mb=1e-9, **kw)
        huge = select_codes(model, cond, real, loss, 5, memory_budget_mb=1e9, **kw)
        fixed = select_codes(model, cond, real, loss, 5, chunk_size=3, **kw)
    assert (tiny.chunk_size, huge.chunk_size) == (1, 10)
    assert torch.equal(tiny.index, fixed.index) and torch.equal(huge.index, fixed.index)


def test_probe_leaves_global_rng_untouched():
    model = tiny_sr_model()
    cond, real = lr_batch(3)
    state = torch.get_rng_state()
    select_codes(model, cond, real, model.losses["imle"], 6, memory_budget_mb=1.0)
    assert torch.equal(torch.get_rng_state(), state)


def test_no_budget_means_one_pass_per_draw_block():
    model = tiny_sr_model()
    cond, real = lr_batch(3)
    sel = select_codes(
        model, cond, real, model.losses["imle"], 6, memory_budget_mb=None, draw_block=2,
        tune_chunk=False,
    )  # fmt: skip
    assert sel.chunk_size == 12  # min(B, draw_block) · m


def test_objective_with_budget_probes_once_per_input_size(monkeypatch):
    calls = []
    probe = obj_mod._probe_candidate_bytes

    def counting(*args, **kwargs):
        calls.append(1)
        return probe(*args, **kwargs)

    monkeypatch.setattr(obj_mod, "_probe_candidate_bytes", counting)
    model = tiny_sr_model().train()
    objective = model.objective
    assert isinstance(objective, IMLE)
    assert objective.config.chunk_size is None and objective.config.memory_budget_mb == 1024
    objective.config = objective.config.model_copy(update={"tune_chunk": False})
    up = _Updater(model)
    logs = objective.step(model, *lr_batch(4), up)
    objective.step(model, *lr_batch(4, seed=1), up)
    assert len(calls) == 1  # cached for the same input size
    assert float(logs["imle/chunk"]) == objective.last_chunk_size == 4 * 6
    assert logs["imle/chunk"].dim() == 0 and up.calls == 2 * objective.config.inner_steps
    objective.step(model, *lr_batch(4, h=16), up)
    assert len(calls) == 2  # a new input size is measured again


def test_explicit_chunk_size_wins(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("no probe with an explicit chunk_size")

    monkeypatch.setattr(obj_mod, "_probe_candidate_bytes", fail)
    model = tiny_sr_model().train()
    objective = IMLE(num_codes=6, inner_steps=1, minibatch=2, chunk_size=5, memory_budget_mb=1e-9)
    logs = objective.step(model, *lr_batch(3), _Updater(model))
    assert float(logs["imle/chunk"]) == 5 and objective.last_chunk_size == 5


# ---------------------------------------------------------------- CPU chunk from timed passes


def test_tuner_times_each_size_once_then_keeps_the_fastest():
    cache: dict = {}
    tuner = obj_mod._ChunkTuner([1, 2, 4], cache, ("k",))
    per_candidate = {1: 3.0, 2: 1.0, 4: 2.0}
    handed = []
    for _ in range(5):
        size = tuner.next()
        handed.append(size)
        tuner.record(size, size, per_candidate[size] * size)
    assert handed == [1, 2, 4, 2, 2]
    assert tuner.chunk == 2 and cache == {("k",): 2.0}


def test_tuner_ignores_short_passes():
    tuner = obj_mod._ChunkTuner([1, 2], None, ("k",))
    tuner.record(1, 1, 1.0)
    tuner.record(2, 1, 0.1)  # a block's last pass held fewer candidates: no measurement
    assert tuner.best is None and tuner.next() == 2


def test_cpu_default_tunes_the_chunk_caches_it_and_chooses_the_same_codes(monkeypatch):
    model = tiny_sr_model()
    cond, real = lr_batch(3)
    loss = model.losses["imle"]
    cache: dict = {}
    budget = 8.5 * _cost(model, cond, real) / MIB  # the budget's chunk: 8; 1 + 2 + 4 + 8 < 18
    with torch.no_grad():
        fixed = select_codes(model, cond, real, loss, 6, seed=5, chunk_size=18)
        tuned = select_codes(
            model, cond, real, loss, 6, seed=5, cost_cache=cache, memory_budget_mb=budget
        )
    (key,) = [k for k in cache if k[0] == "tuned chunk"]
    assert tuned.chunk_size == cache[key] in (1, 2, 4, 8)
    assert torch.equal(tuned.index, fixed.index)
    torch.testing.assert_close(tuned.distance, fixed.distance)
    # the next call takes the cached chunk without timing anything
    monkeypatch.setattr(obj_mod, "_ChunkTuner", None)
    with torch.no_grad():
        again = select_codes(
            model, cond, real, loss, 6, seed=5, cost_cache=cache, memory_budget_mb=budget
        )
    assert again.chunk_size == tuned.chunk_size and torch.equal(again.index, fixed.index)


def test_tuner_tries_only_what_the_first_block_can_time():
    model = tiny_sr_model()
    cond, real = lr_batch(1)  # 6 candidates: chunks 1 and 2 fit (1 + 2 <= 6), 4 does not
    cache: dict = {}
    with torch.no_grad():
        sel = select_codes(
            model, cond, real, model.losses["imle"], 6, cost_cache=cache, memory_budget_mb=None
        )
    (key,) = [k for k in cache if k[0] == "tuned chunk"]
    assert sel.chunk_size == cache[key] in (1, 2)
