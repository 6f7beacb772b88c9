"""SPADE's discriminator as a configuration of core's PatchGAN family: every ``norm_D`` keeps
the official module layout (``get_nonspade_norm_layer``), converts from it and computes what it
computes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

import synth
from synth.parts.discriminators import PatchGAN
from synth_clvae import MultiscaleDiscriminator, from_official_spade, to_official_spade

from .official import one_hot

K, S = 4, 32


def _official_norm_layer(conv: nn.Conv2d, norm_d: str) -> nn.Module:
    """SPADE's ``get_nonspade_norm_layer(opt, norm_D)(conv)``, written out."""
    sub = norm_d[len("spectral") :] if norm_d.startswith("spectral") else norm_d
    if norm_d.startswith("spectral"):
        conv = spectral_norm(conv)
    if sub in ("none", ""):
        return conv
    del conv.bias
    conv.register_parameter("bias", None)
    return nn.Sequential(conv, nn.InstanceNorm2d(conv.out_channels, affine=False))


class _OfficialD(nn.Module):
    """SPADE's ``MultiscaleDiscriminator`` of ``NLayerDiscriminator``s (getIntermFeat)."""

    def __init__(self, input_nc: int, ndf: int, n_layers: int, num_d: int, norm_d: str):
        super().__init__()
        for i in range(num_d):
            nf, seq = ndf, [[nn.Conv2d(input_nc, ndf, 4, 2, 2), nn.LeakyReLU(0.2)]]
            for n in range(1, n_layers):
                prev, nf = nf, min(nf * 2, 512)
                conv = nn.Conv2d(prev, nf, 4, 1 if n == n_layers - 1 else 2, 2)
                seq.append([_official_norm_layer(conv, norm_d), nn.LeakyReLU(0.2)])
            seq.append([nn.Conv2d(nf, 1, 4, 1, 2)])
            net = nn.Module()
            for n, layers in enumerate(seq):
                net.add_module(f"model{n}", nn.Sequential(*layers))
            self.add_module(f"discriminator_{i}", net)
        self.num_d, self.depth = num_d, n_layers + 1

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for i in range(self.num_d):
            net, res = getattr(self, f"discriminator_{i}"), [x]
            for n in range(self.depth):
                res.append(getattr(net, f"model{n}")(res[-1]))
            out.append(res[1:])
            x = F.avg_pool2d(x, 3, stride=2, padding=[1, 1], count_include_pad=False)
        return out


@pytest.mark.parametrize("norm_d", ["spectralinstance", "instance", "spectral", "none"])
def test_every_norm_d_is_the_official_layout(clvae_registry, norm_d):
    torch.manual_seed(0)
    off = _OfficialD(K + 3, 4, 3, 2, norm_d).eval()
    sd = off.state_dict()
    ours = from_official_spade(sd, "D", num_classes=K)
    assert ours.config.norm == norm_d and ours.config.n_layers == 3
    assert ours.conversion_report.unmapped == [] and ours.conversion_report.missing == []
    back = to_official_spade(ours)
    assert sorted(back) == sorted(sd)
    assert all(torch.equal(back[k], sd[k]) for k in sd)
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, K, (2, S, S), generator=g)
    image = torch.rand(2, 3, S, S, generator=g) * 2 - 1
    with torch.no_grad():
        want = off(torch.cat([one_hot(labels, K), image], 1))
        got = ours(image, synth.Condition(label_map=labels, num_classes=K))
    for s in range(2):  # fp32 rounding; without a norm, activations are not rescaled
        torch.testing.assert_close(got.logits[s], want[s][-1], rtol=1e-4, atol=1e-4)
        for f, w in zip(got.features[s], want[s][:-1], strict=True):
            torch.testing.assert_close(f, w, rtol=1e-4, atol=1e-4)


def test_scales_are_core_patchgans_with_spade_names():
    d = MultiscaleDiscriminator(num_classes=K, ndf=4, n_layers=2, num_d=1)
    net = d.discriminators[0]
    assert isinstance(net, PatchGAN)
    assert sorted(name for name, _ in net.named_children()) == ["model0", "model1", "model2"]
    assert d.requirements(d.config) == {"label_map"}
    unlabelled = MultiscaleDiscriminator(num_classes=K, ndf=4, use_label=False)
    assert unlabelled.in_channels == 3 and unlabelled.requirements(unlabelled.config) == set()
    with pytest.raises(ValueError, match="use_label: false"):
        d(
            torch.randn(1, 3, 16, 16),
            synth.Condition(class_id=torch.tensor([0]), num_classes=K, size=(16, 16)),
        )
