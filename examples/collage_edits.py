"""Label collage and feature blend pictures for the collage plugin's README (Suzuki et al.).

Trains a small ``collage.tiny`` SNGAN (32 px, sCBN generator, SN projection discriminator,
hinge loss, Adam 2e-4 β (0, 0.9) as the official configs) on CPU for ``--minutes`` on the
embedded demo photos (``synth.data.demo``: random crops of the 8 photos that ship in the
scikit-image wheel), **each photo its own class** (K = 8: astronaut, chelsea the cat, coffee,
rocket, motorcycle, Hubble deep field, retina, immunohistochemistry). Minutes of training on
2 cores make a model that has learnt each class's colours and coarse layout, not photographs:
the pictures show what the edits do, not the paper's image quality.

Writes (``--out``, default ``packages/plugins-collage/docs/``):

``collage_label.jpg``
    Label collaging (eq. 2, §5.3, Fig. 9/12): one generated image of a base class, a second
    class painted into a region (the right half) at continuous intensities α, the collage
    map acting on all sCBN layers, on the coarse ones only (the first block: 4→8 px) or on
    the fine ones only (the last block: 16→32 px).
``collage_blend.jpg``
    Feature blending (eq. 3): two samples of one class; the reference's features replace the
    target's inside a region (the right half), at every stage, at the first stage only (4×4)
    or at a middle one (16×16).
``collage_model/``
    The trained model (``synth.load``).

    .venv/bin/python examples/collage_edits.py                 # 5 minutes on one CPU core
    .venv/bin/python examples/collage_edits.py --minutes 1 --out /tmp/collage
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path

# before torch loads libgomp: spin-waiting threads stall on a shared machine (bench/README.md)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
import torch.nn.functional as F

import synth
import synth.data
import synth.viz
from synth_collage import collage_map

ROOT = Path(__file__).resolve().parents[1]
SIZE = 32
#: The cell side in the pictures: 32 px samples drawn ×3 (nearest) so they can be seen.
CELL = 96


def build_model(num_classes: int, ch: int, seed: int) -> synth.SynthesisModel:
    """``collage.tiny`` with one class per demo photo and base width ``ch``."""
    spec = copy.deepcopy(synth.recipes()["collage.tiny"].spec)
    spec["generator"].update(num_classes=num_classes, ch=ch)
    spec["discriminator"].update(ch=ch)
    torch.manual_seed(seed)
    return synth.compose(spec)


def photo_crops(epochs: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """Random crops of the demo photos ``[N, 3, 32, 32]`` in [-1, 1] and their photo ids."""
    data = synth.data.demo(SIZE, 8, "train", seed)
    images, ids = [], []
    for epoch in range(epochs):
        data.set_epoch(epoch)
        for i in range(len(data)):
            item = data[i]
            images.append(item["real"])
            ids.append(item["index"] % len(data.names))
    return torch.stack(images), torch.tensor(ids), tuple(data.names)


def train(
    model: synth.SynthesisModel,
    images: torch.Tensor,
    ids: torch.Tensor,
    *,
    minutes: float,
    batch: int,
    n_dis: int,
    seed: int,
) -> dict[str, float]:
    """Hinge GAN training (the official loss and Adam settings), ``n_dis`` D steps per G step,
    until ``minutes`` have passed. Returns what ran (steps, seconds, last losses)."""
    g, d = model.generator, model.discriminator
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.0, 0.9))
    k = g.config.num_classes
    rng = torch.Generator().manual_seed(seed)
    model.train()
    start, steps, loss_d, loss_g = time.perf_counter(), 0, 0.0, 0.0

    def fake(b: int) -> tuple[torch.Tensor, synth.Condition]:
        cond = synth.Condition(
            class_id=torch.randint(0, k, (b,), generator=rng), num_classes=k, size=(SIZE, SIZE)
        )
        return g(cond, model.injector.prior(cond, rng)).image, cond

    while time.perf_counter() - start < minutes * 60:
        for _ in range(n_dis):
            pick = torch.randint(0, len(images), (batch,), generator=rng)
            real = synth.Condition(class_id=ids[pick], num_classes=k, size=(SIZE, SIZE))
            with torch.no_grad():
                x_fake, cond_fake = fake(batch)
            out_real = d(images[pick], real).logits[0]
            out_fake = d(x_fake, cond_fake).logits[0]
            ld = F.relu(1 - out_real).mean() + F.relu(1 + out_fake).mean()
            opt_d.zero_grad(set_to_none=True)
            ld.backward()
            opt_d.step()
        x_fake, cond_fake = fake(batch)
        lg = -d(x_fake, cond_fake).logits[0].mean()
        opt_g.zero_grad(set_to_none=True)
        lg.backward()
        opt_g.step()
        steps += 1
        loss_d, loss_g = ld.item(), lg.item()
        if steps % 50 == 0:
            print(f"  step {steps}: loss_d {loss_d:.3f} loss_g {loss_g:.3f}", flush=True)
    model.eval()
    return {
        "generator_steps": steps,
        "discriminator_steps": steps * n_dis,
        "seconds": round(time.perf_counter() - start, 1),
        "loss_d": round(loss_d, 4),
        "loss_g": round(loss_g, 4),
    }


def big(images: torch.Tensor) -> list[torch.Tensor]:
    """``[B, 3, 32, 32]`` -> B cells of ``CELL`` px (nearest, so pixels stay pixels)."""
    return list(F.interpolate(images.clamp(-1, 1), size=(CELL, CELL), mode="nearest"))


def outline(image: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """``image [3, h, w]`` with the border of ``region [h, w]`` drawn in white."""
    r = region.float()[None, None]
    edge = (F.max_pool2d(r, 3, 1, 1) - r)[0, 0] > 0
    out = image.clone()
    out[:, edge] = 1.0
    return out


def label_collage_picture(
    model: synth.SynthesisModel, base: int, painted: int, names: tuple[str, ...], seed: int
) -> torch.Tensor:
    """Rows: layers (all / coarse / fine) × 2 codes; columns: α = 0, 0.25, 0.5, 0.75, 1."""
    k = model.generator.config.num_classes
    n_layers = 2 * len(model.generator.stages[1:])  # two sCBN layers per block
    layer_sets = {
        "all layers": list(range(n_layers)),
        "coarse (block 1)": [0, 1],
        "fine (last block)": [n_layers - 2, n_layers - 1],
    }
    alphas = (0.0, 0.25, 0.5, 0.75, 1.0)
    g = torch.Generator().manual_seed(seed)
    cond = synth.Condition(
        class_id=torch.full((2,), base), num_classes=k, size=(SIZE, SIZE)
    )  # two codes of the base class
    lat = model.injector.prior(cond, g)
    region = torch.zeros(2, 1, SIZE, SIZE)
    region[..., SIZE // 2 :] = 1.0
    rows = []
    for layers in layer_sets.values():
        cells: list[list[torch.Tensor]] = [[], []]
        for alpha in alphas:
            w = collage_map(cond.class_id, painted, region, k, intensity=1.0)
            out = model.sample(
                cond,
                1,
                sampler="collage.label_collage",
                class_weights=w,
                layers=layers,
                intensity=alpha,
                latents=lat,
            ).image
            for i, cell in enumerate(big(out)):
                cells[i].append(outline(cell, F.interpolate(region, size=(CELL, CELL))[0, 0]))
        rows.extend(cells)
    labels = [f"a = {a:g}" for a in alphas]  # ASCII: the default PIL font has no Greek
    grid = synth.viz.image_grid(rows, labels=labels)
    print(
        f"  label collage: base {names[base]}, painted {names[painted]}; row pairs: "
        + ", ".join(layer_sets)
    )
    return grid


def feature_blend_picture(
    model: synth.SynthesisModel, cls: int, names: tuple[str, ...], seed: int
) -> torch.Tensor:
    """Rows: 3 pairs of samples of class ``cls``; columns: target, reference, blends."""
    k = model.generator.config.num_classes
    g = torch.Generator().manual_seed(seed)
    cond = synth.Condition(class_id=torch.full((3,), cls), num_classes=k, size=(SIZE, SIZE))
    target, reference = model.injector.prior(cond, g), model.injector.prior(cond, g)
    region = torch.zeros(3, 1, SIZE, SIZE)
    region[..., SIZE // 2 :] = 1.0
    n = len(model.generator.stages)
    columns = {"every stage": None, "stage 0 (4x4)": [0], f"stage {n - 2} (16x16)": [n - 2]}
    tgt_img = model.generate(cond, target).image
    ref_img = model.generate(cond, reference).image
    blends = [
        model.sample(
            cond,
            1,
            sampler="collage.feature_blend",
            masks=region,
            target=target,
            references=[reference],
            layers=layers,
        ).image
        for layers in columns.values()
    ]
    edge = F.interpolate(region, size=(CELL, CELL))[0, 0]
    rows = []
    for i in range(3):
        row = [big(tgt_img)[i], big(ref_img)[i]]
        row += [outline(big(b)[i], edge) for b in blends]
        rows.append(row)
    print(f"  feature blend: class {names[cls]}, columns target, reference, " + ", ".join(columns))
    return synth.viz.image_grid(rows, labels=["target", "reference", *columns])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0, help="training time on the CPU")
    ap.add_argument("--ch", type=int, default=8, help="base width of G and D (collage.tiny: 8)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--n-dis", type=int, default=2, help="D steps per G step (official: 5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--base", default="hubble_deep_field", help="label collage: the base class (photo)"
    )
    ap.add_argument(
        "--painted", default="immunohistochemistry", help="label collage: the painted class"
    )
    ap.add_argument(
        "--model",
        type=Path,
        default=None,
        help="draw the pictures with this trained model (a collage_model/ folder) instead of "
        "training; the training record of its collage_edits.json is kept",
    )
    ap.add_argument("--blend-class", default="astronaut", help="feature blend: the class")
    ap.add_argument("--out", type=Path, default=ROOT / "packages/plugins-collage/docs")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    names = tuple(synth.data.demo(SIZE, 8, "all").names)
    if args.model is not None:
        model = synth.load(args.model)
        record = args.model.parent / "collage_edits.json"
        run = json.loads(record.read_text())["training"] if record.is_file() else {}
        command = json.loads(record.read_text())["command"] if record.is_file() else ""
    else:
        images, ids, names = photo_crops(epochs=4, seed=args.seed)
        model = build_model(len(names), args.ch, args.seed)
        print(f"training collage.tiny (K={len(names)}, ch {args.ch}) for {args.minutes} min ...")
        run = train(
            model,
            images,
            ids,
            minutes=args.minutes,
            batch=args.batch,
            n_dis=args.n_dis,
            seed=args.seed,
        )
        command = "python examples/collage_edits.py " + " ".join(
            f"--{k.replace('_', '-')} {v}"
            for k, v in vars(args).items()
            if k not in ("out", "model")
        )
        print(f"  {run}")
    args.out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        label = label_collage_picture(
            model, names.index(args.base), names.index(args.painted), names, args.seed + 1
        )
        blend = feature_blend_picture(model, names.index(args.blend_class), names, args.seed + 2)
    synth.viz.save_image(label, args.out / "collage_label.jpg")
    synth.viz.save_image(blend, args.out / "collage_blend.jpg")
    if args.model is None:
        model.save_pretrained(args.out / "collage_model")
    settings = {
        "command": command,
        "pictures": {"base": args.base, "painted": args.painted, "blend_class": args.blend_class},
        "classes": list(names),
        "training": run,
        "threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
    }
    (args.out / "collage_edits.json").write_text(json.dumps(settings, indent=2) + "\n")
    print(f"wrote {args.out}/collage_label.jpg, collage_blend.jpg, collage_model/")


if __name__ == "__main__":
    main()
