"""Neural-collage benchmarks (issue 14, item 8): feature blending with R references in one
batched forward vs the official per-reference loop, and manifold projection of 8 photos batched
vs one at a time.

Rows (``run()``, all *comparisons*, outputs asserted equal before timing):

1. feature blending (eq. 3) at every stage of ``collage.resnet_generator`` (after ``l1`` and
   after every block, as the official demo), ``R`` = 1, 4, 8 references, inference. Reference:
   the official scheme -- one forward per reference to collect its features, then the target's
   forward with each stage's output replaced (``_loop_reference`` of
   ``tests/collage/test_feature_blend.py``, a re-implementation: the authors' code is Chainer);
   ours: the ``collage.feature_blend`` sampler, target and references in ONE batched forward.
2. manifold projection (§4, eq. 4 + 0.2 MSE, Adam) of 8 photos: ours, one call of
   ``synth_collage.project`` on the batch of 8; reference: 8 calls with one photo each (the
   official ``optimization.py`` projects one image per run). The codes are asserted equal.
   The quick run takes a few Adam steps (the paper's 200 scale both sides alike).

Variants (no reference, no ratio): per R, the batched forward of the same ``B·(R+1)`` rows
without the blend hooks (the floor) next to ``collage.feature_blend``: their difference is the
hooks' cost (the blend's arithmetic; since the hooks write the targets' rows in place at
inference, no copy of the R reference paths). On CPU the convolutions' cost grows linearly
with the rows whether batched or looped, so the batched/loop ratio there mostly reflects
per-call overhead and thread use at small batches; on a GPU batching also fills the device.

The model is ``collage.resnet_generator`` + ``collage.projection_discriminator`` +
``collage.resnet_encoder`` at ``--size`` px (128 default: the official 128 px widths
ch·{8,8,4,4,2,1}) with a reduced ``--ch`` (random weights: speed does not depend on them).

    .venv/bin/python bench/collage.py                      # quick rows -> results/<date>-cpu-collage.json
    .venv/bin/python bench/collage.py --size 128 --ch 64 --steps 200   # the paper's sizes
    .venv/bin/python bench/collage.py --repeats 7   # the lead's re-run on a quiet machine
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import Any

import harness
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

from tests.collage.test_feature_blend import _loop_reference  # noqa: E402

import synth  # noqa: E402
from synth_collage import ResNetEncoder, project  # noqa: E402

K = 8  # classes of the benchmark model


def collage_model(size: int, ch: int, device: str) -> synth.SynthesisModel:
    """The paper's GAN (random weights) at ``size`` px with base width ``ch``, eval mode."""
    torch.manual_seed(0)
    spec = {
        "condition": ["class_id"],
        "generator": {
            "type": "collage.resnet_generator",
            "num_classes": K,
            "resolution": size,
            "ch": ch,
            "z_dim": 128,
        },
        "injector": {"type": "core.gaussian"},
        "discriminator": {"type": "collage.projection_discriminator", "resolution": size, "ch": ch},
    }
    return synth.compose(spec).to(device).eval()


def _cond(b: int, size: int, device: str) -> synth.Condition:
    return synth.Condition(
        class_id=torch.arange(b, device=device) % K, num_classes=K, size=(size, size)
    )


# --------------------------------------------------------------------------- feature blending


