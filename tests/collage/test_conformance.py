"""Every collage part registered by this module's owner passes synth.testing.check_part."""

from __future__ import annotations

import pytest

import synth.testing

CASES = {
    "collage.scbn": dict(channels=8, num_classes=5),
    "collage.scbn[any]": dict(channels=8, num_classes=5, condition="any"),
    "collage.spatial_adain": dict(channels=8, num_classes=5, stage=1, style_dim=4),
    "collage.resnet_generator": dict(num_classes=5, resolution=32, ch=4, z_dim=8, size=32),
    "collage.resnet_generator[class_weights]": dict(
        num_classes=5,
        resolution=32,
        ch=4,
        z_dim=8,
        size=32,
        norm={"type": "collage.scbn", "condition": "class_weights"},
    ),
    "collage.projection_discriminator": dict(num_classes=5, resolution=32, ch=4, size=32),
    "collage.projection_discriminator[unconditional]": dict(resolution=32, ch=4, size=32),
    "collage.projection_discriminator[hidden_in]": dict(
        num_classes=5, resolution=32, ch=4, size=32, hidden="in"
    ),
    "collage.feature_blend": {},
    "collage.label_collage": dict(size=32),
}

#: Parts of the real-photo modules (encoder, projection, auxiliary, blending) are checked in
#: their own tests.
OWN = {c.split("[")[0] for c in CASES}


def test_every_part_here_is_registered(collage_registry):
    assert set(collage_registry.list(pattern="collage.*")) >= OWN


@pytest.mark.parametrize("case", list(CASES))
def test_check_part(collage_registry, case):
    synth.testing.check_part(case.split("[")[0], **CASES[case])
