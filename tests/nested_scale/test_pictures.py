"""The scale-edit picture (``synth_nested_scale.pictures``): per input the reference sample,
then redraws of only the coarsest, a middle and the finest level's code, drawn through
``nested_scale.scale_edit`` and offered to ``synth demo`` by the ``synth_demo_pictures`` hook;
a note for models without per-scale codes."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange
from PIL import Image

import synth
import synth.testing
from synth.registry import DemoPicture
from synth_nested_scale.pictures import (
    NO_SCALE_CODES,
    demo_pictures,
    edited_levels,
    scale_edit_grid,
    scale_edits,
)

SIZE, K = 32, 4

#: core.simple_generator in the adapter: three levels (8×8, 16×16, 32×32) and a global z.
ADAPTER = {
    "type": "nested_scale.pyramid",
    "style_dim": 4,
    "generator": {
        "type": "core.simple_generator",
        "num_classes": K,
        "ngf": 8,
        "num_stages": 3,
        "z_dim": 3,
    },
}


def _adapter_model(seed: int = 0) -> synth.SynthesisModel:
    torch.manual_seed(seed)
    model = synth.compose({"generator": ADAPTER, "injector": {"type": "core.gaussian"}}).eval()
    with torch.no_grad():  # the per-scale FiLM starts at identity: give the codes an effect
        for p in model.generator.modulations.parameters():
            p.normal_(0.0, 0.5)
    return model


def _inputs(b: int = 2) -> tuple[synth.Condition, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    cond = synth.testing.make_condition(
        {"label_map"}, batch_size=b, size=SIZE, num_classes=K, generator=g
    )
    real = torch.rand(b, 3, SIZE, SIZE, generator=g) * 2 - 1
    return cond, real


@pytest.mark.parametrize(
    ("levels", "edited"), [(6, [0, 3, 5]), (5, [0, 2, 4]), (3, [0, 1, 2]), (2, [0, 1]), (1, [0])]
)
def test_the_picture_edits_the_coarsest_a_middle_and_the_finest_level(levels, edited):
    assert edited_levels(levels) == edited


def test_scale_edits_redraw_one_level_each_and_keep_every_other_code(nested_registry):
    model, (cond, _) = _adapter_model(), _inputs()
    seen: list[synth.Latents] = []
    model.generator.register_forward_hook(lambda m, args, out: seen.append(args[1]))
    n, levels = 3, [0, 2]
    with torch.no_grad():
        reference, edits = scale_edits(model, cond, levels, n, torch.Generator().manual_seed(1))
        again = model.generator(cond, model.injector.prior(cond, torch.Generator().manual_seed(1)))
    assert reference.shape == (2, 3, SIZE, SIZE) and edits.shape == (2, 2, n, 3, SIZE, SIZE)
    torch.testing.assert_close(reference, again.image, rtol=0, atol=0)  # one prior draw
    ref, *calls = seen[:3]  # the reference, then one batched call per edited level
    assert len(calls) == len(levels)
    for k, latents in zip(levels, calls):
        assert torch.equal(latents.z, ref.z.repeat_interleave(n, dim=0))
        for j, code in enumerate(latents.styles):
            kept = ref.styles[j].repeat_interleave(n, dim=0)
            if j == k:  # a fresh code for each redraw
                per_input = rearrange(code, "(b n) s -> b n s", n=n)
                assert not torch.equal(per_input[:, 0], per_input[:, 1])
            else:
                assert torch.equal(code, kept), (k, j)
    # the redraws change the image, each differently
    for level in range(len(levels)):
        assert (edits[:, level, 0] - edits[:, level, 1]).abs().mean() > 1e-4
        assert (edits[:, level, 0] - reference).abs().mean() > 1e-4


def test_the_hook_writes_scale_edit_png_for_a_pyramid_model(nested_registry, tmp_path):
    model, (cond, real) = _adapter_model(), _inputs()
    with torch.no_grad():
        (picture,) = demo_pictures(model, cond, cond, real, None, 6, torch.Generator())
    assert picture.name == "scale_edit" and picture.write is not None
    assert picture.note.endswith("coarse (8×8), middle (16×16), fine (32×32) code redrawn")
    picture.write(tmp_path / "scale_edit.png")
    grid = Image.open(tmp_path / "scale_edit.png")
    # condition | real | reference | 3 redraws of each of 3 levels; 32 px cells shown at 64
    assert grid.width == 12 * 64 + 13 * 2
    assert grid.height > 2 * 64 + 3 * 2  # two rows under the column headers


def test_fewer_samples_give_fewer_redraws(nested_registry):
    model, (cond, real) = _adapter_model(), _inputs(1)
    with torch.no_grad():
        reference, edits = scale_edits(model, cond, [0, 2], 2, torch.Generator())
    grid = scale_edit_grid(reference, edits, cond, real, ["coarse", "fine"])
    assert grid.shape[-1] == 7 * 64 + 8 * 2  # condition, real, reference, 2 + 2 redraws


def test_models_without_per_scale_codes_get_a_note(nested_registry):
    spec = {
        "generator": {"type": "core.simple_generator", "num_classes": K, "ngf": 8, "z_dim": 3},
        "injector": {"type": "core.gaussian"},
    }
    torch.manual_seed(0)
    model = synth.compose(spec).eval()
    cond, real = _inputs()
    with torch.no_grad():
        got = demo_pictures(model, cond, cond, real, None, 6, torch.Generator())
    assert got == [DemoPicture("scale_edit", note=NO_SCALE_CODES)]
    assert scale_edits(model, cond, [0], 2, torch.Generator()) is None


def test_synth_demo_writes_the_scale_edit_picture(nested_registry, tmp_path):
    """Through the hook: the nested-scale outpainting recipe at demo size (a pyramid decoder
    whose prior draws one code per level)."""
    from synth.demo import run_demo

    result = run_demo(
        "nested_scale.celeba_outpaint",
        out_dir=tmp_path,
        steps=1,
        size=32,
        num_samples=2,
        log=lambda *_: None,
    )
    assert result.files["scale_edit"] == tmp_path / "scale_edit.png"
    assert (tmp_path / "scale_edit.png").is_file()
    assert any(n.startswith("scale_edit.png: per photo the reference sample") for n in result.notes)
