"""nested_scale.pyramid_decoder: Table 4 encoder, eqs. 2–3, per-scale codes, exact nesting."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange

import synth
import synth.testing
from synth import Condition, Latents
from synth.nn.layers import LabelConv2d
from synth.nn.norms import InstanceNorm2d
from synth_nested_scale.encoders import TABLE4_CHANNELS, ConditionEncoder, encoder_sizes
from synth_nested_scale.generators import PyramidDecoder, decoder_geometry

SMALL = dict(channels=8, encoder_channels=[8, 8, 8, 8, 8], style_dim=4, mapping_layers=2)
STANDARD = dict(resolution=32, num_scales=4, **SMALL)
LABELS = dict(input="label_map", num_classes=5, **STANDARD)
SR = dict(variant="super_resolution", resolution=64, scale=4, **SMALL)


def _styles(n: int, b: int = 2, s: int = 4, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, s, generator=g) for _ in range(n)]


def _cond(params: dict, b: int = 2, seed: int = 1) -> Condition:
    g = torch.Generator().manual_seed(seed)
    h, w = (params["resolution"],) * 2
    if params.get("input") == "label_map":
        labels = torch.randint(0, params["num_classes"], (b, h // 4, w // 4), generator=g)
        labels = labels.repeat_interleave(4, 1).repeat_interleave(4, 2)
        return Condition(label_map=labels, num_classes=params["num_classes"])
    s = params.get("scale", 1) if params.get("variant") == "super_resolution" else 1
    image = torch.tanh(torch.randn(b, 3, h // s, w // s, generator=g))
    mask = (torch.rand(b, 1, h, w, generator=g) > 0.5).float() if params.get("use_mask") else None
    return Condition(image=image, mask=mask, size=(h, w))


# --------------------------------------------------------------------------- Table 4


def test_table4_encoder_sizes_and_layers_at_128():
    """Six K4-S2-P1 layers leave 2×2 at 128×128; layer 7 (K1-S2-P1) keeps 2×2."""
    sizes = [(64, 64), (32, 32), (16, 16), (8, 8), (4, 4), (2, 2), (2, 2)]
    assert encoder_sizes((128, 128), 7) == sizes
    enc = ConditionEncoder(3, list(TABLE4_CHANNELS))
    convs = [layer.conv for layer in enc.layers]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 256, 256, 128]
    assert [c.kernel_size for c in convs] == [(4, 4)] * 6 + [(1, 1)]
    assert all(c.stride == (2, 2) and c.padding == (1, 1) for c in convs)
    has_in = [isinstance(layer.norm, InstanceNorm2d) for layer in enc.layers]
    assert has_in == [False, True, True, True, True, True, False]


def test_table4_layer7_sees_one_position_at_128():
    """Layer 7 samples the zero-padded 2×2 map at stride 2: three outputs are LeakyReLU(bias),
    the bottom-right one is the 1×1 conv of layer 6's bottom-right pixel."""
    torch.manual_seed(0)
    enc = ConditionEncoder(3, [8, 8, 8, 8, 8, 8, 4])
    feats = enc(torch.tanh(torch.randn(2, 3, 128, 128)))
    f6, f7 = feats[-2], feats[-1]
    assert f7.shape == (2, 4, 2, 2)
    conv = enc.layers[-1].conv
    bias = F.leaky_relu(conv.bias, 0.2)
    for i, j in [(0, 0), (0, 1), (1, 0)]:
        torch.testing.assert_close(f7[:, :, i, j], bias.expand(2, -1))
    seen = F.leaky_relu(
        torch.einsum("oc,bc->bo", conv.weight[:, :, 0, 0], f6[:, :, 1, 1]) + conv.bias, 0.2
    )
    torch.testing.assert_close(f7[:, :, 1, 1], seen)


def test_default_geometry_is_the_papers_outpainting_decoder():
    """512 channels, Table 4 widths, 6 levels 4×4..128×128, c = 128·2·2 values."""
    cfg = PyramidDecoder.Config()
    geo = decoder_geometry(cfg)
    assert cfg.channels == 512 and geo.encoder_widths == list(TABLE4_CHANNELS)
    assert geo.pyramid_scales == [32, 16, 8, 4, 2, 1]
    assert geo.start == (4, 4) and geo.code_dim == 128 * 2 * 2
    sr = decoder_geometry(PyramidDecoder.Config(variant="super_resolution"))
    assert sr.pyramid_scales == [4, 2, 1] and sr.start == (16, 16)  # 16→128: 32, 64, 128


