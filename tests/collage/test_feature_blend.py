"""collage.feature_blend (eq. 3): formula, regions, batched = per-reference loop, any generator."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange

import synth
from synth.testing._tiny import tiny_model
from synth_collage import FeatureBlend, blend_features, shift_map
from synth_collage.recipes import tiny_collage_model


def _randomise_norms(model):
    with torch.no_grad():
        for m in model.generator.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model


@pytest.fixture
def model(collage_registry):
    return _randomise_norms(tiny_collage_model())


def _cond(b=2):
    return synth.Condition(class_id=torch.arange(b) % 4, num_classes=4, size=(32, 32))


def test_blend_formula_with_shifts():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 3, 4, 6, 6, generator=g)  # target + 2 references
    masks = torch.rand(2, 2, 6, 6, generator=g) / 2
    out = blend_features(feats, masks, [(1, 0), (0, -2)])
    ref1 = torch.zeros_like(feats[:, 1])
    ref1[..., 1:, :] = feats[:, 1, :, :-1, :]
    ref2 = torch.zeros_like(feats[:, 2])
    ref2[..., :, :-2] = feats[:, 2, :, :, 2:]
    m0 = 1 - masks.sum(1, keepdim=True)
    expected = m0 * feats[:, 0] + masks[:, :1] * ref1 + masks[:, 1:] * ref2
    torch.testing.assert_close(out, expected)
    assert torch.equal(shift_map(feats[:, 1], 0, 0), feats[:, 1])


def test_outside_the_mask_target_inside_reference(model):
    """Blend at the last stage with a hard mask: the last stage feeds BN, ReLU and a 3×3 conv
    only, so away from the edge (2 px) the image is the target's outside, the reference's
    inside."""
    cond = _cond()
    g = torch.Generator().manual_seed(1)
    tgt = model.injector.prior(cond, g)
    ref = model.injector.prior(cond, g)
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 8:24, 8:24] = 1
    with torch.no_grad():
        out = model.sample(
            cond,
            1,
            sampler="collage.feature_blend",
            masks=mask,
            references=[ref],
            target=tgt,
            layers=[-1],
        )
        a = model.generate(cond, tgt).image
        b = model.generate(cond, ref).image
    inside, outside = torch.zeros(32, 32, dtype=torch.bool), torch.ones(32, 32, dtype=torch.bool)
    inside[10:22, 10:22] = True
    outside[6:26, 6:26] = False
    torch.testing.assert_close(out.image[..., outside], a[..., outside], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.image[..., inside], b[..., inside], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.extras["references"][:, 0], b, rtol=1e-5, atol=1e-5)


def test_zero_mask_is_the_target_and_full_mask_at_the_first_stage_is_the_reference(model):
    cond = _cond()
    g = torch.Generator().manual_seed(2)
    tgt, ref = model.injector.prior(cond, g), model.injector.prior(cond, g)
    with torch.no_grad():
        a = model.generate(cond, tgt).image
        b = model.generate(cond, ref).image
        zero = model.sample(
            cond,
            1,
            sampler="collage.feature_blend",
            masks=torch.zeros(2, 1, 32, 32),
            references=[ref],
            target=tgt,
        ).image
        full = model.sample(
            cond,
            1,
            sampler="collage.feature_blend",
            masks=torch.ones(2, 1, 32, 32),
            references=[ref],
            target=tgt,
            layers=[0],
        ).image
    torch.testing.assert_close(zero, a, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(full, b, rtol=1e-5, atol=1e-5)


def _loop_reference(model, cond, tgt, refs, per_layer, shifts=None):
    """The official scheme: one forward per reference (its own features), then the target's
    forward with each chosen stage's output replaced by eq. 3 (written out here)."""
    gen = model.generator
    ref_feats = [gen(cond, r, return_features=True).features for r in refs]
    scales = gen.stage_scales

    def hook_for(stage):
        def hook(module, args, out):
            m = torch.nn.functional.adaptive_avg_pool2d(per_layer[stage], out.shape[-2:])
            acc = (1 - m.sum(1, keepdim=True)) * out
            for i, feats in enumerate(ref_feats):
                f = feats[stage]
                if shifts is not None:
                    dy, dx = (round(s / scales[stage]) for s in shifts[i])
                    f = shift_map(f, dy, dx)
                acc = acc + m[:, i : i + 1] * f
            return acc

        return hook

    handles = [gen.stages[s].register_forward_hook(hook_for(s)) for s in per_layer]
    try:
        return gen(cond, tgt).image
    finally:
        for h in handles:
            h.remove()


@pytest.mark.parametrize("r", [1, 3])
def test_batched_equals_the_per_reference_loop(model, r):
    cond = _cond()
    g = torch.Generator().manual_seed(3)
    tgt = model.injector.prior(cond, g)
    refs = [model.injector.prior(cond, g) for _ in range(r)]
    masks = torch.rand(2, r, 32, 32, generator=g)
    masks = masks / masks.sum(1, keepdim=True) * 0.8
    shifts = [(4 * i, -4 * i) for i in range(r)]
    per_layer = {1: masks, 3: masks}
    with torch.no_grad():
        out = model.sample(
            cond,
            1,
            sampler="collage.feature_blend",
            masks=masks,
            references=refs,
            target=tgt,
            layers=[1, 3],
            shifts=shifts,
        )
        loop = _loop_reference(model, cond, tgt, refs, per_layer, shifts)
    torch.testing.assert_close(out.image, loop, rtol=1e-5, atol=1e-5)