def blend_comparison(
    model: synth.SynthesisModel, r: int, batch: int, repeats: int, device: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Feature blending with ``r`` references at every stage: per-reference loop vs batched
    (the comparison row), and the batched forward without blending vs with it (variants)."""
    size = model.generator.config.resolution
    cond = _cond(batch, size, device)
    g = torch.Generator(device=device).manual_seed(r)
    tgt = model.injector.prior(cond, g)
    refs = [model.injector.prior(cond, g) for _ in range(r)]
    masks = torch.rand(batch, r, size, size, generator=g, device=device)
    masks = masks / masks.sum(1, keepdim=True) * 0.9  # the target keeps 10 % everywhere
    per_layer = {s: masks for s in range(len(model.generator.stages))}

    @torch.no_grad()
    def reference() -> torch.Tensor:
        return _loop_reference(model, cond, tgt, refs, per_layer)

    @torch.no_grad()
    def ours() -> torch.Tensor:
        out = model.sample(
            cond, 1, sampler="collage.feature_blend", masks=masks, references=refs, target=tgt
        )
        return out.image

    torch.testing.assert_close(ours(), reference(), rtol=1e-4, atol=1e-4)
    setting = (
        f"R={r}, B={batch}, {size} px, ch {model.generator.config.ch}, "
        f"{len(model.generator.stages)} stages blended, inference"
    )
    row = harness.compare(
        f"collage feature blend R={r}: per-reference loop vs batched",
        setting,
        reference,
        ours,
        repeats=repeats,
        device=device,
    )
    rows_all = synth.Latents.cat([tgt, *refs])
    cond_all = cond.repeat_interleave(r + 1)

    @torch.no_grad()
    def floor() -> torch.Tensor:
        return model.generator(cond_all, rows_all).image

    variants = harness.interleaved_variants(
        setting,
        {
            f"collage R={r}: batched forward of the B·(R+1) rows, no blending": floor,
            f"collage R={r}: collage.feature_blend (same rows + blend hooks)": ours,
        },
        repeats=repeats,
        device=device,
    )
    return row, variants


# --------------------------------------------------------------------------- projection


def projection_comparison(
    model: synth.SynthesisModel, photos: int, steps: int, repeats: int, device: str
) -> dict[str, Any]:
    """Manifold projection of ``photos`` photos: one at a time vs batched."""
    size = model.generator.config.resolution
    torch.manual_seed(1)
    enc = ResNetEncoder(z_dim=128, ch=model.generator.config.ch, image_size=size).to(device).eval()
    g = torch.Generator(device=device).manual_seed(2)
    x = torch.rand(photos, 3, size, size, generator=g, device=device) * 2 - 1
    cond = _cond(photos, size, device)

    def reference() -> torch.Tensor:
        return torch.cat(
            [
                project(model, x[i : i + 1], cond[i : i + 1], steps=steps, encoder=enc).z
                for i in range(photos)
            ]
        )

    def ours() -> torch.Tensor:
        return project(model, x, cond, steps=steps, encoder=enc).z

    # equal up to float rounding: batched and single convs differ in the last bits, and
    # Adam's m / sqrt(v) normalisation amplifies that where a gradient is near zero
    got, want = ours(), reference()
    torch.testing.assert_close(got, want, rtol=0, atol=5e-3)
    max_diff = float((got - want).abs().max())
    setting = (
        f"{photos} photos, {steps} Adam steps, {size} px, ch {model.generator.config.ch}, "
        "encoder start, D feature cosine + 0.2 MSE"
    )
    row = harness.compare(
        f"collage projection of {photos} photos: one at a time vs batched",
        setting,
        reference,
        ours,
        repeats=repeats,
        device=device,
    )
    row["max_abs_diff_z"] = max_diff
    return row


# --------------------------------------------------------------------------- run


def run(
    size: int = 128,
    ch: int = 16,
    batch: int = 2,
    references: tuple[int, ...] = (1, 4, 8),
    photos: int = 8,
    steps: int = 3,
    repeats: int = 3,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """The blending rows (one per ``R``) and the projection row."""
    device = str(device)
    model = collage_model(size, ch, device)
    rows, variants = [], []
    for r in references:
        row, extra = blend_comparison(model, r, batch, repeats, device)
        rows.append(row)
        variants.extend(extra)
    rows.append(projection_comparison(model, photos, steps, repeats, device))
    return {
        "benchmark": "collage",
        "settings": {
            "model": {"resolution": size, "ch": ch, "num_classes": K, "z_dim": 128},
            "blend": {"references": list(references), "batch": batch, "layers": "every stage"},
            "projection": {"photos": photos, "steps": steps, "lr": 0.075, "pixel_weight": 0.2},
            "repeats": repeats,
            "device": device,
        },
        "rows": rows,
        "variants": variants,
        "errors": [],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128, help="output side (32, 64, 128, 256)")
    ap.add_argument("--ch", type=int, default=16, help="base width (official 128 px: 64)")
    ap.add_argument("--batch", type=int, default=2, help="blending: inputs per call")
    ap.add_argument("--photos", type=int, default=8, help="projection: photos")
    ap.add_argument("--steps", type=int, default=3, help="projection: Adam steps (paper: 200)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats (medians)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    date = datetime.date.today().isoformat()
    result = run(
        size=args.size,
        ch=args.ch,
        batch=args.batch,
        photos=args.photos,
        steps=args.steps,
        repeats=args.repeats,
        device=args.device,
    )
    kind = "cpu" if args.device == "cpu" else "gpu"
    doc = {"date": date, "machine": harness.machine(args.device), **result}
    for r in result["rows"]:
        print(f"{r['name']}  [{r['setting']}]  ratio {r['ratio']:.2f}")
    out = RESULTS / f"{date}-{kind}-collage.json"
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
