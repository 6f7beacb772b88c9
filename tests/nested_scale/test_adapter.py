"""nested_scale.pyramid around core.simple_generator: levels, nesting, hooks, save/load.

The adapter around every registered generator of the other plugins is checked in
tests/hybrids/test_pyramid_adapter.py.
"""

from __future__ import annotations

import copy

import pytest
import torch

import synth
import synth.testing
from synth import Condition, Latents
from synth_nested_scale.generators import pyramid_taps

SIMPLE = {"type": "core.simple_generator", "num_classes": 4, "ngf": 8, "num_stages": 3}
ADAIN = {**SIMPLE, "z_dim": 3, "norm": {"type": "core.adain"}}
NOISE = {**SIMPLE, "noise_channels": 2}


def _cond(b: int = 2, size: int = 32, seed: int = 0) -> Condition:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (b, size // 4, size // 4), generator=g)
    return Condition(
        label_map=labels.repeat_interleave(4, 1).repeat_interleave(4, 2), num_classes=4
    )


def _latents(n: int, b: int = 2, seed: int = 1, z: bool = False, noise: bool = False) -> Latents:
    g = torch.Generator().manual_seed(seed)
    return Latents(
        styles=[torch.randn(b, 4, generator=g) for _ in range(n)],
        z=torch.randn(b, 3, generator=g) if z else None,
        spatial=torch.randn(b, 2, 32, 32, generator=g) if noise else None,
    )


def _perturbed(adapter):
    """The adapter with non-zero modulations (they start at identity), so codes matter."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in adapter.modulations.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return adapter


# --------------------------------------------------------------------------- the taps


@pytest.mark.parametrize(
    ("scales", "taps"),
    [
        ([4, 2, 1], [0, 1, 2]),  # core.simple_generator
        ([32, 16, 16, 8, 4, 2, 1], [0, 2, 3, 4, 5, 6]),  # SPADE: the last stage at 16
        ([1, 2, 4, 8, 8, 8, 4, 2, 1], [5, 6, 7, 8]),  # pix2pixHD G1: the decoder's stages
        ([2, 4, 8, 8, 4, 2, 2, 2, 1], [3, 4, 7, 8]),  # local enhancer (G1 at 2, then G2)
    ],
)
def test_taps_are_the_last_stage_of_each_scale(scales, taps):
    assert pyramid_taps(scales) == taps


@pytest.mark.parametrize(
    ("scales", "match"),
    [([4, 2], "ending at 1"), ([3, 1], "power-of-two"), ([1, 2, 4], "coarse to fine")],
)
def test_taps_refuse_generators_without_a_nested_order(scales, match):
    with pytest.raises(ValueError, match=match):
        pyramid_taps(scales)


# --------------------------------------------------------------------------- the pyramid


def test_levels_have_the_sizes_pyramid_scales_says(nested_registry):
    adapter = synth.build("nested_scale.pyramid", generator=SIMPLE, style_dim=4)
    assert adapter.pyramid_scales == [4, 2, 1] and adapter.taps == [0, 1, 2]
    out = adapter(_cond(), _latents(3), return_features=True)
    assert [tuple(p.shape) for p in out.pyramid] == [(2, 3, 32 // s, 32 // s) for s in [4, 2, 1]]
    assert out.pyramid[-1] is out.image
    assert len(out.features) == 3 and adapter.stages is adapter.wrapped.stages
    assert adapter.requirements(adapter.config) == {"label_map", "styles"}
    rt = adapter.runtime_args()
    assert rt["pyramid_levels"] == rt["num_stages"] == 3 and rt["style_dim"] == 4
    assert rt["stage_scales"] == [4, 2, 1] and rt["num_classes"] == 4


def test_starts_as_the_wrapped_generator(nested_registry):
    """The modulations start at identity: the image is the wrapped generator's, bit for bit,
    and the wrapped generator run on its own is untouched by the hooks."""
    adapter = synth.build("nested_scale.pyramid", generator=NOISE, style_dim=4)
    cond, lat = _cond(), _latents(3, noise=True)
    out = adapter(cond, lat)
    alone = adapter.wrapped(cond, Latents(spatial=lat.spatial))
    assert torch.equal(out.image, alone.image)
    assert adapter._call is None
    _perturbed(adapter)
    assert torch.equal(adapter.wrapped(cond, Latents(spatial=lat.spatial)).image, alone.image)
    assert not torch.equal(adapter(cond, lat).image, alone.image)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("wrapped", [SIMPLE, ADAIN], ids=["instance_norm", "adain"])
def test_replacing_one_scales_code_leaves_coarser_levels_bit_identical(
    nested_registry, wrapped, train
):
    """Code k enters at the stage of level k (and, for a wrapped generator reading styles, at
    the stages after level k-1's): every coarser level stays exactly as it was."""
    adapter = _perturbed(synth.build("nested_scale.pyramid", generator=wrapped, style_dim=4))
    adapter.train(train)
    z = "z_dim" in wrapped
    cond, lat = _cond(), _latents(3, z=z)
    base = adapter(cond, lat)
    fresh = _latents(3, seed=9).styles
    for k in range(3):
        styles = [*lat.styles[:k], fresh[k], *lat.styles[k + 1 :]]
        edited = adapter(cond, Latents(styles=styles, z=lat.z))
        for j in range(k):
            assert torch.equal(edited.pyramid[j], base.pyramid[j]), (k, j)
        for j in range(k, 3):
            assert not torch.equal(edited.pyramid[j], base.pyramid[j]), (k, j)


def test_a_wrapped_generator_reading_styles_gets_one_per_stage(nested_registry):
    """core.adain in the wrapped generator reads styles[stage]: the adapter hands stage i the
    code of the first level tapped at or after it, and offers its style_dim."""
    adapter = synth.build("nested_scale.pyramid", generator=ADAIN, style_dim=4)
    assert adapter.wrapped.config.style_dim == 4
    assert adapter.stage_levels == [0, 1, 2]
    assert adapter.requirements(adapter.config) == {"label_map", "z", "styles"}
    seen = []
    adapter.wrapped.stages[1].norm.register_forward_pre_hook(
        lambda m, args: seen.append(args[1].latents.styles[1])
    )
    lat = _latents(3, z=True)
    adapter(_cond(), lat)
    assert seen[0] is lat.styles[1]


def test_clear_errors(nested_registry):
    adapter = synth.build("nested_scale.pyramid", generator=SIMPLE, style_dim=4)
    with pytest.raises(ValueError, match="reads latents.styles"):
        adapter(_cond(), Latents())
    with pytest.raises(ValueError, match="3 pyramid levels but latents.styles has 2"):
        adapter(_cond(), _latents(2))
    with pytest.raises(synth.ConfigError, match="runtime argument"):
        synth.build("nested_scale.pyramid", generator={**ADAIN, "style_dim": 4})


# --------------------------------------------------------------------------- state


def test_deepcopy_keeps_its_own_hooks(nested_registry):
    """EMA copies the generator: the copy's hooks write the copy's pyramid with its weights."""
    adapter = _perturbed(synth.build("nested_scale.pyramid", generator=SIMPLE, style_dim=4))
    twin = copy.deepcopy(adapter)
    cond, lat = _cond(), _latents(3)
    before = adapter(cond, lat)
    with torch.no_grad():
        for p in adapter.parameters():
            p.add_(1.0)
    out = twin(cond, lat)
    assert len(out.pyramid) == 3
    for a, b in zip(out.pyramid, before.pyramid):
        assert torch.equal(a, b)


def test_save_load_round_trip(nested_registry, tmp_path):
    model = synth.compose(
        {
            "generator": {"type": "nested_scale.pyramid", "generator": SIMPLE, "style_dim": 4},
            "injector": {"type": "core.gaussian", "shared_styles": True},
        }
    )
    _perturbed(model.generator)
    cond = _cond()
    lat = model.injector.prior(cond, torch.Generator().manual_seed(0))
    assert len(lat.styles) == 3
    model.save_pretrained(tmp_path / "m")
    loaded = synth.load(tmp_path / "m")
    a, b = model.eval().generate(cond, lat), loaded.generate(cond, lat)
    assert len(b.pyramid) == 3
    for x, y in zip(a.pyramid, b.pyramid):
        assert torch.equal(x, y)


@pytest.mark.parametrize(
    "wrapped",
    [SIMPLE, ADAIN, NOISE, {**SIMPLE, "num_stages": 2}],
    ids=["plain", "adain", "noise", "2"],
)
def test_check_part(nested_registry, wrapped):
    synth.testing.check_part("nested_scale.pyramid", generator=wrapped, style_dim=4)


def test_check_part_rgb3(nested_registry):
    synth.testing.check_part("nested_scale.pyramid", generator=SIMPLE, style_dim=3, rgb_kernel=3)