def test_per_layer_masks_and_n_samples(model):
    cond = _cond()
    g = torch.Generator().manual_seed(4)
    masks = {0: torch.full((2, 1, 4, 4), 0.5), 2: torch.rand(2, 1, 16, 16, generator=g)}
    with torch.no_grad():
        out = model.sample(cond, 3, sampler="collage.feature_blend", masks=masks, generator=g)
    assert out.image.shape == (6, 3, 32, 32)
    assert out.extras["references"].shape == (6, 1, 3, 32, 32)
    assert out.latents.z.shape == (6, 16)
    tgt = synth.Latents(z=torch.randn(2, 16, generator=g))
    ref = synth.Latents(z=torch.randn(2, 16, generator=g))
    with torch.no_grad():
        out = model.sample(
            cond, 1, sampler="collage.feature_blend", masks=masks, references=[ref], target=tgt
        )
        loop = _loop_reference(model, cond, tgt, [ref], masks)
    torch.testing.assert_close(out.image, loop, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="per layer"):
        model.sample(cond, 1, sampler="collage.feature_blend", masks=masks, layers=[1])


def test_any_generator_core_simple(collage_registry):
    """Eq. 3 on a generator that knows nothing about collage: core.simple_generator."""
    model = synth.compose(
        {
            "condition": ["label_map"],
            "generator": {"type": "core.simple_generator", "num_classes": 3, "ngf": 4, "z_dim": 4},
            "injector": {"type": "core.gaussian"},
        }
    ).eval()
    cond = synth.Condition(label_map=torch.randint(0, 3, (2, 16, 16)), num_classes=3)
    g = torch.Generator().manual_seed(5)
    tgt, refs = model.injector.prior(cond, g), [model.injector.prior(cond, g) for _ in range(2)]
    masks = torch.zeros(2, 2, 16, 16)
    masks[:, 0, :8] = 1
    masks[:, 1, 8:, :8] = 0.5
    with torch.no_grad():
        out = model.sample(
            cond,
            1,
            sampler="collage.feature_blend",
            masks=masks,
            references=refs,
            target=tgt,
            layers=[0, 2],
        )
        loop = _loop_reference(model, cond, tgt, refs, {0: masks, 2: masks})
    torch.testing.assert_close(out.image, loop, rtol=1e-5, atol=1e-5)


def test_tiny_testing_model(collage_registry):
    model = tiny_model()
    cond = synth.Condition(label_map=torch.randint(0, 4, (2, 8, 8)), num_classes=4)
    with torch.no_grad():
        out = FeatureBlend()(model, cond, 2, masks=torch.full((1, 8, 8), 0.5))
    assert out.image.shape == (4, 3, 8, 8)


def test_bad_masks_are_named(model):
    cond = _cond()
    with pytest.raises(ValueError, match="Σ_i M_i ≤ 1"):
        model.sample(cond, 1, sampler="collage.feature_blend", masks=torch.ones(2, 2, 32, 32))
    with pytest.raises(ValueError, match=r"masks has shape"):
        model.sample(cond, 1, sampler="collage.feature_blend", masks=torch.ones(3, 1, 32, 32))
    with pytest.raises(ValueError, match=r"layers \[7\]"):
        model.sample(
            cond, 1, sampler="collage.feature_blend", masks=torch.ones(2, 1, 32, 32), layers=[7]
        )
    with pytest.raises(ValueError, match="2 references but masks has 1"):
        z = synth.Latents(z=torch.randn(2, 16))
        model.sample(
            cond,
            1,
            sampler="collage.feature_blend",
            masks=torch.ones(2, 1, 32, 32),
            references=[z, z],
        )


def test_order_is_b_n(model):
    """Row b·n + j is input b's j-th blend: per input, the same as sampling that input alone."""
    cond = _cond()
    tgt = synth.Latents(z=torch.randn(4, 16))
    ref = synth.Latents(z=torch.randn(4, 16))
    masks = torch.full((2, 1, 32, 32), 0.5)
    with torch.no_grad():
        both = model.sample(
            cond, 2, sampler="collage.feature_blend", masks=masks, references=[ref], target=tgt
        ).image
        second = model.sample(
            cond[1],
            2,
            sampler="collage.feature_blend",
            masks=masks[1:],
            references=[ref[2:]],
            target=tgt[2:],
        ).image
    torch.testing.assert_close(rearrange(both, "(b n) c h w -> b n c h w", n=2)[1], second)


def test_inference_blends_in_place_and_training_mode_keeps_the_graph(model):
    """Under no_grad the hook overwrites the targets' rows of the stage output (no copy of the
    reference paths); with gradients it returns a new tensor. Same numbers; gradients reach
    the target's and the references' codes."""
    cond = _cond()
    g = torch.Generator().manual_seed(7)
    tgt = model.injector.prior(cond, g)
    refs = [model.injector.prior(cond, g) for _ in range(2)]
    masks = torch.rand(2, 2, 32, 32, generator=g)
    masks = masks / masks.sum(1, keepdim=True) * 0.7

    def blend(t, rs, grad=False):
        return model.sample(
            cond,
            1,
            sampler="collage.feature_blend",
            grad=grad,
            masks=masks,
            references=rs,
            target=t,
        ).image

    fast = blend(tgt, refs)
    z_t = tgt.z.clone().requires_grad_(True)
    z_r = [r.z.clone().requires_grad_(True) for r in refs]
    slow = blend(synth.Latents(z=z_t), [synth.Latents(z=z) for z in z_r], grad=True)
    torch.testing.assert_close(slow.detach(), fast, rtol=0, atol=1e-6)
    slow.square().sum().backward()
    assert z_t.grad is not None and all(z.grad is not None for z in z_r)
    assert all(float(z.grad.abs().sum()) > 0 for z in [z_t, *z_r])
