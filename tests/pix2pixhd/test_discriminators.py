"""pix2pixHD's discriminators as configurations of core's PatchGAN family."""

from __future__ import annotations

import torch

import synth
from synth.parts.discriminators import PatchDiscriminator as CorePatchDiscriminator
from synth.parts.discriminators import PatchGAN
from synth_pix2pixhd import MultiscaleDiscriminator, PatchDiscriminator

K = 4


def _cond(size: int = 24) -> synth.Condition:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, K, (2, size, size), generator=g)
    inst = torch.randint(0, 3, (2, size, size), generator=g)
    return synth.Condition(label_map=labels, instance_map=inst, num_classes=K)


def test_multiscale_discriminator_is_core_with_the_official_defaults():
    """Same state-dict keys as core.patch_discriminator with the same options; same outputs
    from the same weights."""
    torch.manual_seed(0)
    theirs = MultiscaleDiscriminator(num_classes=K, ndf=4, n_layers=2, num_d=2, use_instances=True)
    ours = CorePatchDiscriminator(
        num_classes=K, ndf=4, n_layers=2, num_scales=2, use_instances=True
    )
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    ours.load_state_dict(theirs.state_dict())
    image, cond = torch.randn(2, 3, 24, 24), _cond()
    a, b = ours(image, cond), theirs(image, cond)
    for x, y in zip([*a.logits, *a.features[1]], [*b.logits, *b.features[1]], strict=True):
        torch.testing.assert_close(x, y)
    assert all(isinstance(net, PatchGAN) for net in theirs.scales)


def test_single_scale_has_one_scale_and_every_conv_keeps_its_bias():
    d = PatchDiscriminator(num_classes=K, ndf=4, n_layers=2)
    assert d.num_d == d.num_scales == 1 and len(d.scales) == 1
    convs = [layer.conv for layer in d.scales[0].layers] + [d.scales[0].logits]
    assert all(c.bias is not None and c.kernel_size == (4, 4) for c in convs)
    assert [c.stride[0] for c in convs] == [2, 2, 1, 1]
