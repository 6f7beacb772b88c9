"""Conformance and shapes of every registered pix2pixHD part."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import synth
import synth.testing
from synth import Condition, Latents
from synth.nn.layers import label_conv2d
from synth_pix2pixhd import GlobalGenerator, LocalEnhancer, MultiscaleDiscriminator
from synth_pix2pixhd.generators import InputConv

from .official import official_input

SMALL = {
    "pix2pixhd.global_generator": dict(
        num_classes=4, ngf=4, n_downsampling=2, n_blocks=1, use_instances=True, feat_num=3
    ),
    "pix2pixhd.local_enhancer": dict(
        num_classes=4,
        ngf=4,
        n_downsample_global=1,
        n_blocks_global=1,
        n_local_enhancers=2,
        n_blocks_local=1,
        use_instances=True,
        feat_num=2,
    ),
    "pix2pixhd.patch_discriminator": dict(num_classes=4, ndf=4, n_layers=2, use_instances=True),
    "pix2pixhd.multiscale_discriminator": dict(
        num_classes=4, ndf=4, n_layers=2, num_d=2, use_instances=True
    ),
    "pix2pixhd.feature_matching": dict(),
    "pix2pixhd.instance_encoder": dict(nef=4, n_downsampling=2, channels=3),
    "pix2pixhd.cluster_sampler": dict(),
}


def test_every_part_is_covered(reg):
    assert set(synth.list_parts(pattern="pix2pixhd.*")) == set(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_check_part(reg, name):
    report = synth.testing.check_part(name, **SMALL[name])
    assert report.passed, str(report)


def test_check_part_plain_generator(reg):
    """The paper's default input (labels only, no instances, no features)."""
    synth.testing.check_part(
        "pix2pixhd.global_generator", num_classes=5, ngf=4, n_downsampling=2, n_blocks=1
    )