def test_label_map_encoder_gathers_the_one_hot_conv():
    torch.manual_seed(0)
    enc = ConditionEncoder(3, [8, 8, 4], num_classes=5)
    assert isinstance(enc.layers[0].conv, LabelConv2d)
    labels = torch.randint(0, 5, (2, 16, 16))
    dense = enc(F.one_hot(labels, 5).permute(0, 3, 1, 2).float())
    for a, b in zip(enc(labels), dense):
        torch.testing.assert_close(a, b)


# --------------------------------------------------------------------------- the decoder


@pytest.mark.parametrize("params", [STANDARD, LABELS, SR], ids=["image", "label_map", "sr"])
def test_pyramid_shapes_features_and_scale_codes(nested_registry, params):
    gen = synth.build("nested_scale.pyramid_decoder", **params)
    n = len(gen.pyramid_scales)
    out = gen(_cond(params), Latents(styles=_styles(n)), return_features=True)
    h = params["resolution"]
    assert [tuple(p.shape) for p in out.pyramid] == [
        (2, 3, h // s, h // s) for s in gen.pyramid_scales
    ]
    assert out.pyramid[-1] is out.image
    assert gen.pyramid_scales == gen.stage_scales and gen.pyramid_scales[-1] == 1
    assert [tuple(f.shape[1:]) for f in out.features] == [
        (8, h // s, h // s) for s in gen.pyramid_scales
    ]
    assert sorted(out.extras) == [f"scale_code/{k}" for k in range(n)]
    assert all(out.extras[f"scale_code/{k}"].shape == (2, 2 * 2 * 8) for k in range(n))
    rt = gen.runtime_args()
    assert rt["pyramid_levels"] == rt["num_stages"] == n and rt["style_dim"] == 4
    assert None not in rt.values()


def test_super_resolution_starts_at_the_input_resolution(nested_registry):
    """16→64 (×4): decoding starts at 16×16, the first decoded level is 32×32."""
    gen = synth.build("nested_scale.pyramid_decoder", **SR)
    assert gen.pyramid_scales == [2, 1] and gen.geometry.start == (16, 16)
    assert gen.output_size((16, 16)) == (64, 64)
    assert gen.requirements(gen.config) == {"image", "styles"}
    cond = _cond(SR)
    assert cond.image.shape[-2:] == (16, 16)
    out = gen(cond, Latents(styles=_styles(2)))
    assert out.pyramid[0].shape[-2:] == (32, 32)
    other = Condition(image=torch.flip(cond.image, dims=[-1]), size=(64, 64))
    assert not torch.equal(gen(other, Latents(styles=_styles(2))).image, out.image)


def test_scale_codes_are_the_shared_mlp_then_each_scales_affine(nested_registry):
    """extras["scale_code/k"] = A_k(MLP(styles[k])); with one Z0 for all scales, A_k(MLP(Z0))."""
    gen = synth.build("nested_scale.pyramid_decoder", **STANDARD)
    z0 = _styles(1)[0]
    out = gen(_cond(STANDARD), Latents(styles=[z0] * 4))
    w = z0
    for layer in gen.mapping:
        w = layer(w)
    for k, affine in enumerate(gen.affines):
        want = w @ affine.weight.T + affine.bias
        torch.testing.assert_close(out.extras[f"scale_code/{k}"], want)


def _u(stage, x, code, skip=None):
    """U (eqs. 2–3) written out: [nearest ×2] (+ skip), then per conv: conv, instance norm,
    x̂·(1 + γ) + β with this conv's slice of the code, LeakyReLU 0.2."""
    if stage.upsample:
        x = x.repeat_interleave(2, -2).repeat_interleave(2, -1)
    if skip is not None:
        x = x + skip
    params = rearrange(code, "b (n two c) -> n two b c", n=len(stage.convs), two=2)
    for conv, (gamma, beta) in zip(stage.convs, params):
        y = F.instance_norm(conv(x), eps=1e-5)
        x = F.leaky_relu(y * (1 + gamma[..., None, None]) + beta[..., None, None], 0.2)
    return x


@pytest.mark.parametrize("params", [STANDARD, SR], ids=["standard", "sr"])
def test_levels_follow_eqs_2_and_3(nested_registry, params):
    """G_1 = U[c, A_1(z)] (standard: Linear(c) at the first level; super-resolution: the
    LR-resolution encoder feature plus Linear(c), upsampled, plus the skip), then
    G_i = U[G_{i-1}, A_i(z)] and one conv + tanh to RGB per level."""
    gen = synth.build("nested_scale.pyramid_decoder", **params)
    n = len(gen.pyramid_scales)
    cond = _cond(params)
    out = gen(cond, Latents(styles=_styles(n)), return_features=True)
    image = cond.image
    if params.get("variant") == "super_resolution":
        image = F.interpolate(image, size=(64, 64), mode="bilinear", align_corners=False)
    feats = gen.encoder(image)
    c = feats[-1].flatten(1)
    if gen.lr_proj is None:
        x = gen.start(c).reshape(2, 8, 4, 4)
    else:  # scale 4: encoder layer 2 is at the input's 16×16, layer 1 at level 0's 32×32
        x = gen.lr_proj(feats[1]) + gen.start(c)[..., None, None]
    for k in range(n):
        skip = gen.skips[str(k)](feats[n - 2 - k]) if str(k) in gen.skips else None
        x = _u(gen.stages[k], x, out.extras[f"scale_code/{k}"], skip)
        torch.testing.assert_close(out.features[k], x)
        torch.testing.assert_close(out.pyramid[k], torch.tanh(gen.to_rgb[k](x)))


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("params", [STANDARD, LABELS, SR], ids=["image", "label_map", "sr"])
def test_replacing_one_scales_code_leaves_coarser_levels_bit_identical(
    nested_registry, params, train
):
    """Eqs. 2–3: level k reads codes 1..k only, so a new styles[k] changes level k and finer
    ones and leaves every coarser level exactly as it was."""
    gen = synth.build("nested_scale.pyramid_decoder", **params).train(train)
    n = len(gen.pyramid_scales)
    cond, styles = _cond(params), _styles(n)
    base = gen(cond, Latents(styles=styles))
    fresh = _styles(n, seed=5)
    for k in range(n):
        edited = gen(cond, Latents(styles=[*styles[:k], fresh[k], *styles[k + 1 :]]))
        for j in range(k):
            assert torch.equal(edited.pyramid[j], base.pyramid[j]), (k, j)
            assert torch.equal(edited.extras[f"scale_code/{j}"], base.extras[f"scale_code/{j}"])
        for j in range(k, n):
            assert not torch.equal(edited.pyramid[j], base.pyramid[j]), (k, j)


def test_decoder_composes_with_shared_gaussian_styles(nested_registry):
    """core.gaussian (shared_styles) draws one Z0 for all num_scales levels."""
    model = synth.compose(
        {
            "generator": {"type": "nested_scale.pyramid_decoder", **STANDARD},
            "injector": {"type": "core.gaussian", "shared_styles": True},
            "condition": ["image"],
        }
    )
    cond = _cond(STANDARD)
    lat = model.injector.prior(cond, torch.Generator().manual_seed(0))
    assert len(lat.styles) == 4 and all(s is lat.styles[0] for s in lat.styles)
    out = model.generate(cond, generator=torch.Generator().manual_seed(0))
    assert [p.shape[-1] for p in out.pyramid] == [4, 8, 16, 32]


# --------------------------------------------------------------------------- errors


def test_clear_errors(nested_registry):
    gen = synth.build("nested_scale.pyramid_decoder", **STANDARD)
    cond = _cond(STANDARD)
    with pytest.raises(ValueError, match="reads latents.styles"):
        gen(cond)
    with pytest.raises(ValueError, match="4 pyramid levels but latents.styles has 3"):
        gen(cond, Latents(styles=_styles(3)))
    with pytest.raises(ValueError, match="expected \\(2, 4\\)"):
        gen(cond, Latents(styles=_styles(4, s=5)))
    with pytest.raises(ValueError, match="makes \\(32, 32\\) images"):
        gen(Condition(image=torch.zeros(2, 3, 64, 64), size=(64, 64)), Latents(styles=_styles(4)))
    masked = synth.build("nested_scale.pyramid_decoder", use_mask=True, **STANDARD)
    with pytest.raises(ValueError, match="reads Condition.mask"):
        masked(cond, Latents(styles=_styles(4)))
    assert masked.requirements(masked.config) == {"image", "mask", "styles"}


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (dict(input="label_map"), "needs num_classes"),
        (dict(variant="super_resolution", input="label_map", num_classes=3), "input: image"),
        (dict(variant="super_resolution", scale=6), "power of two"),
        (dict(variant="super_resolution", num_scales=5), "does not match"),
        (dict(resolution=48, num_scales=6), "multiple of 32"),
        (dict(resolution=32, num_scales=6), "first level at least 2"),
        (dict(resolution=32, num_scales=3, channels=8), "maps too small"),
    ],
)
def test_config_errors(nested_registry, params, match):
    with pytest.raises(synth.ConfigError, match=match):
        synth.build("nested_scale.pyramid_decoder", **params)


# --------------------------------------------------------------------------- conformance


@pytest.mark.parametrize(
    "params",
    [STANDARD, dict(use_mask=True, rgb_kernel=3, **STANDARD), LABELS, SR],
    ids=["image", "mask+rgb3", "label_map", "sr"],
)
def test_check_part(nested_registry, params):
    synth.testing.check_part("nested_scale.pyramid_decoder", size=params["resolution"], **params)
