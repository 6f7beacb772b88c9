"""Converters from the official layouts: outputs equal the official modules' (re-implemented
independently in ``official.py``, with loops and dense convs), and round trips are exact."""

from __future__ import annotations

import pytest
import torch

import synth
from synth_clvae import (
    from_official_clvae,
    from_official_spade,
    to_official_clvae,
    to_official_spade,
)

from .official import (
    OfficialEncoder,
    OfficialGenerator,
    OfficialMultiscaleD,
    one_hot,
    randomize_buffers,
    semantics,
)

K, NGF, HID, S = 5, 4, 8, 64


def _labels(b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return synth.nn.ops.resize_labels(torch.randint(0, K, (b, 8, 8), generator=g), (S, S))


def _same_state(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("z_dim", [0, 8])
def test_spade_generator_equals_official(clvae_registry, z_dim):
    torch.manual_seed(0)
    off = OfficialGenerator(K, NGF, z_dim=z_dim, crop=S, hidden=HID).eval()
    randomize_buffers(off)
    sd = off.state_dict()
    ours = from_official_spade(sd, "G", crop_size=S if z_dim else None, upsampling="normal")
    assert ours.conversion_report.unmapped == [] and ours.conversion_report.missing == []
    labels = _labels()
    z = torch.randn(2, z_dim) if z_dim else None
    with torch.no_grad():
        want = off(one_hot(labels, K), z)
        got = ours(synth.Condition(label_map=labels, num_classes=K), synth.Latents(z=z)).image
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    _same_state(to_official_spade(ours), sd)


@pytest.mark.parametrize("mode", ["normal", "more"])
def test_clvae_generator_equals_official_loops(clvae_registry, mode):
    """With "more" (DeepFashion, GTA-5) the CSE maps are coarser than the features."""
    torch.manual_seed(1)
    d, size = 3, (S if mode == "normal" else 2 * S)
    off = OfficialGenerator(K, 2, mode=mode, z_dim=8, crop=size, hidden=HID, code_dim=d).eval()
    randomize_buffers(off)
    sd = off.state_dict()
    ours = from_official_clvae(sd, "G", crop_size=size)
    assert ours.config.upsampling == mode
    assert ours.conversion_report.unmapped == [] and ours.conversion_report.missing == []
    g = torch.Generator().manual_seed(1)
    labels = synth.nn.ops.resize_labels(torch.randint(0, K, (2, 8, 8), generator=g), (size, size))
    z, codes = torch.randn(2, 8), torch.randn(2, 5, K, d)
    with torch.no_grad():
        want = off(one_hot(labels, K), z, codes)
        lat = synth.Latents(z=z, class_codes=[codes[:, i] for i in (4, 3, 3, 2, 1, 0)])
        got = ours(synth.Condition(label_map=labels, num_classes=K), lat).image
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    _same_state(to_official_clvae(ours), sd)


def test_discriminator_equals_official(clvae_registry):
    torch.manual_seed(2)
    off = OfficialMultiscaleD(K + 3, 4, 4, 2).eval()
    sd = off.state_dict()
    ours = from_official_spade(sd, "D")
    assert ours.config.num_d == 2 and ours.config.n_layers == 4 and ours.config.num_classes == K
    labels, image = _labels(seed=2), torch.rand(2, 3, S, S) * 2 - 1
    with torch.no_grad():
        want = off(torch.cat([one_hot(labels, K), image], 1))
        got = ours(image, synth.Condition(label_map=labels, num_classes=K))
    for s in range(2):
        torch.testing.assert_close(got.logits[s], want[s][-1], rtol=1e-4, atol=1e-5)
        for f, w in zip(got.features[s], want[s][:-1]):
            torch.testing.assert_close(f, w, rtol=1e-4, atol=1e-5)
    _same_state(to_official_spade(ours), sd)


def _instances(b=2, seed=0):
    """Instance ids in 4x4 blocks (some blocks share ids across class borders)."""
    g = torch.Generator().manual_seed(seed + 100)
    return synth.nn.ops.resize_labels(torch.randint(0, 6, (b, 16, 16), generator=g), (S, S))


@pytest.mark.parametrize("z_dim", [0, 8])
def test_spade_generator_with_instances_equals_official(clvae_registry, z_dim):
    """no_instance=False: fc (label input) and every SPADE read cat(one_hot, edges)."""
    torch.manual_seed(5)
    off = OfficialGenerator(K, NGF, z_dim=z_dim, crop=S, hidden=HID, instance=True).eval()
    randomize_buffers(off)
    sd = off.state_dict()
    ours = from_official_spade(
        sd, "G", crop_size=S if z_dim else None, upsampling="normal", num_classes=K
    )
    assert ours.config.use_instances and ours.config.num_classes == K
    assert ours.stages[0].norm_0.config.use_instances
    assert ours.conversion_report.unmapped == [] and ours.conversion_report.missing == []
    labels, inst = _labels(seed=5), _instances(seed=5)
    z = torch.randn(2, z_dim) if z_dim else None
    cond = synth.Condition(label_map=labels, instance_map=inst, num_classes=K)
    with torch.no_grad():
        want = off(semantics(labels, K, inst), z)
        got = ours(cond, synth.Latents(z=z)).image
        # the edges matter: without them (all one instance) the output changes
        flat = synth.Condition(label_map=labels, instance_map=torch.zeros_like(inst), num_classes=K)
        assert not torch.allclose(ours(flat, synth.Latents(z=z)).image, got)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    _same_state(to_official_spade(ours), sd)
    same = from_official_spade(sd, "G", upsampling="normal", use_instances=True)
    assert same.config.num_classes == K and same.config.use_instances


def test_discriminator_with_instances_equals_official(clvae_registry):
    torch.manual_seed(6)
    off = OfficialMultiscaleD(K + 1 + 3, 4, 3, 2).eval()
    sd = off.state_dict()
    ours = from_official_spade(sd, "D", num_classes=K)
    assert ours.config.use_instances and ours.config.num_classes == K
    labels, inst = _labels(seed=6), _instances(seed=6)
    image = torch.rand(2, 3, S, S) * 2 - 1
    with torch.no_grad():
        want = off(torch.cat([semantics(labels, K, inst), image], 1))
        got = ours(image, synth.Condition(label_map=labels, instance_map=inst, num_classes=K))
    for s in range(2):
        torch.testing.assert_close(got.logits[s], want[s][-1], rtol=1e-4, atol=1e-5)
    _same_state(to_official_spade(ours), sd)


def test_instance_channel_inference(clvae_registry):
    """Shapes cannot tell an edge channel from one more class: num_classes / use_instances."""
    sd = OfficialGenerator(K, NGF, crop=S, hidden=HID, instance=True).state_dict()
    up = {"upsampling": "normal"}
    plain = from_official_spade(sd, "G", **up)  # default: every channel a class
    assert plain.config.num_classes == K + 1 and not plain.config.use_instances
    assert from_official_spade(sd, "G", num_classes=K + 1, **up).config.use_instances is False
    with pytest.raises(ValueError, match="num_classes=3"):
        from_official_spade(sd, "G", num_classes=3, **up)
    with pytest.raises(ValueError, match="use_instances"):
        from_official_spade(sd, "G", num_classes=K + 1, use_instances=True, **up)
    d = OfficialMultiscaleD(K + 1 + 3, 4, 2, 1).state_dict()
    assert from_official_spade(d, "D", use_instances=True).config.num_classes == K


def test_conv_encoder_equals_official(clvae_registry):
    torch.manual_seed(3)
    off = OfficialEncoder(4, 5, 2, 8, None).eval()
    sd = off.state_dict()
    ours = from_official_spade(sd, "E")
    assert ours.config.input_size == 64 and ours.config.num_layers == 5
    image = torch.rand(2, 3, 48, 48) * 2 - 1  # resized to 64 inside, as the official
    with torch.no_grad():
        mu, logvar = off(image)
        lat = ours.posterior(image, synth.Condition(label_map=_labels(), num_classes=K))
    torch.testing.assert_close(lat.extras["clvae.mu"], mu, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(lat.extras["clvae.logvar"], logvar, rtol=1e-4, atol=1e-5)
    _same_state(to_official_spade(ours), sd)


def test_class_layer_encoder_equals_official_loops(clvae_registry):
    """eqs. 13–17 with RoI max-pooling looped over classes and samples (official)."""
    torch.manual_seed(4)
    off = OfficialEncoder(4, 5, 2, 8, code_dim=3).eval()
    sd = off.state_dict()
    ours = from_official_clvae(sd, "E")
    labels, image = _labels(seed=4), torch.rand(2, 3, S, S) * 2 - 1
    with torch.no_grad():
        mu, logvar, cmu, clv, present = off(image, labels, K)
        p = ours.encode(image, synth.Condition(label_map=labels, num_classes=K))
    torch.testing.assert_close(p["mu"], mu, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(p["logvar"], logvar, rtol=1e-4, atol=1e-5)
    assert torch.equal(p["present"], present)
    torch.testing.assert_close(p["class_mu"], cmu, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(p["class_logvar"], clv, rtol=1e-4, atol=1e-5)
    _same_state(to_official_clvae(ours), sd)


def test_unmapped_keys_are_reported(clvae_registry):
    off = OfficialGenerator(K, NGF, crop=S, hidden=HID)
    sd = {**off.state_dict(), "extra.thing": torch.zeros(1)}
    with pytest.warns(UserWarning, match="extra.thing"):
        ours = from_official_spade(sd, "G", upsampling="normal")
    assert ours.conversion_report.unmapped == ["extra.thing"]
    with pytest.raises(ValueError, match="from_official_spade"):
        from_official_clvae(off.state_dict(), "G")


def test_reads_checkpoint_files(clvae_registry, tmp_path):
    off = OfficialEncoder(4, 5, 2, 8, None)
    path = tmp_path / "latest_net_E.pth"
    torch.save(off.state_dict(), path)
    ours = from_official_spade(path, "E")
    _same_state(to_official_spade(ours), off.state_dict())


def test_deepfashion_recipe_encoder_has_the_official_checkpoints_shapes(clvae_registry):
    """Official ``ConvEncoder``: ``ndf = opt.ngf`` (160 for DeepFashion), six layers at
    crop 256 (s0 = 4), z 256, class heads of ``z_dim_local`` = 16: the official encoder
    checkpoint fits the recipe's encoder key for key, shape for shape."""
    spec = synth.recipes()["clvae.deepfashion"].spec
    with torch.device("meta"):  # shapes only: the ngf-160 generator is large
        model = synth.compose({"generator": spec["generator"], "injector": spec["injector"]})
        off = OfficialEncoder(160, 6, 4, 256, code_dim=16)
    ours = {k: tuple(v.shape) for k, v in to_official_clvae(model.injector).items()}
    assert ours == {k: tuple(v.shape) for k, v in off.state_dict().items()}


@pytest.mark.parametrize("mode", ["normal", "more"])
def test_label_input_generator_needs_upsampling_and_matches_official(clvae_registry, mode):
    """A label-input generator's shapes are the same for "normal" and "more" (SPADE's
    Cityscapes models use "more"): the converter requires the option instead of choosing."""
    torch.manual_seed(7)
    size = S if mode == "normal" else 2 * S
    off = OfficialGenerator(K, NGF, mode=mode, crop=size, hidden=HID).eval()
    randomize_buffers(off)
    sd = off.state_dict()
    with pytest.raises(ValueError, match="cannot tell upsampling 'normal' from 'more'"):
        from_official_spade(sd, "G")
    ours = from_official_spade(sd, "G", upsampling=mode)
    labels = synth.nn.ops.resize_labels(_labels(seed=7), (size, size))
    pre: dict[str, torch.Tensor] = {}
    off.conv_img.register_forward_hook(lambda m, i, o: pre.__setitem__("x", o))
    with torch.no_grad():
        want = off(one_hot(labels, K))
        got = ours(synth.Condition(label_map=labels, num_classes=K)).image
    # random buffers let activations grow to ~1e15 before tanh: where a pre-tanh value is ~0
    # relative to that scale, float rounding (summation order) decides its sign; compare the rest
    stable = pre["x"].abs() > 1e-5 * pre["x"].abs().max()
    assert stable.float().mean() > 0.99
    torch.testing.assert_close(got[stable], want[stable], rtol=1e-4, atol=1e-5)


def test_vae_generator_mode_comes_from_upsampling_or_crop_size(clvae_registry):
    """fc holds sh·sw positions: "normal" at crop c and "more" at 2c look alike."""
    sd = OfficialGenerator(K, 2, mode="more", z_dim=8, crop=2 * S, hidden=HID).state_dict()
    with pytest.raises(ValueError, match="pass upsampling, or crop_size"):
        from_official_spade(sd, "G")
    assert from_official_spade(sd, "G", crop_size=2 * S).config.upsampling == "more"
    assert from_official_spade(sd, "G", upsampling="more").config.crop_size == 2 * S
    with pytest.raises(ValueError, match="crop_size=100"):
        from_official_spade(sd, "G", crop_size=100)
    with pytest.raises(ValueError, match="up_4"):
        from_official_spade(sd, "G", upsampling="most")


def test_spade_cityscapes_recipe_uses_more_upsampling(clvae_registry):
    """Official SPADE ``cityscapes_dataset.py``: ``num_upsampling_layers='more'``."""
    assert synth.recipes()["clvae.spade_cityscapes"].spec["generator"]["upsampling"] == "more"