def _cond(b=2, h=32, w=64, k=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, k, (b, h // 4, w // 4), generator=g)
    labels = labels.repeat_interleave(4, 1).repeat_interleave(4, 2)
    inst = torch.randint(0, 6, (b, h // 8, w // 8), generator=g)
    inst = inst.repeat_interleave(8, 1).repeat_interleave(8, 2)
    return Condition(label_map=labels, num_classes=k, instance_map=inst)


def test_global_generator_shapes():
    gen = GlobalGenerator(num_classes=5, ngf=4, n_downsampling=3, n_blocks=2, use_instances=True)
    out = gen(_cond(), return_features=True)
    assert out.image.shape == (2, 3, 32, 64)
    assert len(gen.stages) == 1 + 3 + 2 + 3 == len(out.features)
    assert gen.stage_channels == [4, 8, 16, 32, 32, 32, 16, 8, 4]
    assert gen.stage_scales == [1, 2, 4, 8, 8, 8, 4, 2, 1]
    for f, c, s in zip(out.features, gen.stage_channels, gen.stage_scales):
        assert f.shape == (2, c, 32 // s, 64 // s)
    assert gen.requirements(gen.config) == {"label_map", "instance_map"}


def test_local_enhancer_shapes():
    gen = LocalEnhancer(
        num_classes=5,
        ngf=4,
        n_downsample_global=2,
        n_blocks_global=1,
        n_local_enhancers=2,
        n_blocks_local=2,
        feat_num=3,
    )
    assert gen.size_multiple == 16
    assert gen.requirements(gen.config) == {"label_map", "spatial"}
    feat = torch.randn(2, 3, 32, 64)
    out = gen(_cond(), Latents(spatial=feat), return_features=True)
    assert out.image.shape == (2, 3, 32, 64)
    assert len(out.features) == len(gen.stage_channels) == len(gen.stages)
    for f, c, s in zip(out.features, gen.stage_channels, gen.stage_scales):
        assert f.shape == (2, c, 32 // s, 64 // s)
    # G1 of width ngf·2^N at scale 2^N; finest enhancer ends at full resolution with ngf.
    assert gen.stage_channels[0] == 16 and gen.stage_scales[0] == 4
    assert gen.stage_channels[-1] == 4 and gen.stage_scales[-1] == 1


def test_generator_needs_features():
    gen = GlobalGenerator(num_classes=5, ngf=4, n_downsampling=2, n_blocks=1, feat_num=3)
    with pytest.raises(ValueError, match="latents.spatial"):
        gen(_cond())
    with pytest.raises(ValueError, match="multiples of 4"):
        gen.check_condition(
            Condition(label_map=torch.zeros(1, 30, 32, dtype=torch.long), num_classes=5)
        )


def test_label_conv_path_equals_dense_conv():
    """The first layer by gathering + dense extras == the dense 7×7 reflect conv of the
    official concatenated input."""
    torch.manual_seed(0)
    cond = _cond()
    conv = InputConv(5, 1 + 3, 6)
    feat = torch.randn(2, 3, 32, 64)
    x = official_input(cond.label_map, cond.instance_map, 5, feat)
    dense = F.conv2d(F.pad(x, (3, 3, 3, 3), mode="reflect"), conv.weight, conv.bias)
    edges = synth.nn.ops.instance_edges(cond.instance_map)
    ours = conv(labels=cond.label_map, extra=torch.cat([edges, feat], 1))
    torch.testing.assert_close(ours, dense, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(conv(dense=x), dense, rtol=1e-5, atol=1e-5)
    plain = label_conv2d(
        cond.label_map, conv.weight[:, :5], conv.bias, padding=3, padding_mode="reflect"
    )
    assert plain.shape == dense.shape


def test_discriminator_shapes_and_input_order():
    d = MultiscaleDiscriminator(num_classes=5, ndf=4, n_layers=3, num_d=3, use_instances=True)
    assert d.in_channels == 5 + 1 + 3
    assert d.requirements(d.config) == {"label_map", "instance_map"}
    out = d(torch.randn(2, 3, 64, 64), _cond(h=64, w=64))
    assert len(out.logits) == 3 and all(len(f) == 4 for f in out.features)
    # 64 -> 33 -> 17 -> 9 (stride-2 layers, pad 2), then 10 and 11 (stride-1, pad 2).
    assert [t.shape[-1] for t in out.features[0]] == [33, 17, 9, 10]
    assert out.logits[0].shape == (2, 1, 11, 11)
    assert out.features[0][1].shape[1] == 8 and out.features[0][3].shape[1] == 32
    # scale 1 sees the input pooled once: 64 -> 32.
    assert out.features[1][0].shape[-1] == 17
    with pytest.raises(ValueError, match="instance_map"):
        d(
            torch.randn(1, 3, 64, 64),
            Condition(label_map=torch.zeros(1, 64, 64, dtype=torch.long), num_classes=5),
        )


def test_instance_edges_equal_official_and_core():
    from synth_pix2pixhd.generators import instance_edges

    from .official import get_edges

    g = torch.Generator().manual_seed(0)
    inst = torch.randint(0, 3, (2, 9, 13), generator=g) * 1000
    ours = instance_edges(inst)
    assert torch.equal(ours, get_edges(inst[:, None]))
    assert torch.equal(ours, synth.nn.ops.instance_edges(inst))


@pytest.mark.parametrize("use_instances", [True, False])
def test_discriminator_gather_equals_dense(use_instances):
    """Scale 0's first conv gathers the one-hot part: outputs and weight/bias/image gradients
    equal the dense conv of the official ``cat(one_hot, edges, image)`` input; scale 1 stays the
    dense conv of the pooled input."""
    from synth_pix2pixhd.discriminators import discriminator_input, discriminator_parts

    torch.manual_seed(0)
    k = 5
    d = MultiscaleDiscriminator(
        num_classes=k, ndf=4, n_layers=2, num_d=2, use_instances=use_instances
    ).double()
    cond = _cond(h=19, w=26, k=k)  # resized nearest to the image size; odd sizes
    image = torch.randn(2, 3, 38, 51, dtype=torch.float64, requires_grad=True)
    net = d.scales[0]
    conv = net.layers[0].conv

    def grads(outs):
        loss = sum((o * torch.linspace(-1, 1, o.numel()).view_as(o)).sum() for o in outs)
        return torch.autograd.grad(loss, [conv.weight, conv.bias, image])

    dense_in = discriminator_input(image, cond, k, use_instances)
    assert dense_in.shape[1] == k + int(use_instances) + 3
    labels, rest = discriminator_parts(image, cond, k, use_instances)
    assert labels.shape == (2, 38, 51) and rest.shape[1] == int(use_instances) + 3
    torch.testing.assert_close(dense_in[:, k:], rest, rtol=0, atol=0)
    # the first layer alone (fp64 throughout): equal to rounding
    first_dense, first_gather = net.layers[0](dense_in), net.layers[0](rest, labels)
    torch.testing.assert_close(first_gather, first_dense)
    for a, b in zip(grads([first_gather]), grads([first_dense]), strict=True):
        torch.testing.assert_close(a, b)
    # the whole scale (its instance norms keep fp32 statistics, hence the tolerances)
    dense, gather = net(dense_in), net(rest, labels)
    torch.testing.assert_close(gather[0], dense[0], rtol=1e-5, atol=1e-5)
    for f, g in zip(gather[1], dense[1], strict=True):
        torch.testing.assert_close(f, g, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads([gather[0], *gather[1]]), grads([dense[0], *dense[1]]), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
    out = d(image, cond)
    torch.testing.assert_close(out.logits[0], dense[0], rtol=1e-5, atol=1e-5)
    pooled = F.avg_pool2d(dense_in, 3, stride=2, padding=1, count_include_pad=False)
    torch.testing.assert_close(out.logits[1], d.scales[1](pooled)[0], rtol=1e-5, atol=1e-5)
