"""Core support for generators with an RGB pyramid and objectives with several samples per input:
``pool_pyramid``, the ``pyramid_levels`` runtime argument, pyramid-reading discriminators in
``core.gan``, ``samples_per_input`` and the compose checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

import synth
from synth.nn import ops
from synth.parts.objectives import GAN, discriminate
from synth.testing import make_condition

K = 3


class PyramidGen(synth.Generator):
    """Label map + per-scale styles -> a 3-level pyramid (factors 4, 2, 1); level k reads
    ``styles[k]`` and the level below, so a code changes only its level and finer ones."""

    has_pyramid = True

    class Config(synth.PartConfig):
        num_classes: int = K
        style_dim: int = 2

    def __init__(self, config=None, **kw):
        super().__init__(config, **kw)
        c = self.config
        self.stages = nn.ModuleList(
            [nn.Conv2d(c.num_classes + c.style_dim + 3, 3, 3, padding=1) for _ in range(3)]
        )
        self.stage_channels, self.stage_scales = [3, 3, 3], [4, 2, 1]
        self.pyramid_scales = [4, 2, 1]

    @classmethod
    def requirements(cls, config=None):
        return frozenset({"label_map", "styles"})

    def runtime_args(self):
        return {**super().runtime_args(), "num_stages": 3}

    def forward(self, cond, latents=None, *, return_features=False):
        h, w = cond.size
        prev = torch.zeros(cond.batch_size, 3, h // 4, w // 4)
        levels = []
        for k, (stage, f) in enumerate(zip(self.stages, self.pyramid_scales, strict=True)):
            size = (h // f, w // f)
            prev = F.interpolate(prev, size=size) if prev.shape[-2:] != size else prev
            code = latents.styles[k][:, :, None, None].expand(-1, -1, *size)
            x = torch.cat([ops.one_hot(ops.resize_labels(cond.label_map, size), K), code, prev], 1)
            prev = torch.tanh(stage(x))
            levels.append(prev)
        return synth.SynthesisOutput(levels[-1], pyramid=levels)


class LevelD(synth.Discriminator):
    """Scores each pyramid level with its own 1x1 conv; records what it was given."""

    reads_pyramid = True
    seen: list[list[tuple[int, ...]]] = []

    class Config(synth.PartConfig):
        pyramid_levels: int = 1

    def __init__(self, config=None, **kw):
        super().__init__(config, **kw)
        self.heads = nn.ModuleList(nn.Conv2d(3, 1, 1) for _ in range(self.config.pyramid_levels))

    def forward(self, image, cond, *, pyramid=None):
        if pyramid is None:
            sizes = [(image.shape[-2] // 2**i, image.shape[-1] // 2**i) for i in range(2, -1, -1)]
            pyramid = ops.pool_pyramid(image, sizes)
        LevelD.seen.append([tuple(t.shape) for t in pyramid])
        logits = [head(x) for head, x in zip(self.heads, reversed(pyramid), strict=True)]
        return synth.DiscriminatorOutput(logits, [[t] for t in logits])


class SamplesLoss(synth.Loss):
    """Reads the N samples (and records what it got)."""

    needs = frozenset({"samples"})
    got: list[dict] = []

    def forward(self, batch):
        SamplesLoss.got.append(
            {
                "samples": tuple(batch.samples.shape),
                "styles": len(batch.sample_latents.styles),
                "pyramid": len(batch.sample_output.pyramid),
                "fake": tuple(batch.fake.image.shape),
                "real": tuple(batch.real.shape),
            }
        )
        return batch.samples.std(dim=1).mean() * 0


def _spec(**objective):
    return {
        "generator": {"type": "t.pyramid_gen"},
        "injector": {"type": "core.gaussian", "shared_styles": True},
        "discriminator": {"type": "t.level_d"},
        "losses": {"gan": {"type": "core.hinge"}, "s": {"type": "t.samples"}},
        "objective": {"type": "core.gan", **objective},
    }


@pytest.fixture
def reg(synth_registry):
    synth_registry.add_part("t.pyramid_gen", PyramidGen)
    synth_registry.add_part("t.level_d", LevelD)
    synth_registry.add_part("t.samples", SamplesLoss)
    return synth_registry


class _Updater:
    step, d_steps = 0, 1

    def autocast(self):
        return torch.autocast("cpu", enabled=False)

    def update(self, network, loss):
        loss.backward()


def test_pool_pyramid_equals_repeated_2x2_average_pooling():
    x = torch.randn(2, 3, 16, 8)
    levels = ops.pool_pyramid(x, [(4, 2), (8, 4), (16, 8)])
    assert levels[-1] is x
    assert torch.allclose(levels[1], F.avg_pool2d(x, 2, stride=2))
    assert torch.allclose(levels[0], F.avg_pool2d(F.avg_pool2d(x, 2, 2), 2, 2), atol=1e-6)
    with pytest.raises(ValueError, match="integer factor"):
        ops.pool_pyramid(x, [(5, 2)])


def test_a_pyramid_generator_offers_pyramid_levels_to_the_discriminator(reg):
    model = synth.compose(_spec(samples_per_input=2))
    assert model.generator.runtime_args()["pyramid_levels"] == 3
    assert model.discriminator.config.pyramid_levels == 3


def test_samples_per_input_fills_the_loss_inputs_and_scores_each_real_once(reg):
    torch.manual_seed(0)
    model = synth.compose(_spec(samples_per_input=2))
    cond = make_condition(
        ["label_map"],
        batch_size=3,
        size=(16, 16),
        num_classes=K,
        generator=torch.Generator().manual_seed(0),
    )
    real = torch.rand(3, 3, 16, 16) * 2 - 1
    SamplesLoss.got.clear()
    LevelD.seen.clear()
    logs = model.objective.step(model, cond, real, _Updater())
    assert {"g/gan", "g/s", "d/gan"} <= set(logs)
    assert SamplesLoss.got[-1] == {
        "samples": (3, 2, 3, 16, 16),
        "styles": 3,
        "pyramid": 3,
        "fake": (6, 3, 16, 16),
        "real": (6, 3, 16, 16),
    }
    # both passes: the 3 reals once (their scores repeated for the generator's losses), 6 fakes
    g_pass, d_pass = LevelD.seen[-2:]
    assert g_pass == [(9, 3, 4, 4), (9, 3, 8, 8), (9, 3, 16, 16)]
    assert d_pass == [(9, 3, 4, 4), (9, 3, 8, 8), (9, 3, 16, 16)]


def test_a_pyramid_discriminator_gets_the_fake_pyramid_and_the_pooled_real():
    torch.manual_seed(0)
    gen = PyramidGen()
    cond = make_condition(
        ["label_map"],
        batch_size=2,
        size=(8, 8),
        num_classes=K,
        generator=torch.Generator().manual_seed(1),
    )
    latents = synth.Latents(styles=[torch.randn(2, 2) for _ in range(3)])
    fake = gen(cond, latents)
    real = torch.rand(2, 3, 8, 8)
    disc = LevelD(pyramid_levels=3)
    d_real, d_fake = discriminate(disc, real, fake, cond)
    want_real = [
        h(x)
        for h, x in zip(
            disc.heads, reversed(ops.pool_pyramid(real, [(2, 2), (4, 4), (8, 8)])), strict=True
        )
    ]
    want_fake = [h(x) for h, x in zip(disc.heads, reversed(fake.pyramid), strict=True)]
    for got, want in zip(d_real.logits + d_fake.logits, want_real + want_fake, strict=True):
        torch.testing.assert_close(got, want)


def test_the_n_samples_come_from_the_prior_and_differ(reg):
    torch.manual_seed(0)
    model = synth.compose(_spec(samples_per_input=3))
    cond = make_condition(
        ["label_map"],
        batch_size=1,
        size=(8, 8),
        num_classes=K,
        generator=torch.Generator().manual_seed(2),
    )
    model.objective.step(model, cond, torch.zeros(1, 3, 8, 8), _Updater())
    samples = model.sample(cond, 3).image
    per_input = rearrange(samples, "(b n) c h w -> b n c h w", n=3)
    assert not torch.equal(per_input[0, 0], per_input[0, 1])


def test_compose_checks_samples_and_pyramids(reg):
    with pytest.raises(synth.ComposeError, match="several samples per input"):
        synth.compose(_spec())  # N = 1 provides no samples
    spec = _spec(samples_per_input=2)
    spec["generator"] = {"type": "core.simple_generator", "num_classes": K, "style_dim": 2}
    with pytest.raises(synth.ComposeError) as e:
        synth.compose(spec)
    msg = str(e.value)
    assert "scores every level of an RGB pyramid" in msg
    assert "t.pyramid_gen" in msg  # the registered generators with a pyramid are named
    assert isinstance(GAN.provided(GAN.Config(samples_per_input=4)), frozenset)


def test_a_pyramid_does_not_set_a_multiscale_discriminators_own_scales(reg):
    spec = _spec(samples_per_input=2)
    spec["discriminator"] = {"type": "core.patch_discriminator", "num_scales": 2, "ndf": 4}
    model = synth.compose(spec)
    assert model.discriminator.config.num_scales == 2
    assert model.discriminator.config.num_classes == K


def test_prior_samples_keep_the_pyramid_also_in_chunks(reg):
    torch.manual_seed(0)
    model = synth.compose(_spec(samples_per_input=2))
    cond = make_condition(
        ["label_map"], batch_size=2, size=(8, 8), num_classes=K, generator=torch.Generator()
    )
    whole = model.sample(cond, 3, generator=torch.Generator().manual_seed(1))
    chunked = model.sample(
        cond,
        3,
        sampler={"type": "core.prior", "batch_size": 4},
        generator=torch.Generator().manual_seed(1),
    )
    assert [tuple(t.shape) for t in whole.pyramid] == [(6, 3, 2, 2), (6, 3, 4, 4), (6, 3, 8, 8)]
    for a, b in zip(whole.pyramid, chunked.pyramid, strict=True):
        torch.testing.assert_close(a, b)
