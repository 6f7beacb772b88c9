"""The edits the page offers come from the model's parts, on tiny composed models."""

from __future__ import annotations

import pytest
import torch

from synth.app import capabilities, class_weight_blocks, find_sampler
from synth.app.capabilities import probe_condition

from .conftest import clvae_model, collage_model, nested_model, simple_model


def offered(caps) -> set[str]:
    return {k for k, e in caps.edits.items() if e.offered}


def test_core_only_model_offers_sample_and_blend_by_its_stages():
    caps = capabilities(simple_model(), size=(32, 32))
    assert caps.input == "label_map" and caps.num_classes == 4 and caps.size == (32, 32)
    assert caps.class_names == ["class 0", "class 1", "class 2", "class 3"]
    want = {"sample", "blend"} if find_sampler("blend") else {"sample"}
    assert offered(caps) == want
    assert "per-class codes" in caps.edits["resample_class"].why
    assert "pyramid" in caps.edits["resample_scale"].why
    assert "class weights" in caps.edits["label_collage"].why


def test_class_codes_offer_resample_class():
    caps = capabilities(clvae_model(), size=(64, 64), class_names=["sky", "tree", "road", "sea"])
    assert offered(caps) == {"sample", "resample_class", "blend"}
    assert caps.edits["resample_class"].count == 4
    assert caps.class_names[1] == "tree"
    assert caps.edits["blend"].sampler == "collage.feature_blend"


def test_pyramid_with_per_scale_codes_offers_resample_scale():
    caps = capabilities(nested_model(), size=(32, 32))
    assert "resample_scale" in offered(caps)
    edit = caps.edits["resample_scale"]
    assert edit.count == 4 and edit.sampler == "nested_scale.scale_edit"
    assert "resample_class" not in offered(caps)


def test_norms_reading_class_weights_offer_label_collage_at_those_layers():
    model = collage_model()
    caps = capabilities(model, size=(32, 32))
    assert caps.input == "class_id" and caps.size == (32, 32)
    assert offered(caps) == {"sample", "label_collage", "blend"}
    edit = caps.edits["label_collage"]
    assert edit.sampler == "collage.label_collage"
    from synth_collage import spatial_norms

    # the probed blocks are exactly the collage sampler's layers, in the same order
    blocks = class_weight_blocks(model, probe_condition(model, (32, 32)))
    named = dict(model.generator.named_modules())
    assert [named[n] for n in blocks] == spatial_norms(model.generator)
    assert edit.count == len(spatial_norms(model.generator)) == 6


def test_a_fresh_collage_model_counts_too():
    """The probe is a gradient, so a model whose classes all share γ = 1, β = 0 still reads
    the class map (a comparison of two maps would find no difference)."""
    pytest.importorskip("synth_collage")
    from synth_collage.recipes import tiny_collage_model

    assert capabilities(tiny_collage_model(), size=(32, 32)).edits["label_collage"].count == 6


def test_samplers_are_found_by_their_keywords():
    pytest.importorskip("synth_collage")
    pytest.importorskip("synth_nested_scale")
    assert find_sampler("blend") == "collage.feature_blend"
    assert find_sampler("label_collage") == "collage.label_collage"
    assert find_sampler("resample_scale") == "nested_scale.scale_edit"


def test_a_size_the_model_cannot_make_is_an_error_before_the_page_opens():
    with pytest.raises(ValueError, match="multiple|size"):
        capabilities(nested_model(), size=(33, 33))


def test_probing_leaves_the_model_and_its_statistics_alone():
    model = collage_model().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    capabilities(model, size=(32, 32))
    assert model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
