"""collage.spatial_adain by name in core's AdaIN generator (core.simple_generator's norm slot)
and in the nested-scale decoder's norm slot (nested_scale.pyramid_decoder): with zero class
embeddings it is core.adain; a painted class map changes the image where it is painted, and a
per-pixel mix of two classes at intensity α mixes their modulations linearly (eq. 2)."""

from __future__ import annotations

import torch

import synth

K, S, SIZE = 4, 4, 32


def _spec(norm: dict) -> dict:
    return {
        "generator": {
            "type": "core.simple_generator",
            "num_classes": K,
            "ngf": 4,
            "num_stages": 3,
            "style_dim": S,
            "norm": norm,
        },
        "injector": {"type": "core.gaussian"},
    }


def _cond(weights: torch.Tensor | None = None) -> synth.Condition:
    labels = torch.zeros(2, SIZE, SIZE, dtype=torch.long)
    labels[:, :, SIZE // 2 :] = 1
    return synth.Condition(label_map=labels, num_classes=K, class_weights=weights)


def _styles() -> synth.Latents:
    g = torch.Generator().manual_seed(3)
    return synth.Latents(styles=[torch.randn(2, S, generator=g) for _ in range(3)])


def _model(registry_with) -> synth.SynthesisModel:
    registry_with("collage")
    torch.manual_seed(0)
    model = synth.compose(_spec({"type": "collage.spatial_adain", "condition": "any"})).eval()
    with torch.no_grad():  # make the classes' modulations clearly different
        for name, p in model.generator.named_parameters():
            if "class_gamma" in name or "class_beta" in name:
                p.normal_(0, 1.0)
    return model


def test_zero_class_embeddings_give_core_adain(registry_with):
    registry_with("collage")
    torch.manual_seed(0)
    plain = synth.compose(_spec({"type": "core.adain"})).eval()
    spatial = synth.compose(_spec({"type": "collage.spatial_adain", "condition": "any"})).eval()
    mapped = {}
    for name, p in spatial.generator.state_dict().items():
        if "class_gamma" in name or "class_beta" in name:
            mapped[name] = torch.zeros_like(p)
        else:
            mapped[name] = plain.generator.state_dict()[name]
    spatial.generator.load_state_dict(mapped)
    with torch.no_grad():
        a = plain.generate(_cond(), _styles()).image
        b = spatial.generate(_cond(), _styles()).image
    torch.testing.assert_close(a, b)


def test_a_painted_class_map_edits_where_it_is_painted(registry_with):
    model = _model(registry_with)
    base = torch.nn.functional.one_hot(_cond().label_map, K).permute(0, 3, 1, 2).float()
    painted = base.clone()
    painted[:, :, : SIZE // 4, : SIZE // 4] = 0
    painted[:, 3, : SIZE // 4, : SIZE // 4] = 1  # class 3 in the top-left corner
    with torch.no_grad():
        before = model.generate(_cond(base), _styles()).image
        plain = model.generate(_cond(), _styles()).image
        after = model.generate(_cond(painted), _styles()).image
    # the one-hot label map read as class weights is the label map itself
    torch.testing.assert_close(before, plain)
    change = (after - before).abs().mean(1)  # [B, H, W]
    corner = change[:, : SIZE // 4, : SIZE // 4].mean()
    far = change[:, SIZE // 2 :, SIZE // 2 :].mean()
    assert corner > 3 * far, (float(corner), float(far))


def test_intensity_mixes_the_modulations_linearly(registry_with):
    model = _model(registry_with)
    norm = model.generator.stages[0].norm
    x = torch.randn(2, model.generator.stage_channels[0], 8, 8)
    lat = _styles()

    def at(alpha: float) -> torch.Tensor:
        w = torch.zeros(2, K, 8, 8)
        w[:, 0], w[:, 2] = 1 - alpha, alpha
        cond = synth.Condition(class_weights=w, num_classes=K)
        return norm(x, synth.Context(cond, lat).at(0))

    with torch.no_grad():
        a0, a1, mid = at(0.0), at(1.0), at(0.3)
    torch.testing.assert_close(mid, 0.7 * a0 + 0.3 * a1, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- nested-scale decoder

DECODER = {
    "type": "nested_scale.pyramid_decoder",
    "input": "label_map",
    "num_classes": K,
    "resolution": SIZE,
    "num_scales": 4,
    "channels": 8,
    "encoder_channels": [8, 8, 8, 8, 8],
    "style_dim": S,
    "mapping_layers": 2,
    "norm": {"type": "collage.spatial_adain", "condition": "any"},
}


def _decoder(registry_with) -> synth.SynthesisModel:
    registry_with("collage", "nested_scale")
    torch.manual_seed(0)
    spec = {"generator": DECODER, "injector": {"type": "core.gaussian", "shared_styles": True}}
    model = synth.compose(spec).eval()
    with torch.no_grad():
        for name, p in model.generator.named_parameters():
            if "class_gamma" in name or "class_beta" in name:
                p.normal_(0, 1.0)
    return model


def test_spatial_adain_mixes_two_classes_per_pixel_in_the_nested_scale_decoder(registry_with):
    """The decoder's norm slot by name: every conv's AdaIN reads the class map (a painted map
    in the Condition changes every pyramid level); class 3 painted over the left half at the
    finest scale's two layers (collage.label_collage) changes the left half; and at one block
    a per-pixel mix of classes 0 and 2 at α is (1 - α)·class 0 + α·class 2 (eq. 2)."""
    model = _decoder(registry_with)
    g = model.generator
    norms = [m for m in g.modules() if type(m).__name__ == "SpatialAdaIN"]
    assert len(norms) == 4 * 2  # two convs per scale
    cond = _cond()
    lat = model.injector.prior(cond, torch.Generator().manual_seed(4))
    base = torch.nn.functional.one_hot(cond.label_map, K).permute(0, 3, 1, 2).float()
    painted = base.clone()
    painted[:, :, :, : SIZE // 2] = 0
    painted[:, 3, :, : SIZE // 2] = 1  # class 3 over the left half
    with torch.no_grad():
        plain = model.generate(cond, lat)
        before = model.generate(_cond(base), lat)
        after = model.generate(_cond(painted), lat)
        finest = model.sample(
            cond,
            1,
            sampler="collage.label_collage",
            class_weights=painted,
            layers=[6, 7],
            latents=lat,
        )
    torch.testing.assert_close(before.image, plain.image)  # the one-hot map is the label map
    # every pyramid level reads the Condition's map (the coarsest too)
    assert (after.pyramid[0] - before.pyramid[0]).abs().max() > 1e-3
    change = (finest.image - before.image).abs().mean(1)
    left, right = change[:, :, : SIZE // 4].mean(), change[:, :, 3 * SIZE // 4 :].mean()
    assert left > 3 * right, (float(left), float(right))

    x = torch.randn(2, 8, 8, 8)
    styles = synth.Latents(styles=[torch.randn(2, 8) for _ in range(4)])  # mapped codes

    def at(alpha: float) -> torch.Tensor:
        w = torch.zeros(2, K, 8, 8)
        w[:, 0, :, :4] = 1 - alpha  # left: classes 0 and 2 mixed at α
        w[:, 2, :, :4] = alpha
        w[:, 1, :, 4:] = 1  # right: class 1 throughout
        c = synth.Condition(class_weights=w, num_classes=K)
        return norms[2](x, synth.Context(c, styles).at(1))

    with torch.no_grad():
        a0, a1, mid = at(0.0), at(1.0), at(0.3)
    torch.testing.assert_close(mid, 0.7 * a0 + 0.3 * a1, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(a0[..., 4:], a1[..., 4:])  # the right half keeps class 1
    assert (a0[..., :4] - a1[..., :4]).abs().max() > 1e-2
