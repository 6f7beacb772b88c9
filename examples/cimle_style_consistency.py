"""Style consistency of cIMLE codes across semantic layouts (Fig. 12 of the cIMLE paper).

Li, Peng, Zhang & Malik, "Multimodal Image Synthesis with Conditional Implicit Maximum
Likelihood Estimation", Fig. 12: the same random vector applied to very different
segmentation maps gives images of a consistent style (e.g. the same sunset lighting). This
script draws ``--codes`` codes once from the noise encoder's prior and renders every
(code, layout) pair for ``--layouts`` label maps of the demo set, in one batched generator
call. The grid has one row per code and one column per layout, under a header row with the
layouts themselves; a trained model keeps the style of each row across its columns.

For ``cimle.noise_encoder`` the code is the low-dimensional noise ``z̃``
(``Latents.extras["cimle.noise"]``): the encoder maps ``one_hot(layout) ⊕ z̃`` to the
generator's noise channels, so "the same code" is the same ``z̃`` encoded with each layout
(``injector.draw`` once, then ``injector.from_codes`` per layout), not the same encoder output.

Without ``--model`` the script composes ``cimle.gta5_layout`` scaled down (untrained, random
weights: it checks the plumbing; only a trained model shows the effect). On a trained model::

    # cimle_layout.yaml
    model:
      base: cimle.gta5_layout
      generator: {num_classes: 8, num_levels: 5, channels: [256, 256, 128, 64, 32]}
      injector: {hidden: 64}
    data: {type: demo, size: 64, num_classes: 8}
    train: {steps: 20000, batch_size: 16, run_dir: runs/cimle_layout, optimizer: {lr: 1.0e-4}}

    synth train cimle_layout.yaml
    python examples/cimle_style_consistency.py --model runs/cimle_layout/model --size 64 \\
        --out style.png

``--size`` must be a multiple of ``2 ** (num_levels - 1)`` (the CRN's coarsest level), and the
layouts come from ``synth.data.demo`` with the generator's ``num_classes``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import synth
import synth.data
import synth.viz
from synth_cimle.injectors import NOISE_KEY

#: Classes of the demo label maps used by the composed (untrained) model.
DEMO_CLASSES = 8

#: ``cimle.gta5_layout`` scaled down: 4 CRN levels (base 4×4 at 32 px), narrow widths, a small
#: noise encoder, and a pixel-only distance (inference never uses it; the recipe's VGG19
#: distance would need ImageNet weights).
SMALL_SPEC = {
    "base": "cimle.gta5_layout",
    "generator": {"num_classes": DEMO_CLASSES, "num_levels": 4, "channels": [64, 48, 32, 32]},
    "injector": {"hidden": 32},
    "losses": {"imle": {"preset": "none", "pixel_weight": 1.0}},
}


def layout_condition(size: int, num_classes: int, count: int) -> tuple[synth.Condition, object]:
    """The first ``count`` demo label maps at ``size`` px: ``(Condition [M, H, W], palette)``."""
    ds = synth.data.demo(size, num_classes, split="all")
    photos = ds.photos
    if not 1 <= count <= len(photos):
        raise SystemExit(f"--layouts {count}: the demo set has 1..{len(photos)} layouts")
    labels = torch.stack([p["label_map"] for p in photos[:count]]).long()
    return synth.Condition(label_map=labels, num_classes=num_classes), ds.palette


def draw_codes(injector, layouts: synth.Condition, n: int, seed: int) -> torch.Tensor:
    """``n`` raw codes ``z̃ [n, noise_dim, h, w]`` from the injector's prior, drawn once."""
    probe = synth.Condition(
        label_map=layouts.label_map[:1].expand(n, -1, -1), num_classes=layouts.num_classes
    )
    g = torch.Generator(device=layouts.label_map.device).manual_seed(seed)
    return injector.draw(probe, generator=g).extras[NOISE_KEY]


@torch.no_grad()
def render(model, layouts: synth.Condition, codes: torch.Tensor) -> torch.Tensor:
    """Every (code, layout) pair in one generator call: ``[N, M, 3, H, W]`` in ``[-1, 1]``.

    Code ``i`` is the same raw ``z̃`` for all ``M`` layouts; the batch is ordered
    ``(code, layout)``.
    """
    assert layouts.label_map is not None
    n, m = codes.shape[0], layouts.label_map.shape[0]
    cond = synth.Condition(
        label_map=layouts.label_map.repeat(n, 1, 1), num_classes=layouts.num_classes
    )
    raw = synth.Latents(extras={NOISE_KEY: codes.repeat_interleave(m, dim=0)})
    latents = model.injector.from_codes(cond, raw)
    image = model.generate(cond, latents).image
    return image.float().cpu().view(n, m, *image.shape[1:])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, help="a saved model (synth.load); default: compose")
    p.add_argument("--codes", type=int, default=4, help="codes (grid rows)")
    p.add_argument("--layouts", type=int, default=4, help="demo label maps (grid columns)")
    p.add_argument("--size", type=int, default=64, help="image side in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=Path("cimle_style_consistency.png"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Run the script; returns ``{"path", "images" [N, M, 3, H, W], "codes", "model",
    "layouts"}`` (for tests and notebooks)."""
    args = parse_args(argv)
    if args.codes < 1:
        raise SystemExit(f"--codes {args.codes}: give at least one code")
    torch.manual_seed(args.seed)
    model = synth.load(args.model) if args.model else synth.compose(SMALL_SPEC)
    model = model.to(args.device).eval()
    if model.injector is None or not hasattr(model.injector, "draw"):
        raise SystemExit("the model's injector has no draw/from_codes (compose a cIMLE model)")
    num_classes = getattr(model.generator.config, "num_classes", DEMO_CLASSES)
    multiple = getattr(model.generator, "size_multiple", 1)
    if args.size % multiple:
        raise SystemExit(f"--size {args.size}: must be a multiple of {multiple} for this model")

    layouts, palette = layout_condition(args.size, num_classes, args.layouts)
    layouts = layouts.to(args.device)
    codes = draw_codes(model.injector, layouts, args.codes, args.seed)
    images = render(model, layouts, codes)

    header = list(synth.viz.condition_tiles(layouts, palette))
    grid = synth.viz.image_grid([header, *(list(row) for row in images)])
    path = synth.viz.save_image(grid, args.out)
    print(f"wrote {path}: {args.codes} codes × {args.layouts} layouts at {args.size} px")
    return {"path": path, "images": images, "codes": codes, "model": model, "layouts": layouts}


if __name__ == "__main__":
    main()
