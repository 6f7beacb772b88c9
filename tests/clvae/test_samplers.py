"""Applications (§4.4): style-guided synthesis, object editing (with copy-back)."""

from __future__ import annotations

import pytest
import torch

import synth
from synth_clvae.samplers import tiny_clvae_model


def _cond(seed: int, high: int = 4) -> synth.Condition:
    g = torch.Generator().manual_seed(seed)
    lab = synth.nn.ops.resize_labels(torch.randint(0, high, (2, 4, 4), generator=g), (64, 64))
    return synth.Condition(label_map=lab, num_classes=4)


def test_style_guided_keeps_reference_codes_for_shared_classes(clvae_registry):
    model = tiny_clvae_model(0)
    src, ref = _cond(1), _cond(2, high=2)  # the reference has classes {0, 1} only
    ref_img = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        out = model.sample(
            src,
            3,
            sampler="clvae.style_guided",
            generator=torch.Generator().manual_seed(0),
            reference=ref_img,
            reference_labels=ref.label_map,
        )
        p = model.injector.encode(ref_img, ref)
    assert out.image.shape == (6, 3, 64, 64)
    for b in range(2):
        src_classes = set(src.label_map[b].unique().tolist())
        for j in range(3):
            row = b * 3 + j
            for stage, layer in enumerate(model.injector.config.stage_layers):
                codes = out.latents.class_codes[stage][row]
                for c in range(4):
                    if c in src_classes and c in (0, 1):
                        assert torch.equal(codes[c], p["class_mu"][b, layer, c])
                    else:
                        assert not torch.equal(codes[c], p["class_mu"][b, layer, c])
        torch.testing.assert_close(out.latents.z[b * 3], p["mu"][b])
    # the non-shared classes are drawn anew per sample
    assert not torch.equal(out.latents.class_codes[0][0, 3], out.latents.class_codes[0][1, 3])


def test_object_edit_changes_only_chosen_codes_and_copy_back_keeps_pixels(clvae_registry):
    model = tiny_clvae_model(1)
    cond = _cond(3)
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        p = model.injector.encode(image, cond)
        out = model.sample(
            cond,
            2,
            sampler="clvae.object_edit",
            generator=torch.Generator().manual_seed(0),
            image=image,
            classes=[2],
        )
        sampler = synth.build({"type": "clvae.object_edit", "copy_back": True})
        kept = sampler.sample(
            model, cond, 2, generator=torch.Generator().manual_seed(0), image=image, classes=[2]
        )
    src = p["class_mu"].repeat_interleave(2, 0)
    for stage, layer in enumerate(model.injector.config.stage_layers):
        codes = out.latents.class_codes[stage]
        keep = [0, 1, 3]
        assert torch.equal(codes[:, keep], src[:, layer, keep])
        assert not torch.equal(codes[:, 2], src[:, layer, 2])
    # the same codes with copy-back: the edited region is generated, the rest is the photo
    torch.testing.assert_close(kept.image.shape, out.image.shape)
    outside = (cond.label_map != 2).repeat_interleave(2, 0).unsqueeze(1).expand(-1, 3, -1, -1)
    photo = image.repeat_interleave(2, 0)
    assert torch.equal(kept.image[outside], photo[outside])
    assert torch.equal(kept.image[~outside], out.image[~outside])
    # setting explicit codes
    new = torch.zeros(1, 5, 4)
    with torch.no_grad():
        set_out = model.sample(
            cond, 1, sampler="clvae.object_edit", image=image, classes=[2], codes=new
        )
    assert torch.equal(set_out.latents.class_codes[0][:, 2], torch.zeros(2, 4))


def test_material_edit_moves_one_class_one_layer(clvae_registry):
    model = tiny_clvae_model(2)
    cond = _cond(4)
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    direction = torch.tensor([1.0, 0, 0, 0])
    with torch.no_grad():
        p = model.injector.encode(image, cond)
        out = model.sample(
            cond,
            3,
            sampler="clvae.material_edit",
            image=image,
            class_id=1,
            layer=2,
            direction=direction,
        )
    stage = model.injector.config.stage_layers.index(2)
    codes = out.latents.class_codes[stage]
    want = p["class_mu"][0, 2, 1] + torch.tensor([-3.0, 0, 3.0])[:, None] * direction
    torch.testing.assert_close(codes[:3, 1], want)
    other = model.injector.config.stage_layers.index(3)
    assert torch.equal(out.latents.class_codes[other][:3], p["class_mu"][:1, 3].expand(3, -1, -1))


def test_plugin_sampler_keywords_are_checked_from_the_signature(clvae_registry):
    """A misspelt keyword of a plugin sampler names the sampler, the wrong and missing
    keywords and what it takes (types, defaults) -- before any encoding runs."""
    model = tiny_clvae_model(0)
    cond = _cond(1)
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    with pytest.raises(TypeError) as err:
        model.sample(
            cond, 2, sampler="clvae.style_guided", reference=image, ref_labels=cond.label_map
        )
    msg = str(err.value)
    assert "sampler clvae.style_guided got unexpected argument(s) 'ref_labels'" in msg
    assert "is missing required argument(s) 'reference_labels'" in msg
    assert "reference: Tensor (required), reference_labels: Tensor (required)" in msg
    with pytest.raises(TypeError, match=r"clvae.material_edit is missing .* 'layer'"):
        model.sample(cond, 2, sampler="clvae.material_edit", image=image, class_id=1)
    with pytest.raises(TypeError, match=r"'class' \(did you mean 'classes'\?\)"):
        model.sample(cond, 2, sampler="clvae.object_edit", image=image, **{"class": [1]})
    keywords = synth.build("clvae.object_edit").keywords()
    assert list(keywords) == ["classes", "image", "layer_codes", "codes"]
    assert keywords["classes"].annotation == "Sequence[int]"
    assert keywords["classes"].default is keywords["classes"].empty
