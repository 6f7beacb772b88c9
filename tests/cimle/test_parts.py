"""Every registered cimle part passes synth.testing.check_part (tiny configs)."""

from __future__ import annotations

import pytest

import synth
import synth.testing as st

CASES = [
    ("cimle.rrdb_generator", dict(scale=2, nf=4, nb=1, gc=2, code_channels=1), ()),
    (
        "cimle.rrdb_generator",
        dict(scale=4, nf=4, nb=1, gc=4, code_channels=1, hierarchical=True),
        ("compile",),
    ),
    ("cimle.crn_generator", dict(num_classes=4, num_levels=3, ngf=8, noise_channels=3), ()),
    ("cimle.noise_encoder", dict(num_classes=4, channels=3, noise_dim=2, hidden=8), ()),
    ("cimle.spatial_code", dict(channels=2), ()),
    ("cimle.spatial_code", dict(channels=2, per_stage=True, num_stages=2), ()),
    (
        "cimle.distance",
        dict(preset="sr", layers=["conv1_2"], layer_weights=[1.0], weights="none"),
        (),
    ),
    ("cimle.imle", dict(num_codes=4, inner_steps=2, minibatch=2, chunk_size=3), ()),
    # chunk derived from a byte budget (probe pass) instead of a fixed candidate count
    ("cimle.imle", dict(num_codes=4, inner_steps=2, minibatch=2, memory_budget_mb=0.05), ()),
    # N samples per input for diversity losses: the chosen code and N-1 other candidates
    ("cimle.imle", dict(num_codes=4, inner_steps=2, minibatch=2, samples_per_input=3), ()),
    ("cimle.faithfulness_weighted_variance", dict(distance={"type": "core.l1"}), ()),
]


@pytest.mark.parametrize(
    ("name", "params", "skip"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_check_part(cimle_registry, name, params, skip):
    st.check_part(name, skip=skip, **params)


def test_all_registered_parts_are_covered(cimle_registry):
    names = set(synth.list_parts(pattern="cimle.*"))
    assert names == {c[0] for c in CASES}


def test_recipes(cimle_registry):
    import copy

    from synth_cimle.recipes import RECIPES

    assert {"cimle.sr_x8", "cimle.sr_x4_small", "cimle.gta5_layout"} <= set(synth.recipes())
    spec = copy.deepcopy(RECIPES["cimle.sr_x4_small"][0])
    spec["losses"]["imle"]["weights"] = "none"  # no downloads in tests
    model = synth.compose(spec)
    assert model.objective is not None and model.injector is not None
    sr8 = RECIPES["cimle.sr_x8"][0]
    assert sr8["generator"]["scale"] == 8 and sr8["generator"]["code_channels"] == 5
    assert sr8["objective"]["num_codes"] == 100 and sr8["objective"]["minibatch"] == 4
    gta = RECIPES["cimle.gta5_layout"][0]
    assert gta["objective"]["num_codes"] == 10 and gta["losses"]["imle"]["preset"] == "layout"
