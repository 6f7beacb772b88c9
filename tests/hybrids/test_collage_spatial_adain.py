"""collage.spatial_adain in core's AdaIN generator (core.simple_generator's norm slot): with zero
class embeddings it is core.adain; a painted class map changes the image where it is painted,
and a uniform map at intensity α mixes the two classes' modulations linearly (eq. 2)."""

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
