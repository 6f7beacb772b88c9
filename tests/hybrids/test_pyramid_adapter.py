"""nested_scale.pyramid around every registered generator (DESIGN §3): conformance, level
sizes and exact nesting of the per-scale codes, at tiny sizes.

Needs every plugin that registers a generator; skipped when one is not installed.
"""

from __future__ import annotations

import importlib

import pytest
import torch

import synth
import synth.testing
from synth.testing.inputs import make_condition, make_latents

PLUGINS = ("synth_nested_scale", "synth_pix2pixhd", "synth_clvae", "synth_cimle")

SPADE_NORM = {"type": "clvae.spade", "hidden": 8}
#: case -> (wrapped generator spec, image side). Label maps have 4 classes: the kit's default
#: condition reads num_classes from the part's own config, which the adapter does not have.
CASES: dict[str, tuple[dict, int]] = {
    "core.simple_generator": ({"num_classes": 4, "ngf": 8, "num_stages": 3, "z_dim": 3}, 32),
    "core.simple_generator[adain]": (
        {"num_classes": 4, "ngf": 8, "num_stages": 3, "norm": {"type": "core.adain"}},
        32,
    ),
    "pix2pixhd.global_generator": (
        {
            "num_classes": 4,
            "ngf": 4,
            "n_downsampling": 2,
            "n_blocks": 1,
            "use_instances": True,
            "feat_num": 3,
        },
        32,
    ),
    "pix2pixhd.local_enhancer": (
        {
            "num_classes": 4,
            "ngf": 4,
            "n_downsample_global": 1,
            "n_blocks_global": 1,
            "n_local_enhancers": 2,
            "n_blocks_local": 1,
            "feat_num": 2,
        },
        32,
    ),
    "clvae.spade_generator": ({"num_classes": 4, "ngf": 4, "norm": SPADE_NORM}, 64),
    "clvae.clvae_generator": (
        {
            "num_classes": 4,
            "ngf": 4,
            "z_dim": 8,
            "code_dim": 3,
            "crop_size": 64,
            "norm": SPADE_NORM,
            "cse": {"type": "clvae.cse", "hidden": 8},
        },
        64,
    ),
    "cimle.crn_generator": ({"num_classes": 4, "num_levels": 3, "ngf": 8, "noise_channels": 3}, 32),
    "cimle.rrdb_generator": ({"scale": 2, "nf": 4, "nb": 1, "gc": 2, "code_channels": 1}, 32),
    "cimle.rrdb_generator[hierarchical]": (
        {"scale": 4, "nf": 4, "nb": 1, "gc": 4, "code_channels": 1, "hierarchical": True},
        32,
    ),
}


@pytest.fixture
def all_plugins():
    """A fresh process-wide registry with core and every plugin that registers a generator."""
    modules = []
    for package in PLUGINS:
        pytest.importorskip(package)
        modules.append(importlib.import_module(f"{package}.plugin"))
    with synth.testing.fresh_registry(*modules) as reg:
        yield reg


def _spec(case: str) -> dict:
    params, _ = CASES[case]
    return {"type": case.split("[")[0], **params}


def _inputs(adapter, size: int, seed: int = 0):
    """The adapter's example inputs (the wrapped generator's own, plus codes) or inputs made
    from its requirements and runtime arguments, as the conformance kit makes them."""
    g = torch.Generator().manual_seed(seed)
    given = adapter.example_inputs(batch_size=2, size=(size, size), generator=g)
    if given:
        return given["cond"], given["latents"]
    reqs = adapter.requirements(adapter.config) | {"styles"}
    rt = adapter.runtime_args()
    cond = make_condition(reqs, size=size, num_classes=rt.get("num_classes") or 4, generator=g)
    latents = make_latents(
        reqs,
        size=size,
        z_dim=rt.get("z_dim") or 8,
        style_dim=rt["style_dim"],
        num_stages=rt["pyramid_levels"],
        num_classes=rt.get("num_classes") or 4,
        code_dim=rt.get("code_dim") or 8,
        channels=rt.get("channels") or 8,
        generator=g,
    )
    return cond, latents


def test_every_registered_generator_is_covered(all_plugins):
    wrapped = {n for n in all_plugins.list(kind="generator") if not n.startswith("nested_scale.")}
    assert wrapped == {c.split("[")[0] for c in CASES}


@pytest.mark.parametrize("case", list(CASES))
def test_check_part(all_plugins, case):
    synth.testing.check_part(
        "nested_scale.pyramid", size=CASES[case][1], generator=_spec(case), style_dim=4
    )


@pytest.mark.parametrize("case", list(CASES))
def test_levels_and_exact_nesting(all_plugins, case):
    """Levels at the sizes pyramid_scales says; a new styles[k] leaves every coarser level
    bit-identical and changes level k (every registered generator is feed-forward over its
    stages)."""
    adapter = synth.build("nested_scale.pyramid", generator=_spec(case), style_dim=4).eval()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in adapter.modulations.parameters():  # identity at init: let the codes act
            p.copy_(0.3 * torch.randn(p.shape, generator=g))
    cond, lat = _inputs(adapter, CASES[case][1])
    with torch.no_grad():
        base = adapter(cond, lat)
        h, w = base.image.shape[-2:]
        assert [tuple(p.shape[-2:]) for p in base.pyramid] == [
            (h // s, w // s) for s in adapter.pyramid_scales
        ]
        assert base.pyramid[-1] is base.image
        n = len(adapter.pyramid_scales)
        for k in range(n):
            styles = list(lat.styles)
            styles[k] = styles[k] + 1.0
            edited = adapter(cond, synth.Latents(**{**vars(lat), "styles": styles}))
            for j in range(k):
                assert torch.equal(edited.pyramid[j], base.pyramid[j]), (k, j)
            assert not torch.equal(edited.pyramid[k], base.pyramid[k]), k
