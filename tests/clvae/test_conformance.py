"""Every registered clvae part passes synth.testing.check_part (tiny configs)."""

from __future__ import annotations

import pytest

import synth.testing

CASES = {
    "clvae.spade": dict(channels=8, num_classes=5, hidden=16),
    "clvae.spade[instance]": dict(channels=8, num_classes=5, hidden=16, param_free_norm="instance"),
    "clvae.spade[use_instances]": dict(channels=8, num_classes=5, hidden=16, use_instances=True),
    "clvae.cse": dict(channels=8, num_classes=5, hidden=16, code_dim=3),
    "clvae.spade_generator": dict(
        num_classes=5, ngf=4, size=64, norm={"type": "clvae.spade", "hidden": 8}
    ),
    "clvae.clvae_generator": dict(
        num_classes=5,
        ngf=4,
        z_dim=8,
        code_dim=3,
        crop_size=64,
        size=64,
        norm={"type": "clvae.spade", "hidden": 8},
        cse={"type": "clvae.cse", "hidden": 8},
    ),
    "clvae.multiscale_discriminator": dict(num_classes=5, ndf=4, size=64),
    "clvae.multiscale_discriminator[use_instances]": dict(
        num_classes=5, ndf=4, n_layers=2, num_d=1, size=64, use_instances=True
    ),
    "clvae.conv_encoder": dict(z_dim=8, ndf=4, input_size=64, num_layers=5, size=64),
    "clvae.class_layer_encoder": dict(
        z_dim=8, ndf=4, input_size=64, num_layers=5, code_dim=3, num_classes=5, size=64
    ),
    "clvae.kl": {},
    "clvae.prior": {},
    "clvae.style_guided": {},
    "clvae.object_edit": dict(copy_back=True),
    "clvae.material_edit": {},
}


def test_every_registered_part_is_checked(clvae_registry):
    names = set(clvae_registry.list(pattern="clvae.*"))
    assert names == {c.split("[")[0] for c in CASES}


@pytest.mark.parametrize("case", list(CASES))
def test_check_part(clvae_registry, case):
    synth.testing.check_part(case.split("[")[0], **CASES[case])
