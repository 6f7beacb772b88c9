"""nested_scale.pyramid_decoder's ``norm`` slot: unset, the decoder is unchanged (state dict
keys and outputs); set to core.adain it is the same AdaIN with the affine A_k moved into the
block (one block per conv, reading the scale's mapped code MLP(styles[k]) as its style)."""

from __future__ import annotations

import torch

import synth
import synth.testing
from synth import Condition, Latents
from synth_nested_scale.generators import PyramidDecoder

P = dict(
    resolution=16,
    num_scales=3,
    channels=6,
    encoder_channels=[6, 6, 6, 6],
    style_dim=4,
    mapping_layers=2,
)


def _inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    image = torch.tanh(torch.randn(2, 3, 16, 16, generator=g))
    styles = [torch.randn(2, 4, generator=g) for _ in range(3)]
    return Condition(image=image, size=(16, 16)), Latents(styles=styles)


def test_default_state_dict_and_outputs_unchanged(nested_registry):
    torch.manual_seed(0)
    plain = PyramidDecoder(**P).eval()
    keys = set(plain.state_dict())
    assert any(k.startswith("affines.") for k in keys)
    assert not any(".norms." in k for k in keys)
    torch.manual_seed(0)
    again = PyramidDecoder(**P, norm=None).eval()
    assert set(again.state_dict()) == keys
    cond, lat = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(plain(cond, lat).image, again(cond, lat).image)


def test_core_adain_in_the_slot_is_the_built_in_adain(nested_registry):
    """Slot blocks with A_k's rows copied in: the same pyramid, bit for bit up to rounding."""
    torch.manual_seed(0)
    plain = PyramidDecoder(**P).eval()
    slotted = synth.build(
        {"type": "nested_scale.pyramid_decoder", **P, "norm": {"type": "core.adain"}}
    ).eval()
    assert not hasattr(slotted, "affines")
    state = {k: v for k, v in plain.state_dict().items() if not k.startswith("affines.")}
    c = P["channels"]
    for k, affine in enumerate(plain.affines):
        # A_k's output is (conv, γ/β, channel)-major: "b (n two c)"; core.adain's "(two c)"
        w = affine.weight.view(2, 2 * c, c)
        b = affine.bias.view(2, 2 * c)
        for j in range(2):
            state[f"stages.{k}.norms.{j}.affine.weight"] = w[j]
            state[f"stages.{k}.norms.{j}.affine.bias"] = b[j]
    slotted.load_state_dict(state)
    cond, lat = _inputs(1)
    with torch.no_grad():
        a, b = plain(cond, lat), slotted(cond, lat)
    for x, y in zip(a.pyramid, b.pyramid):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-5)
    # the slot's scale codes are the mapped styles MLP(styles[k]): [B, channels]
    assert b.extras["scale_code/0"].shape == (2, c)


def test_slot_conformance(nested_registry):
    synth.testing.check_part(
        "nested_scale.pyramid_decoder", size=16, **P, norm={"type": "core.adain"}
    )
