"""edit_photo: project -> collage -> blend on a tiny sCBN model, each stage alone too."""

from __future__ import annotations

import pytest
import torch

import synth
from synth_collage.encoder import ResNetEncoder
from synth_collage.photo import blend_back, crop_region, edit_photo, render_edit
from synth_collage.recipes import TINY_SPEC

K, R, Z = 4, 32, 16


@pytest.fixture(scope="module")
def model() -> synth.SynthesisModel:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        m = synth.compose(TINY_SPEC).eval()
        # untrained sCBN embeddings are 1 and 0 for every class: make the classes differ
        with torch.no_grad():
            for name, p in m.generator.named_parameters():
                if ".gammas." in name or ".betas." in name:
                    p.add_(torch.randn_like(p) * 0.5)
        return m


def _photo() -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    return torch.rand(2, 3, 40, 48, generator=g) * 2 - 1


def test_label_collage_of_a_real_photo_end_to_end(model):
    photo, region = _photo(), (4, 10, 30, 30)
    cond = synth.Condition(class_id=torch.tensor([0, 1]), num_classes=K, size=(R, R))
    # the label collage: the right half of the crop turns into class 2 (sCBN class map)
    weights = torch.nn.functional.one_hot(torch.tensor([0, 1]), K).float()[:, :, None, None]
    weights = weights.expand(2, K, R, R).clone()
    weights[:, :, :, R // 2 :] = 0
    weights[:, 2, :, R // 2 :] = 1
    edit = synth.Condition(class_weights=weights, num_classes=K)
    enc = ResNetEncoder(z_dim=Z, ch=2, image_size=R)
    out = edit_photo(model, photo, region, cond=cond, edit=edit, steps=2, encoder=enc)
    assert out.image.shape == photo.shape
    assert out.crop.shape == out.reconstruction.shape == out.edited.shape == (2, 3, R, R)
    assert out.projection.losses.shape == (3, 2)
    # outside the region (and on its one-pixel ring) the photo is untouched
    keep = torch.ones_like(photo, dtype=torch.bool)
    keep[..., 5:33, 11:39] = False
    assert torch.equal(out.image[keep], photo[keep])
    assert not torch.allclose(out.image[~keep], photo[~keep])
    # the stages alone give the same result
    crop = crop_region(photo, region, (R, R))
    torch.testing.assert_close(crop, out.crop)
    edited = render_edit(model, out.projection.latents, edit)
    torch.testing.assert_close(edited, out.edited)
    torch.testing.assert_close(blend_back(photo, edited, region), out.image)
    # the edit is a collage: the class map changed the image relative to the reconstruction
    assert not torch.allclose(out.edited, out.reconstruction)


def test_a_callable_edit_and_a_custom_blend_mask(model):
    photo, region = _photo(), (0, 0, 32, 32)
    cond = synth.Condition(class_id=torch.tensor([3, 3]), num_classes=K, size=(R, R))

    def swap_codes(m, latents):  # any collage as a callable: here, the other photo's code
        return m.generator(cond, synth.Latents(z=latents.z.flip(0))).image

    mask = torch.zeros(32, 32)
    mask[8:20, 8:20] = 1
    out = edit_photo(model, photo, region, cond=cond, edit=swap_codes, mask=mask, steps=1)
    changed = (out.image != photo).any(1)
    assert changed[:, 8:20, 8:20].any() and not changed[:, :8].any() and not changed[:, 20:].any()


def test_bad_inputs_are_named(model):
    photo = _photo()
    cond = synth.Condition(class_id=torch.tensor([0, 1]), num_classes=K, size=(R, R))
    with pytest.raises(ValueError, match="does not fit"):
        edit_photo(model, photo, (30, 30, 20, 20), cond=cond, edit=cond, steps=1)
    with pytest.raises(TypeError, match="synth.Condition"):
        render_edit(model, synth.Latents(z=torch.zeros(2, Z)), "class 3")
    with pytest.raises(ValueError, match="region's size"):
        blend_back(photo, torch.zeros(2, 3, R, R), (0, 0, 20, 20), mask=torch.ones(8, 8))
