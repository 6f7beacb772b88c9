"""The PatchGAN family (synth.parts.discriminators): its configuration paths against independent
computations — the multi-scale D is single-scale Ds on the pooled pyramid, the gathered first
conv is the dense conv of the official input, and every geometry option builds what it says."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize

import synth
import synth.testing
from synth.nn import ops
from synth.nn.layers import LabelConv2d
from synth.parts.discriminators import (
    PatchDiscriminator,
    PatchGAN,
    PatchLayout,
    discriminator_input,
    discriminator_parts,
)

K = 4


def _cond(b: int = 2, size: tuple[int, int] = (16, 16), instances: bool = False):
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, K, (b, *size), generator=g)
    inst = torch.randint(0, 3, (b, *size), generator=g) if instances else None
    return synth.Condition(label_map=labels, instance_map=inst, num_classes=K)


def _pool(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)


def test_multiscale_equals_single_scale_discriminators_on_the_pooled_image():
    """Unconditional: scale s of a num_scales=2 D is a single-scale D (same weights) on the
    image average-pooled s times."""
    torch.manual_seed(0)
    multi = PatchDiscriminator(ndf=4, n_layers=2, num_scales=2, conditional=False)
    singles = [PatchDiscriminator(ndf=4, n_layers=2, conditional=False) for _ in range(2)]
    for s, single in enumerate(singles):
        single.scales[0].load_state_dict(multi.scales[s].state_dict())
    image, cond = torch.randn(2, 3, 20, 18), _cond()
    out = multi(image, cond)
    for s, x in enumerate([image, _pool(image)]):
        want = singles[s](x, cond)
        torch.testing.assert_close(out.logits[s], want.logits[0])
        for a, b in zip(out.features[s], want.features[0], strict=True):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("instances", [False, True])
def test_conditional_scales_read_the_official_input(instances):
    """Scale 0 gathers the one-hot part of cat(one_hot, edges, image) and equals the dense conv
    of it; scale 1 sees that input pooled (the pooled one-hot map is fractional)."""
    torch.manual_seed(0)
    disc = PatchDiscriminator(
        num_classes=K, ndf=4, n_layers=2, num_scales=2, use_instances=instances
    ).double()
    assert disc.in_channels == K + int(instances) + 3
    assert isinstance(disc.scales[0].layers[0].conv, LabelConv2d)
    cond = _cond(size=(10, 13), instances=instances)  # resized nearest to the image size
    image = torch.randn(2, 3, 20, 26, dtype=torch.float64)
    dense = discriminator_input(image, cond, K, instances)
    labels, rest = discriminator_parts(image, cond, K, instances)
    onehot = ops.one_hot(ops.resize_labels(cond.label_map, (20, 26)), K, dtype=torch.float64)
    assert torch.equal(dense[:, :K], onehot) and torch.equal(dense[:, K:], rest)
    if instances:
        edges = ops.resize_labels(ops.instance_edges(cond.instance_map), (20, 26))
        assert torch.equal(rest[:, :1], edges.double())
    out = disc(image, cond)
    torch.testing.assert_close(out.logits[0], disc.scales[0](dense)[0])
    torch.testing.assert_close(out.logits[1], disc.scales[1](_pool(dense))[0])
    want = disc.scales[0](rest, labels)
    for a, b in zip(out.features[0], want[1], strict=True):
        torch.testing.assert_close(a, b)


def test_layout_options_build_what_they_say():
    layout = PatchLayout(
        in_channels=K + 3,
        num_classes=K,
        ndf=8,
        depth=3,
        kernel_size=3,
        padding=0,
        max_width=12,
        norm="none",
        spectral_norm="middle",
    )
    net = PatchGAN(layout)
    convs = [layer.conv for layer in net.layers] + [net.logits]
    assert [c.out_channels for c in convs] == [8, 12, 12, 1]
    assert [c.stride[0] for c in convs] == [2, 2, 1, 1]
    assert all(c.kernel_size == (3, 3) and c.padding == (0, 0) for c in convs)
    assert [parametrize.is_parametrized(c) for c in convs] == [False, True, True, False]
    assert all(c.bias is not None for c in convs)
    assert all("norm" not in dict(layer.named_children()) for layer in net.layers)
    logits, feats = net(torch.randn(1, K + 3, 32, 32))
    assert len(feats) == 3 and logits.shape[1] == 1
    # instance norm after every conv but the first; norm_bias=False drops their biases
    spade = PatchGAN(PatchLayout(in_channels=3, ndf=4, depth=2, norm_bias=False))
    assert spade.layers[0].conv.bias is not None and spade.layers[1].conv.bias is None
    assert "norm" in dict(spade.layers[1].named_children())
    assert "norm" not in dict(spade.layers[0].named_children())


def test_config_geometry_and_spectral_norm_on_every_conv():
    disc = PatchDiscriminator(
        num_classes=K, ndf=4, n_layers=1, kernel_size=3, max_width=6, spectral_norm=True
    )
    net = disc.scales[0]
    convs = [layer.conv for layer in net.layers] + [net.logits]
    assert [c.out_channels for c in convs] == [4, 6, 1]
    assert all(parametrize.is_parametrized(c) for c in convs)
    assert convs[0].padding == (1, 1)  # ceil((3 - 1) / 2)
    out = disc(torch.randn(2, 3, 16, 16), _cond())
    assert out.logits[0].shape == (2, 1, 8, 8)


def test_requirements_and_input_errors():
    assert PatchDiscriminator.requirements(
        PatchDiscriminator.Config(num_classes=K, use_instances=True)
    ) == {"label_map", "instance_map"}
    assert (
        PatchDiscriminator.requirements(
            PatchDiscriminator.Config(num_classes=K, conditional=False, use_instances=True)
        )
        == frozenset()
    )
    disc = PatchDiscriminator(num_classes=K, ndf=4, use_instances=True)
    with pytest.raises(ValueError, match="instance_map"):
        disc(torch.randn(2, 3, 16, 16), _cond())
    other = synth.Condition(label_map=torch.zeros(2, 16, 16, dtype=torch.long), num_classes=K + 1)
    with pytest.raises(ValueError, match=f"num_classes={K + 1}"):
        PatchDiscriminator(num_classes=K, ndf=4)(torch.randn(2, 3, 16, 16), other)


def test_conditional_with_instances_compiles_fullgraph():
    torch.manual_seed(0)
    disc = PatchDiscriminator(num_classes=K, ndf=4, n_layers=2, num_scales=2, use_instances=True)
    image, cond = torch.randn(2, 3, 16, 16), _cond(instances=True)
    compiled = torch.compile(disc, fullgraph=True, backend="eager")
    for a, b in zip(compiled(image, cond).logits, disc(image, cond).logits, strict=True):
        torch.testing.assert_close(a, b)


def test_new_configuration_paths_pass_the_conformance_kit():
    """Instance edges, SPADE-style spectral norm, no norm and another kernel: check_part."""
    report = synth.testing.check_part(
        "core.patch_discriminator",
        num_classes=K,
        ndf=4,
        n_layers=2,
        num_scales=2,
        use_instances=True,
        spectral_norm="middle",
        norm="none",
        kernel_size=3,
    )
    assert report.passed, str(report)


def test_the_patch_discriminator_can_condition_on_the_input_image_and_mask():
    """D(x | c) for image-conditioned tasks (nested-scale eq. 4): the occluded / low-resolution
    input and its mask, resized to the scored image, come before it in the input channels."""
    torch.manual_seed(0)
    d = synth.build(
        "core.patch_discriminator", conditional=False, use_image=True, use_mask=True, ndf=8
    )
    assert d.in_channels == 3 + 1 + 3
    assert d.requirements(d.config) == {"image", "mask"}
    image = torch.rand(2, 3, 32, 32) * 2 - 1
    lr = torch.rand(2, 3, 8, 8) * 2 - 1
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    cond = synth.Condition(image=lr, mask=mask, size=(32, 32))
    out = d(image, cond).logits[0]
    up = F.interpolate(lr, size=(32, 32), mode="bilinear", antialias=True)
    net = d.scales[0]
    torch.testing.assert_close(out, net(torch.cat([up, mask, image], 1))[0])
    other = synth.Condition(image=-lr, mask=cond.mask, size=(32, 32))
    assert not torch.allclose(out, d(image, other).logits[0])
    with pytest.raises(ValueError, match="use_mask: true and reads Condition.mask"):
        d(image, synth.Condition(image=lr, size=(32, 32)))
