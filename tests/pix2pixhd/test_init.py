"""``init: normal`` is the official ``weights_init`` (pix2pixHD ``models/networks.py``), and the
recipes use it with the discriminator step reusing the generator step's fake."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import synth
from synth_pix2pixhd import GlobalGenerator, InstanceEncoder, LocalEnhancer, MultiscaleDiscriminator


def _official_weights_init(m: nn.Module) -> None:
    """pix2pixHD's ``weights_init``, transcribed (class-name matching as there)."""
    classname = m.__class__.__name__
    if classname.find("Conv") != -1 and hasattr(m, "weight"):
        m.weight.data.normal_(0.0, 0.02)
    elif classname.find("BatchNorm2d") != -1:
        m.weight.data.normal_(1.0, 0.02)
        m.bias.data.fill_(0)


PARTS = [
    (GlobalGenerator, {"num_classes": 4, "ngf": 4, "n_downsampling": 2, "n_blocks": 1}),
    (
        LocalEnhancer,
        {
            "num_classes": 4,
            "ngf": 2,
            "n_downsample_global": 1,
            "n_blocks_global": 1,
            "n_local_enhancers": 2,
            "n_blocks_local": 1,
            "use_instances": True,
        },
    ),
    (MultiscaleDiscriminator, {"num_classes": 4, "ndf": 4, "n_layers": 2, "num_d": 2}),
    (InstanceEncoder, {"nef": 4, "n_downsampling": 2}),
]


@pytest.mark.parametrize(("cls", "cfg"), PARTS, ids=[c.__name__ for c, _ in PARTS])
def test_normal_init_is_the_official_weights_init_draw_for_draw(reg, cls, cfg):
    torch.manual_seed(0)
    ours = cls(**cfg, init="normal")
    torch.manual_seed(0)
    ref = cls(**cfg)  # torch's default initialisation, the same construction draws
    ref.apply(_official_weights_init)
    a, b = ours.state_dict(), ref.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_normal_init_statistics_and_biases_left_alone(reg):
    """N(0, 0.02) conv weights; conv biases keep torch's init (weights_init leaves them)."""
    torch.manual_seed(0)
    g = GlobalGenerator(num_classes=8, ngf=32, n_downsampling=2, n_blocks=2, init="normal")
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, nn.Conv2d)])
    assert w.std().item() == pytest.approx(0.02, rel=0.02) and abs(w.mean().item()) < 1e-3
    assert torch.count_nonzero(g.stages[1].conv.bias) > 0


@pytest.mark.parametrize(
    "name", ["pix2pixhd.cityscapes_512", "pix2pixhd.cityscapes_1024", "pix2pixhd.ade20k"]
)
def test_recipes_use_the_official_init_and_reuse_the_fake(reg, name):
    spec = synth.recipes()[name].spec
    assert spec["generator"]["init"] == spec["discriminator"]["init"] == "normal"
    assert spec["objective"] == {"type": "core.gan", "d_fake": "reuse"}
    assert "N(0, 0.02)" in synth.recipes()[name].description
