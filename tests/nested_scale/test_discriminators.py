"""The pyramid discriminator (eq. 4): one discriminator per level, on S^{n-i}(x) for reals."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import synth
import synth.testing
from synth.errors import ComposeError, ConfigError
from synth.parts.objectives import discriminate
from synth_nested_scale.samplers import TINY_DECODER

PATCH = {"type": "core.patch_discriminator", "num_scales": 1, "ndf": 4, "n_layers": 2}


def _build(**kw):
    return synth.build({"type": "nested_scale.pyramid_discriminator", "discriminator": PATCH, **kw})


def _cond(b=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return synth.testing.make_condition({"label_map"}, batch_size=b, size=size, generator=g)


def _image(b=2, size=32, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.tanh(torch.randn(b, 3, size, size, generator=g))


def _pool(x, times):
    """S applied ``times`` times: 2×2 average pooling, stride 2."""
    for _ in range(times):
        x = F.avg_pool2d(x, 2)
    return x


def test_d_loss_is_the_sum_of_the_levels_hinge_losses(nested_registry):
    """Eq. 4 with core's hinge: Σ_i [mean relu(1 − D_i(S^{n−i}(x))) + mean relu(1 + D_i(G_i))]."""
    torch.manual_seed(0)
    disc = _build(pyramid_levels=3, num_classes=4)
    cond, real = _cond(), _image(seed=1)
    fake = [_image(size=s, seed=2 + s) for s in (8, 16, 32)]
    hinge = synth.build("core.hinge")
    d_real = disc(real, cond)  # levels pooled from the image
    d_fake = disc(fake[-1], cond, pyramid=fake)
    batch = synth.LossInputs("discriminator", cond, disc_real=d_real, disc_fake=d_fake)
    got = hinge(batch)
    want = 0.0
    for i in range(3):
        level_d = disc.levels[str(i)]
        r = level_d(_pool(real, 2 - i), cond).logits[0]
        f = level_d(fake[i], cond).logits[0]
        want = want + torch.relu(1 - r).mean() + torch.relu(1 + f).mean()
    torch.testing.assert_close(got, want)
    g_batch = synth.LossInputs("generator", cond, disc_fake=d_fake)
    g_want = -sum(disc.levels[str(i)](fake[i], cond).logits[0].mean() for i in range(3))
    torch.testing.assert_close(hinge(g_batch), g_want)


def test_outputs_are_finest_first_and_levels_are_separate_networks(nested_registry):
    torch.manual_seed(0)
    disc = _build(pyramid_levels=3, num_classes=4)
    out = disc(_image(), _cond())
    assert len(out.logits) == 3 and len(out.features) == 3
    sizes = [t.shape[-1] for t in out.logits]
    assert sizes == sorted(sizes, reverse=True)  # finest level first
    keys = {k.split(".")[1] for k in disc.state_dict()}
    assert keys == {"0", "1", "2"}
    w = [disc.levels[str(i)].scales[0].layers[0].conv.weight for i in range(3)]
    assert not torch.equal(w[0], w[1])
    assert disc.levels["0"].config.num_classes == 4  # the runtime argument reached each level


def test_scales_subset_and_given_pyramid(nested_registry):
    """A generator whose levels jump (4, 16, 32): the given levels are used as they are."""
    torch.manual_seed(0)
    disc = _build(pyramid_levels=3, num_classes=4, scales=[0, -1])
    assert set(disc.levels) == {"0", "2"}
    cond, x = _cond(), _image()
    levels = synth.ops.pool_pyramid(x, [(4, 4), (16, 16), (32, 32)])
    out = disc(x, cond, pyramid=levels)
    assert len(out.logits) == 2
    torch.testing.assert_close(out.logits[0], disc.levels["2"](x, cond).logits[0])
    torch.testing.assert_close(out.logits[1], disc.levels["0"](levels[0], cond).logits[0])
    with pytest.raises(ValueError, match="3 pyramid levels but got 2"):
        disc(x, cond, pyramid=levels[1:])


def test_core_gan_discriminate_passes_the_pyramids(nested_registry):
    """core.gan's batched pass: the fakes' own pyramid, the reals pooled to its sizes."""
    torch.manual_seed(0)
    disc = _build(pyramid_levels=3, num_classes=4)
    cond, real = _cond(), _image()
    fake_levels = [_image(size=s, seed=s) for s in (8, 16, 32)]
    fake = synth.SynthesisOutput(fake_levels[-1], pyramid=fake_levels)
    d_real, d_fake = discriminate(disc, real, fake, cond)
    torch.testing.assert_close(d_real.logits[2], disc.levels["0"](_pool(real, 2), cond).logits[0])
    torch.testing.assert_close(d_fake.logits[1], disc.levels["1"](fake_levels[1], cond).logits[0])


def test_build_errors(nested_registry):
    with pytest.raises(ConfigError, match="pyramid_levels"):
        _build(num_classes=4)
    with pytest.raises(ConfigError, match="not levels"):
        _build(pyramid_levels=2, num_classes=4, scales=[2])
    with pytest.raises(ConfigError, match="single images"):
        synth.build(
            {"type": "nested_scale.pyramid_discriminator", "discriminator": "core.hinge"},
            pyramid_levels=2,
        )


def test_requirements_are_the_level_discriminators(nested_registry):
    cls = nested_registry.resolve("nested_scale.pyramid_discriminator")
    cfg = cls.coerce_config(discriminator=PATCH, pyramid_levels=2, num_classes=4)
    assert cls.requirements(cfg) == {"label_map"}
    uncond = cls.coerce_config(discriminator={**PATCH, "conditional": False}, pyramid_levels=2)
    assert cls.requirements(uncond) == frozenset()


def test_composes_only_with_a_pyramid_generator(nested_registry):
    """The decoder offers pyramid_levels and num_classes; a generator without a pyramid is refused."""
    spec = {
        "generator": TINY_DECODER,
        "injector": {"type": "core.gaussian"},
        "discriminator": {"type": "nested_scale.pyramid_discriminator", "discriminator": PATCH},
        "losses": {"gan": "core.hinge"},
    }
    model = synth.compose(spec)
    disc = model.discriminator
    assert disc.num_scales == 4 and len(disc.levels) == 4
    assert all(d.config.num_classes == 4 for d in disc.levels.values())
    spec["generator"] = {"type": "core.simple_generator", "num_classes": 4}
    with pytest.raises(ComposeError, match="pyramid"):
        synth.compose(spec)


def test_passes_check_part(nested_registry):
    synth.testing.check_part(
        "nested_scale.pyramid_discriminator", pyramid_levels=3, num_classes=4, discriminator=PATCH
    )
