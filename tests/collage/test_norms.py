"""collage.scbn and collage.spatial_adain against independent computations (eq. 1, eq. 2)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import synth
from synth_collage import SpatialAdaIN, SpatialCBN, collage_map, layer_class_maps, spatial_norms
from synth_collage.recipes import tiny_collage_model

K, C = 5, 6


def _scbn(seed: int = 0) -> SpatialCBN:
    torch.manual_seed(seed)
    block = SpatialCBN(channels=C, num_classes=K)
    with torch.no_grad():  # trained-looking class parameters
        block.gammas.weight.normal_(1, 0.3)
        block.betas.weight.normal_(0, 0.3)
    return block


def _cbn_reference(x, block, ids, training=True):
    """Eq. 1 written out: BN without affine (eps 2e-5), then γ(c)·x̂ + β(c) per image."""
    if training:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    else:
        mean = block.bn.running_mean.view(1, -1, 1, 1)
        var = block.bn.running_var.view(1, -1, 1, 1)
    xhat = (x - mean) / torch.sqrt(var + 2e-5)
    g = block.gammas.weight[ids].view(-1, C, 1, 1)
    b = block.betas.weight[ids].view(-1, C, 1, 1)
    return g * xhat + b


def test_init_and_eps():
    block = SpatialCBN(channels=C, num_classes=K)
    assert torch.equal(block.gammas.weight, torch.ones(K, C))
    assert torch.equal(block.betas.weight, torch.zeros(K, C))
    assert block.bn.eps == 2e-5 and not block.bn.affine


@pytest.mark.parametrize("training", [True, False])
def test_class_id_is_cbn(training):
    block = _scbn()
    x = torch.randn(4, C, 8, 8) * 3 + 1
    ids = torch.tensor([0, 3, 3, 4])
    if not training:
        block.bn.running_mean.normal_()
        block.bn.running_var.uniform_(0.5, 2)
    block.train(training)
    ctx = synth.Context(synth.Condition(class_id=ids, num_classes=K))
    out = block(x, ctx)
    torch.testing.assert_close(out, _cbn_reference(x, block, ids, training), rtol=1e-5, atol=1e-5)


def test_uniform_map_equals_cbn():
    """sCBN with a spatially uniform one-hot map is CBN (eq. 2 reduces to eq. 1)."""
    block = _scbn().eval()
    block.bn.running_mean.normal_()
    x = torch.randn(3, C, 8, 8)
    ids = torch.tensor([1, 2, 4])
    weights = F.one_hot(ids, K).float()[:, :, None, None].expand(-1, -1, 8, 8).contiguous()
    ctx = synth.Context(synth.Condition(class_weights=weights, num_classes=K))
    ref = _cbn_reference(x, block, ids, training=False)
    torch.testing.assert_close(block(x, ctx), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("training", [True, False])
def test_mixed_map_is_the_per_pixel_mix_of_per_class_outputs(training):
    block = _scbn().train(training)
    x = torch.randn(2, C, 8, 8)
    weights = torch.randn(2, K, 8, 8).softmax(1)
    ctx = synth.Context(synth.Condition(class_weights=weights, num_classes=K))
    out = block(x, ctx)
    per_class = torch.stack(
        [_cbn_reference(x, block, torch.full((2,), c), training) for c in range(K)], 1
    )  # [B, K, C, H, W]
    ref = (weights[:, :, None] * per_class).sum(1)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_class_map_is_area_averaged_to_the_layer():
    block = _scbn().eval()
    x = torch.randn(1, C, 8, 8)
    weights = torch.randn(1, K, 32, 32).softmax(1)
    ctx = synth.Context(synth.Condition(class_weights=weights, num_classes=K))
    small = synth.Context(
        synth.Condition(class_weights=F.avg_pool2d(weights, 4), num_classes=K, size=(8, 8))
    )
    torch.testing.assert_close(block(x, ctx), block(x, small))


def test_no_class_is_a_clear_error():
    block = _scbn()
    ctx = synth.Context(synth.Condition(mask=torch.ones(1, 1, 4, 4)))
    with pytest.raises(ValueError, match=r"class_weights.*class_id"):
        block(torch.randn(1, C, 4, 4), ctx)


def test_bf16_autocast_keeps_fp32_statistics():
    block = _scbn()
    x = torch.randn(2, C, 4, 4) * 100
    ctx = synth.Context(synth.Condition(class_id=torch.tensor([0, 1]), num_classes=K))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = block(x.bfloat16(), ctx)
    torch.testing.assert_close(out.float(), block(x, ctx), rtol=0.05, atol=0.05)


# ---------------------------------------------------------------------------------------------
# spatial AdaIN
# ---------------------------------------------------------------------------------------------


def test_spatial_adain_mix_and_uniform_case():
    torch.manual_seed(0)
    block = SpatialAdaIN(channels=C, num_classes=K, stage=0, style_dim=3)
    x = torch.randn(2, C, 8, 8)
    s = torch.randn(2, 3)
    lat = synth.Latents(styles=[s])

    def reference(ids):  # IN(x)·(1 + A_γ s + E_γ(c)) + A_β s + E_β(c), written out
        xhat = (x - x.mean((2, 3), keepdim=True)) / torch.sqrt(
            x.var((2, 3), unbiased=False, keepdim=True) + 1e-5
        )
        a = s @ block.affine.weight.t() + block.affine.bias
        g = a[:, :C] + block.class_gamma.weight[ids]
        b = a[:, C:] + block.class_beta.weight[ids]
        return xhat * (1 + g[:, :, None, None]) + b[:, :, None, None]

    ids = torch.tensor([2, 4])
    out = block(x, synth.Context(synth.Condition(class_id=ids, num_classes=K), lat))
    torch.testing.assert_close(out, reference(ids), rtol=1e-5, atol=1e-5)
    weights = torch.randn(2, K, 8, 8).softmax(1)
    out = block(x, synth.Context(synth.Condition(class_weights=weights, num_classes=K), lat))
    per_class = torch.stack([reference(torch.full((2,), c)) for c in range(K)], 1)
    torch.testing.assert_close(out, (weights[:, :, None] * per_class).sum(1), rtol=1e-5, atol=1e-5)


def test_spatial_adain_in_cores_adain_slot():
    """core.simple_generator's norm slot (where core.adain goes) takes collage.spatial_adain:
    it reads the label map one-hot, and a class map when the Condition has one (a collage)."""
    model = synth.compose(
        {
            "condition": ["label_map"],
            "generator": {
                "type": "core.simple_generator",
                "num_classes": K,
                "ngf": 4,
                "num_stages": 2,
                "style_dim": 3,
                "norm": {"type": "collage.spatial_adain", "condition": "label_map"},
            },
            "injector": {"type": "core.gaussian"},
        }
    ).eval()
    # constant on 2×2 blocks: the nearest 8×8 label map and the area-averaged one-hot agree
    labels = torch.randint(0, K, (2, 8, 8)).repeat_interleave(2, 1).repeat_interleave(2, 2)
    cond = synth.Condition(label_map=labels, num_classes=K)
    lat = model.injector.prior(cond, torch.Generator().manual_seed(0))
    with torch.no_grad():
        plain = model.generate(cond, lat).image
        same = synth.Condition(
            label_map=labels,
            class_weights=F.one_hot(labels, K).permute(0, 3, 1, 2).float(),
            num_classes=K,
        )
        torch.testing.assert_close(model.generate(same, lat).image, plain)
        other = synth.Condition(
            label_map=labels, class_weights=torch.randn(2, K, 16, 16).softmax(1), num_classes=K
        )
        assert (model.generate(other, lat).image - plain).abs().max() > 1e-4


# ---------------------------------------------------------------------------------------------
# per-layer maps
# ---------------------------------------------------------------------------------------------


def test_layer_maps_act_on_the_chosen_layers_only():
    """A collage to class 2 on layers 0, 1 (block 1) of a class-1 image equals the class-2
    image of a model whose other layers cannot tell classes 1 and 2 apart."""
    model = tiny_collage_model()
    norms = spatial_norms(model.generator)
    assert len(norms) == 2 * 3  # two per block, three blocks at 32 px
    with torch.no_grad():
        for norm in norms:
            norm.gammas.weight.normal_(1, 0.5)
            norm.betas.weight.normal_(0, 0.5)
            norm.bn.running_var.uniform_(0.5, 2)
        for norm in norms[2:]:  # layers ≥ 2: class 2 := class 1
            norm.gammas.weight[2] = norm.gammas.weight[1]
            norm.betas.weight[2] = norm.betas.weight[1]
    z = torch.randn(2, 16)
    lat = synth.Latents(z=z)
    one = synth.Condition(class_id=torch.tensor([1, 1]), num_classes=4)
    two = synth.Condition(class_id=torch.tensor([2, 2]), num_classes=4)
    region = torch.ones(2, 1, 32, 32)
    w = collage_map(one.class_id, 2, region, 4)
    with torch.no_grad(), layer_class_maps(model.generator, {0: w, 1: w}):
        collaged = model.generate(one, lat).image
    with torch.no_grad():
        expected = model.generate(two, lat).image
        plain = model.generate(one, lat).image
    torch.testing.assert_close(collaged, expected, rtol=1e-5, atol=1e-5)
    assert (collaged - plain).abs().max() > 1e-3
    # the hooks are gone after the block
    with torch.no_grad():
        torch.testing.assert_close(model.generate(one, lat).image, plain)


def test_collage_map_intensity():
    base = torch.tensor([0, 1])
    region = torch.zeros(2, 1, 4, 4)
    region[:, :, :2] = 1
    w = collage_map(base, 3, region, 4, intensity=0.25)
    torch.testing.assert_close(w.sum(1), torch.ones(2, 4, 4))
    assert w[0, 3, 0, 0] == 0.25 and w[0, 0, 0, 0] == 0.75 and w[0, 0, 3, 3] == 1
    with pytest.raises(ValueError, match="intensity"):
        collage_map(base, 3, region, 4, intensity=1.5)


def test_layer_maps_bad_layer_is_named():
    model = tiny_collage_model()
    with (
        pytest.raises(ValueError, match=r"layers \[9\]"),
        layer_class_maps(model.generator, {9: torch.ones(1, 4, 4, 4) / 4}),
    ):
        pass
