"""Feature collaging (collage eq. 3) on other plugins' generators, from names alone:
SPADE (clvae.spade_generator), pix2pixHD (pix2pixhd.global_generator), the nested-scale
decoder (nested_scale.pyramid_decoder) and the flagship recipe nested_scale.spade (SPADE in the
nested_scale.pyramid adapter, per-scale codes; its generator and injector at test size). Two samples of one label map are blended inside a
region at the last stage: outside the region (beyond the receptive field of the layers after
that stage) the result is the target sample, inside it is the reference sample."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import synth

K = 4

CASES: dict[str, tuple[tuple[str, ...], dict, int]] = {
    "spade": (
        ("clvae",),
        {
            "generator": {
                "type": "clvae.spade_generator",
                "num_classes": K,
                "ngf": 4,
                "z_dim": 8,
                "crop_size": 64,
                "norm": {"type": "clvae.spade", "hidden": 8},
            },
            "injector": {"type": "core.gaussian"},
        },
        64,
    ),
    "pix2pixhd": (
        ("pix2pixhd",),
        {
            "generator": {
                "type": "pix2pixhd.global_generator",
                "num_classes": K,
                "ngf": 4,
                "n_downsampling": 2,
                "n_blocks": 1,
                "feat_num": 3,
            },
            # two samples of one label map: two instance-feature maps
            "injector": {"type": "core.spatial_noise"},
        },
        32,
    ),
    "nested_scale": (
        ("nested_scale",),
        {
            "generator": {
                "type": "nested_scale.pyramid_decoder",
                "input": "label_map",
                "num_classes": K,
                "resolution": 32,
                "num_scales": 4,
                "channels": 8,
                "encoder_channels": [8, 8, 8, 8, 8],
                "style_dim": 4,
                "mapping_layers": 2,
            },
            "injector": {"type": "core.gaussian"},
        },
        32,
    ),
    # the flagship (issue 13 item 6): the recipe's generator and injector, narrowed
    "nested_scale.spade": (("nested_scale", "clvae"), {"recipe": "nested_scale.spade"}, 64),
}

#: Pixels the layers after the last stage can carry a change across (pix2pixHD's 7x7 output
#: conv reaches 3; SPADE's and the decoder's 3x3 / 1x1 convs less).
MARGIN = 4


def _label_map(b: int, size: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    coarse = torch.randint(0, K, (b, size // 8, size // 8), generator=g)
    return coarse.repeat_interleave(8, 1).repeat_interleave(8, 2)


def _spec(spec: dict) -> dict:
    """A case's spec; a recipe's generator + injector at test size (64 px, ngf 4)."""
    if "recipe" not in spec:
        return spec
    full = copy.deepcopy(synth.recipes()[spec["recipe"]].spec)
    generator = full["generator"]
    generator["generator"].update(num_classes=K, ngf=4, crop_size=64)
    return {"generator": generator, "injector": full["injector"]}


def _grow(region: torch.Tensor, r: int) -> torch.Tensor:
    """Dilate a ``[H, W]`` bool map by ``r`` pixels (square)."""
    x = region.float()[None, None]
    return F.max_pool2d(x, 2 * r + 1, stride=1, padding=r)[0, 0].bool()


@pytest.mark.parametrize("case", list(CASES))
def test_blend_two_samples_inside_a_region(registry_with, case):
    plugins, spec, size = CASES[case]
    registry_with("collage", *plugins)
    torch.manual_seed(0)
    model = synth.compose(_spec(spec)).eval()
    if "recipe" in spec:
        # the adapter's per-scale modulations start at zero (the wrapped generator unchanged),
        # so an untrained flagship's samples of one map are equal; trained ones are not
        with torch.no_grad():
            for name, p in model.generator.named_parameters():
                if p.dim() == 2 and not p.any():
                    p.normal_(0, 0.1, generator=torch.Generator().manual_seed(len(name)))
    b = 2
    cond = synth.Condition(label_map=_label_map(b, size), num_classes=K)
    g = torch.Generator().manual_seed(1)
    target = model.injector.prior(cond, g)
    reference = model.injector.prior(cond, g)
    region = torch.zeros(size, size, dtype=torch.bool)
    region[size // 4 : 3 * size // 4, size // 2 :] = True
    masks = region.float()[None, None].expand(b, 1, size, size)
    with torch.no_grad():
        out = model.sample(
            cond,
            1,
            sampler="collage.feature_blend",
            masks=masks,
            target=target,
            references=[reference],
            layers=[-1],
        )
        tgt_img = model.generate(cond, target).image
        ref_img = model.generate(cond, reference).image
    assert out.image.shape == (b, 3, size, size)
    outside = ~_grow(region, MARGIN)
    inside = ~_grow(~region, MARGIN)
    torch.testing.assert_close(out.image[..., outside], tgt_img[..., outside], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.image[..., inside], ref_img[..., inside], atol=1e-5, rtol=0)
    # the two samples differ there, so the blend did something
    assert (tgt_img[..., inside] - ref_img[..., inside]).abs().max() > 1e-3
    torch.testing.assert_close(out.extras["references"][:, 0], ref_img)

    # blending at every stage: the last replacement still makes the inside the reference's
    with torch.no_grad():
        every = model.sample(
            cond,
            1,
            sampler="collage.feature_blend",
            masks=masks,
            target=target,
            references=[reference],
        )
    torch.testing.assert_close(every.image[..., inside], ref_img[..., inside], atol=1e-5, rtol=0)
