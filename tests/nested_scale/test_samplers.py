"""Scale editing and scale interpolation: only the chosen level's codes change, and every
pyramid level coarser than it stays bit-identical (eqs. 2-3)."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange

import synth
import synth.testing
from synth.errors import CapabilityError
from synth_nested_scale import ScaleEdit, ScaleInterpolate
from synth_nested_scale.samplers import tiny_nested_model

ADAPTER = {
    "type": "nested_scale.pyramid",
    "style_dim": 4,
    "generator": {
        "type": "core.simple_generator",
        "num_classes": 4,
        "ngf": 8,
        "num_stages": 3,
        "z_dim": 3,
    },
}


def tiny_model(kind: str = "decoder", seed: int = 0) -> synth.SynthesisModel:
    """The tiny pyramid decoder (4 levels), or the adapter around core.simple_generator (3)."""
    if kind == "decoder":
        return tiny_nested_model(seed)
    torch.manual_seed(seed)
    spec = {"generator": ADAPTER, "injector": {"type": "core.gaussian"}}
    model = synth.compose(spec).eval()
    with torch.no_grad():  # the per-scale FiLM starts at identity: give the codes an effect
        for p in model.generator.modulations.parameters():
            p.normal_(0.0, 0.5)
    return model


@pytest.fixture
def registry(nested_registry):
    return nested_registry


def _cond(b: int = 2, seed: int = 0) -> synth.Condition:
    g = torch.Generator().manual_seed(seed)
    return synth.testing.make_condition({"label_map"}, batch_size=b, size=32, generator=g)


# --------------------------------------------------------------------------- scale_edit


LEVELS = {"decoder": 4, "adapter": 3}


@pytest.mark.parametrize(
    ("kind", "scales"),
    [("decoder", [2]), ("decoder", [1, 3]), ("decoder", [-1]), ("adapter", [1]), ("adapter", [0])],
)
def test_scale_edit_redraws_only_the_chosen_scales(registry, kind, scales):
    model, cond, n, levels = tiny_model(kind), _cond(), 3, LEVELS[kind]
    ref = model.injector.prior(cond, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(6)
    with torch.no_grad():
        out = model.sample(cond, n, "nested_scale.scale_edit", g, scales=scales, reference=ref)
        ref_out = model.generator(cond.repeat_interleave(n), ref.repeat_interleave(n))
    chosen = {k % levels for k in scales}
    assert out.image.shape == (2 * n, 3, 32, 32) and len(out.latents.styles) == levels
    for k, code in enumerate(out.latents.styles):
        kept = ref.styles[k].repeat_interleave(n, dim=0)
        if k in chosen:
            per_input = rearrange(code, "(b n) s -> b n s", n=n)
            assert not torch.equal(per_input[:, 0], per_input[:, 1])  # redrawn per sample
            assert not torch.equal(code, kept)
        else:
            assert torch.equal(code, kept)  # exactly the reference's
    if ref.z is not None:  # the adapter's wrapped generator also reads z: kept
        assert torch.equal(out.latents.z, ref.z.repeat_interleave(n, dim=0))
    coarsest = min(chosen)
    for k in range(levels):
        same = torch.equal(out.pyramid[k], ref_out.pyramid[k])
        assert same == (k < coarsest), k
    samples = rearrange(out.image, "(b n) c h w -> b n c h w", n=n)
    assert not torch.equal(samples[:, 0], samples[:, 1])


def test_scale_edit_draws_a_reference_when_none_is_given(registry):
    model, cond = tiny_model(), _cond()
    with torch.no_grad():
        out = model.sample(
            cond, 2, "nested_scale.scale_edit", torch.Generator().manual_seed(0), scales=[3]
        )
        again = model.sample(
            cond, 2, "nested_scale.scale_edit", torch.Generator().manual_seed(0), scales=[3]
        )
    torch.testing.assert_close(out.image, again.image, rtol=0, atol=0)
    codes = rearrange(out.latents.styles[0], "(b n) s -> b n s", n=2)
    assert torch.equal(codes[:, 0], codes[:, 1])  # one reference per input
    levels = rearrange(out.pyramid[2], "(b n) c h w -> b n c h w", n=2)
    assert torch.equal(levels[:, 0], levels[:, 1])


def test_scale_edit_errors(registry):
    model, cond = tiny_model(), _cond()
    with pytest.raises(TypeError, match="scales"):
        model.sample(cond, 2, "nested_scale.scale_edit")
    with pytest.raises(ValueError, match="not levels"):
        model.sample(cond, 2, "nested_scale.scale_edit", scales=[4])
    with pytest.raises(ValueError, match="batch size"):
        ref = model.injector.prior(_cond(b=3))
        model.sample(cond, 2, "nested_scale.scale_edit", scales=[1], reference=ref)
    with pytest.raises(CapabilityError, match="styles"):
        ScaleEdit().sample(model, cond, 2, scales=[0], reference=synth.Latents(z=torch.zeros(2, 3)))


# --------------------------------------------------------------------------- scale_interpolate


@pytest.mark.parametrize(
    ("kind", "mode"), [("decoder", "slerp"), ("decoder", "lerp"), ("adapter", "slerp")]
)
def test_scale_interpolate_walks_one_code(registry, kind, mode):
    model, cond, n, k = tiny_model(kind), _cond(), 5, 1
    g = torch.Generator().manual_seed(3)
    start = model.injector.prior(cond, g)
    end = torch.randn(2, 4, generator=g)
    with torch.no_grad():
        out = ScaleInterpolate()(model, cond, n, scale=k, start=start, end=end, mode=mode)
        start_out = model.generator(cond.repeat_interleave(n), start.repeat_interleave(n))
    walk = rearrange(out.latents.styles[k], "(b n) s -> b n s", n=n)
    torch.testing.assert_close(walk[:, 0], start.styles[k])
    torch.testing.assert_close(walk[:, -1], end)
    a, b = start.styles[k], end
    for j, t in enumerate(torch.linspace(0, 1, n).tolist()):
        want = synth.ops.slerp(a, b, t) if mode == "slerp" else (1 - t) * a + t * b
        torch.testing.assert_close(walk[:, j], want)
    for i, code in enumerate(out.latents.styles):
        if i != k:
            assert torch.equal(code, start.styles[i].repeat_interleave(n, dim=0))
    for i in range(LEVELS[kind]):
        assert torch.equal(out.pyramid[i], start_out.pyramid[i]) == (i < k), i


def test_scale_interpolate_defaults_and_errors(registry):
    model, cond = tiny_model(), _cond()
    with torch.no_grad():
        out = model.sample(
            cond, 3, "nested_scale.scale_interpolate", torch.Generator().manual_seed(1), scale=-1
        )
    assert out.image.shape == (6, 3, 32, 32) and out.latents.kl is None
    first = rearrange(out.image, "(b n) c h w -> b n c h w", n=3)
    assert not torch.equal(first[:, 0], first[:, -1])
    with pytest.raises(TypeError, match="scale"):
        model.sample(cond, 3, "nested_scale.scale_interpolate")
    with pytest.raises(ValueError, match="end is"):
        model.sample(cond, 3, "nested_scale.scale_interpolate", scale=0, end=torch.zeros(2, 5))


# --------------------------------------------------------------------------- conformance


@pytest.mark.parametrize("name", ["nested_scale.scale_edit", "nested_scale.scale_interpolate"])
def test_samplers_pass_check_part(registry, name):
    """On their own example inputs: the tiny pyramid decoder."""
    synth.testing.check_part(name)


@pytest.mark.parametrize(
    ("name", "keywords"),
    [
        ("nested_scale.scale_edit", {"scales": [1]}),
        ("nested_scale.scale_interpolate", {"scale": 0}),
    ],
)
def test_samplers_pass_check_part_on_the_adapter(registry, name, keywords):
    def inputs(*, batch_size, size, generator):
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        cond = synth.testing.make_condition(
            {"label_map"}, batch_size=batch_size, size=32, generator=generator
        )
        return {"model": tiny_model("adapter", seed), "cond": cond, "n": 3, "kwargs": keywords}

    synth.testing.check_part(name, example_inputs=inputs)
