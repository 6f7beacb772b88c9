"""core.simple_generator and core.patch_discriminator: shapes, slots, composition, errors,
autocast and torch.compile."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import synth
from synth.parts.discriminators import PatchDiscriminator
from synth.parts.generators import SimpleGenerator

K = 4


def _cond(b: int = 2, size: int | tuple[int, int] = 16) -> synth.Condition:
    h, w = (size, size) if isinstance(size, int) else size
    labels = torch.randint(0, K, (b, h, w), generator=torch.Generator().manual_seed(0))
    return synth.Condition(label_map=labels, num_classes=K)


# --------------------------------------------------------------------------- generator


def test_shapes_channels_scales_and_features():
    torch.manual_seed(0)
    gen = synth.build("core.simple_generator", num_classes=K, ngf=4, num_stages=3)
    assert isinstance(gen, SimpleGenerator)
    assert gen.stage_channels == [16, 8, 4]
    assert gen.stage_scales == [4, 2, 1]
    assert isinstance(gen.stages, torch.nn.ModuleList) and len(gen.stages) == 3
    out = gen(_cond(2, (16, 24)), return_features=True)
    assert out.image.shape == (2, 3, 16, 24)
    assert out.image.abs().max() <= 1
    for f, c, s in zip(out.features, gen.stage_channels, gen.stage_scales):
        assert f.shape == (2, c, 16 // s, 24 // s)
    assert gen(_cond()).features is None


def test_requirements_follow_the_config():
    cfg = SimpleGenerator.Config
    assert SimpleGenerator.requirements(None) == frozenset()
    assert SimpleGenerator.requirements(cfg()) == frozenset()
    assert SimpleGenerator.requirements(cfg(num_classes=3)) == {"label_map"}
    assert SimpleGenerator.requirements(cfg(num_classes=3, z_dim=2, noise_channels=1)) == {
        "label_map",
        "z",
        "spatial",
    }


def test_runtime_args_offer_noise_channels():
    gen = SimpleGenerator(num_classes=K, z_dim=3, style_dim=5, noise_channels=2, num_stages=2)
    args = gen.runtime_args()
    assert args["channels"] == 2
    assert args["num_classes"] == K and args["z_dim"] == 3 and args["style_dim"] == 5
    assert args["num_stages"] == 2 and args["stage_scales"] == [2, 1]


def test_norm_slot_gets_runtime_args():
    gen = SimpleGenerator(num_classes=K, ngf=4, num_stages=2, style_dim=3, norm="core.adain")
    norms = [stage.norm for stage in gen.stages]
    assert [n.config.channels for n in norms] == gen.stage_channels
    assert [n.config.stage for n in norms] == [0, 1]
    assert all(n.config.style_dim == 3 for n in norms)


def test_check_condition_rejects_sizes():
    gen = SimpleGenerator(num_classes=K, num_stages=3)
    gen.check_condition(_cond(1, 16))
    with pytest.raises(ValueError, match=r"multiples of 8.*\(24, 24\)"):
        gen.check_condition(_cond(1, 20))
    model = synth.compose({"generator": {"type": "core.simple_generator", "num_classes": K}})
    with pytest.raises(ValueError, match="multiples of 8"):
        model.generate(_cond(1, (16, 12)))


def test_compose_gaussian_adain_and_sample():
    torch.manual_seed(0)
    model = synth.compose(
        {
            "generator": {
                "type": "core.simple_generator",
                "num_classes": K,
                "ngf": 4,
                "z_dim": 6,
                "style_dim": 5,
                "norm": "core.adain",
            },
            "injector": {"type": "core.gaussian", "shared_styles": False},
        }
    )
    assert model.injector.config.num_stages == 3 and model.injector.config.z_dim == 6
    cond = _cond(2)
    with torch.no_grad():
        out = model.sample(cond, 3, generator=torch.Generator().manual_seed(0))
        assert out.image.shape == (6, 3, 16, 16)
        assert out.latents.z.shape == (6, 6) and len(out.latents.styles) == 3
        # samples of one input differ; the same codes remake the same image
        assert not torch.allclose(out.image[0], out.image[1])
        again = model.generate(cond.repeat_interleave(3), out.latents)
        torch.testing.assert_close(again.image, out.image)


def test_compose_spatial_noise():
    torch.manual_seed(0)
    model = synth.compose(
        {
            "generator": {"type": "core.simple_generator", "num_classes": K, "noise_channels": 2},
            "injector": {"type": "core.spatial_noise", "scale": 4},
        }
    )
    assert model.injector.config.channels == 2
    with torch.no_grad():
        out = model.sample(_cond(2), 2)
    assert out.latents.spatial.shape == (4, 2, 4, 4)  # resized to the 2x2 base inside
    assert out.image.shape == (4, 3, 16, 16)
    assert not torch.allclose(out.image[0], out.image[1])


def _adain_spec(norm) -> dict:
    return {
        "generator": {
            "type": "core.simple_generator",
            "num_classes": K,
            "style_dim": 4,
            "norm": norm,
        }
    }


def test_missing_styles_is_a_compose_error():
    with pytest.raises(synth.ComposeError, match=r"(?s)'styles'.*core\.gaussian"):
        synth.compose(_adain_spec({"type": "core.adain"}))
    spec = _adain_spec({"type": "core.adain"})
    spec["injector"] = "core.spatial_noise"
    with pytest.raises(synth.ComposeError, match=r"(?s)'styles'.*core\.spatial_noise"):
        synth.compose(spec)


def test_missing_styles_is_a_compose_error_for_a_slot_given_by_name():
    with pytest.raises(synth.ComposeError, match="'styles'"):
        synth.compose(_adain_spec("core.adain"))


def test_missing_z_is_a_compose_error():
    spec = {"generator": {"type": "core.simple_generator", "num_classes": K, "z_dim": 3}}
    with pytest.raises(synth.ComposeError, match=r"(?s)'z'.*core\.gaussian"):
        synth.compose(spec)
    spec["injector"] = "core.spatial_noise"
    with pytest.raises(synth.ComposeError, match="'z'"):
        synth.compose(spec)


def test_adain_without_style_dim_names_the_fix():
    spec = {
        "generator": {"type": "core.simple_generator", "num_classes": K, "norm": "core.adain"},
        "injector": "core.gaussian",
    }
    with pytest.raises(synth.ComposeError, match="set style_dim on the generator"):
        synth.compose(spec)


def test_missing_latents_at_forward_name_the_fix():
    gen = SimpleGenerator(num_classes=K, z_dim=3)
    with pytest.raises(ValueError, match=r"provides 'z', e\.g\. core\.gaussian"):
        gen(_cond())
    gen = SimpleGenerator(num_classes=K, noise_channels=3)
    with pytest.raises(ValueError, match=r"provides 'spatial', e\.g\. core\.spatial_noise"):
        gen(_cond(), synth.Latents())
    with pytest.raises(ValueError, match="noise_channels=3"):
        gen(_cond(), synth.Latents(spatial=torch.randn(2, 2, 2, 2)))


def test_learned_constant_start_gets_gradients():
    torch.manual_seed(0)
    gen = SimpleGenerator(ngf=4, num_stages=2, style_dim=3, norm="core.adain")
    assert gen.head is None and gen.const.shape == (1, 8, 4, 4)
    cond = _cond(2)  # label map only sets the size: this generator reads no label map
    styles = [torch.randn(2, 3), torch.randn(2, 3)]
    out = gen(cond, synth.Latents(styles=styles))
    assert out.image.shape == (2, 3, 16, 16)
    out.image.square().mean().backward()
    for name, p in gen.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    gen = SimpleGenerator(num_classes=K, ngf=4, num_stages=2, z_dim=2, noise_channels=1)
    lat = synth.Latents(z=torch.randn(2, 2), spatial=torch.randn(2, 1, 4, 4))
    gen(_cond(), lat).image.square().mean().backward()
    for name, p in gen.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_stage_hooks_see_and_rewrite_features():
    torch.manual_seed(0)
    gen = SimpleGenerator(num_classes=K, ngf=4, num_stages=2)
    cond = _cond()
    base = gen(cond, return_features=True)
    seen = []
    h1 = gen.stages[0].register_forward_hook(lambda m, args, out: seen.append(out))
    h2 = gen.stages[1].register_forward_hook(lambda m, args, out: out * 0)
    out = gen(cond)
    h1.remove()
    h2.remove()
    torch.testing.assert_close(seen[0], base.features[0])
    zeros = torch.tanh(gen.to_rgb.bias).view(1, 3, 1, 1).expand(2, 3, 16, 16)
    torch.testing.assert_close(out.image, zeros)


def test_generator_bf16_autocast_on_cpu():
    torch.manual_seed(0)
    gen = SimpleGenerator(num_classes=K, ngf=4, z_dim=2, style_dim=3, norm="core.adain")
    lat = synth.Latents(z=torch.randn(2, 2), styles=[torch.randn(2, 3)] * 3)
    ref = gen(_cond(), lat).image
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = gen(_cond(), lat).image
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), ref, atol=0.1, rtol=0.1)


@pytest.mark.parametrize("norm", ["core.instance_norm", "core.batch_norm", "core.adain"])
def test_generator_compiles_fullgraph(norm):
    torch.manual_seed(0)
    gen = SimpleGenerator(
        num_classes=K, ngf=4, num_stages=2, z_dim=2, style_dim=3, noise_channels=1, norm=norm
    ).eval()
    lat = synth.Latents(
        z=torch.randn(2, 2), styles=[torch.randn(2, 3)] * 2, spatial=torch.randn(2, 1, 4, 4)
    )
    compiled = torch.compile(gen, fullgraph=True, backend="eager")
    out = compiled(_cond(), lat, return_features=True)
    torch.testing.assert_close(out.image, gen(_cond(), lat).image)
    assert len(out.features) == 2


def test_constant_generator_compiles_fullgraph():
    gen = SimpleGenerator(ngf=4, num_stages=2)
    compiled = torch.compile(gen, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(_cond()).image, gen(_cond()).image)


# --------------------------------------------------------------------------- discriminator


def test_patch_discriminator_shapes_and_features():
    torch.manual_seed(0)
    disc = synth.build(
        {"type": "core.patch_discriminator", "num_scales": 2, "ndf": 4}, num_classes=K
    )
    assert isinstance(disc, PatchDiscriminator)
    assert PatchDiscriminator.requirements(disc.config) == {"label_map"}
    # one-hot label map concatenated to the image
    assert disc.scales[0].layers[0].conv.in_channels == 3 + K
    out = disc(torch.randn(2, 3, 32, 32), _cond(2, 32))
    assert len(out.logits) == 2 and len(out.features) == 2
    assert out.logits[0].shape[:2] == (2, 1)
    assert [f.shape[1] for f in out.features[0]] == [4, 8, 16, 32]
    assert out.features[0][0].shape[-1] == 17  # 4x4, stride 2, pad 2
    assert out.logits[1].shape[-1] < out.logits[0].shape[-1]


def test_patch_discriminator_scales_see_the_avg_pooled_input():
    torch.manual_seed(0)
    disc = PatchDiscriminator(num_classes=K, ndf=4, n_layers=2, num_scales=2)
    image, cond = torch.randn(2, 3, 16, 16), _cond(2)
    out = disc(image, cond)
    x = torch.cat([F.one_hot(cond.label_map, K).permute(0, 3, 1, 2).float(), image], 1)
    x1 = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
    logits1, feats1 = disc.scales[1](x1)
    torch.testing.assert_close(out.logits[1], logits1)
    torch.testing.assert_close(out.features[1][-1], feats1[-1])
    logits0, _ = disc.scales[0](x)
    torch.testing.assert_close(out.logits[0], logits0)


def test_patch_discriminator_unconditional_and_errors():
    disc = PatchDiscriminator(ndf=4)
    assert PatchDiscriminator.requirements(disc.config) == frozenset()
    assert disc.scales[0].layers[0].conv.in_channels == 3
    no_labels = synth.Condition(class_id=torch.tensor([0, 1]), num_classes=2, size=(16, 16))
    disc(torch.randn(2, 3, 16, 16), no_labels)
    assert (
        PatchDiscriminator(num_classes=K, conditional=False).scales[0].layers[0].conv.in_channels
        == 3
    )
    with pytest.raises(ValueError, match="conditional: false"):
        PatchDiscriminator(num_classes=K, ndf=4)(torch.randn(2, 3, 16, 16), no_labels)


def test_patch_discriminator_gradients_and_spectral_norm_compile():
    torch.manual_seed(0)
    disc = PatchDiscriminator(num_classes=K, ndf=4, n_layers=2, num_scales=2, spectral_norm=True)
    image, cond = torch.randn(2, 3, 16, 16, requires_grad=True), _cond(2)
    compiled = torch.compile(disc, fullgraph=True, backend="eager")
    out = compiled(image, cond)
    sum(lg.mean() for lg in out.logits).backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    disc.eval()
    torch.testing.assert_close(compiled(image, cond).logits[1], disc(image, cond).logits[1])


def test_patch_discriminator_bf16_autocast():
    torch.manual_seed(0)
    disc = PatchDiscriminator(num_classes=K, ndf=4, n_layers=2)
    image, cond = torch.randn(2, 3, 16, 16), _cond(2)
    ref = disc(image, cond).logits[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = disc(image, cond).logits[0]
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), ref, atol=0.1, rtol=0.1)


def test_compose_with_discriminator_offers_num_classes():
    model = synth.compose(
        {
            "generator": {"type": "core.simple_generator", "num_classes": K, "ngf": 4},
            "discriminator": {"type": "core.patch_discriminator", "ndf": 4},
        }
    )
    assert model.discriminator.config.num_classes == K
    with torch.no_grad():
        fake = model.generate(_cond()).image
        out = model.discriminator(fake, _cond())
    assert out.logits[0].shape[0] == 2
