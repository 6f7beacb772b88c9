"""cIMLE benchmark: code selection (official loop vs batched/chunked) and training throughput.

Selection: m codes per image for B images, SR ×4 at 32→128 px, on CPU. The official SRIM
formulation scores each (image, code) with a batch-1 generator forward and the full distance
(which recomputes the target's VGG features every call), in Python loops; ours
(``synth_cimle.select_codes``) draws the same codes, runs generator + distance on chunks of
``--chunk`` candidates and computes each target's features once. Same generator, same
distance, same codes: the chosen indices are asserted equal. Then a short training run
(``synth.Trainer`` + ``cimle.imle``) gives images/s; peak memory is the process's max RSS.
``run()`` returns the rows for ``bench/run_all.py`` (selection timed interleaved, median of
``repeats``; the CLI keeps its one-shot timing by default). The SR quality run (``--sr-steps``,
``--sr-only``, ~20 min) is never part of ``run()``.

    .venv/bin/python bench/cimle.py                 # the issue's setting (m=100, 16 images)
    .venv/bin/python bench/cimle.py --images 4      # quicker

Prints a table and writes bench/results/<date>-cpu-cimle.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import harness
import torch

import synth
import synth.train
from synth_cimle import select_codes
from synth_cimle.data import DemoSuperResolution, bicubic_upsample, psnr
from synth_cimle.objectives import _mix


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _spec(
    nf: int, nb: int, gc: int, codes: int, chunk: int, inner_steps: int, vgg_weights: str
) -> dict:
    return {
        "generator": {
            "type": "cimle.rrdb_generator",
            "scale": 4,
            "nf": nf,
            "nb": nb,
            "gc": gc,
            "code_channels": 5,
        },
        "injector": {"type": "cimle.spatial_code"},
        "losses": {"imle": {"type": "cimle.distance", "preset": "sr", "weights": vgg_weights}},
        "objective": {
            "type": "cimle.imle",
            "num_codes": codes,
            "chunk_size": chunk,
            "inner_steps": inner_steps,
            "minibatch": 4,
        },
    }


def official_selection(model, cond, real, m: int, seed: int) -> torch.Tensor:
    """The official formulation: per image, per code, a batch-1 forward and the full loss."""
    dist = model.losses["imle"]
    # the same codes as select_codes (draw block 0, stage 0), on the same device
    g = torch.Generator(device=real.device).manual_seed(_mix(seed, 0, 0))
    raw = model.injector.draw(cond.repeat_interleave(m), g)
    chosen = []
    with torch.no_grad():
        for i in range(cond.batch_size):
            best, best_j = float("inf"), -1
            for j in range(m):
                r = i * m + j
                out = model.generator(cond[i : i + 1], raw[r : r + 1]).image
                d = float(dist.distance(out, real[i : i + 1])[0])
                if d < best:
                    best, best_j = d, j
            chosen.append(best_j)
    return torch.tensor(chosen)


def sr_quality(args: argparse.Namespace) -> dict:
    """Short CPU SR ×4 run on the demo photos: best-of-10 PSNR vs bicubic on held-out crops."""
    from synth.data import make_collate

    torch.manual_seed(0)
    spec = {
        "generator": {
            "type": "cimle.rrdb_generator",
            "scale": 4,
            "nf": args.sr_nf,
            "nb": args.sr_nb,
            "gc": args.sr_nf // 2,
            "code_channels": 2,
            "residual": args.sr_residual,
        },
        "injector": {"type": "cimle.spatial_code"},
        "losses": {"imle": {"type": "cimle.distance", "preset": "none", "pixel_weight": 1.0}},
        "objective": {"type": "cimle.imle", "num_codes": 8, "inner_steps": 16, "minibatch": 8},
    }
    model = synth.compose(spec)
    train = DemoSuperResolution(32, 4, "train", length=512)
    cfg = synth.train.TrainerConfig(
        steps=args.sr_steps,
        batch_size=16,
        optimizer={"lr": args.sr_lr, "betas": (0.9, 0.999)},
        decay_start=args.sr_steps // 2,
        sample_every=None,
        run_dir=tempfile.mkdtemp(),
        checkpoint_every=10**6,
        progress=False,
        device="cpu",
    )
    t0 = time.perf_counter()
    synth.train.Trainer(model, train, cfg).fit()
    seconds = time.perf_counter() - t0
    test = DemoSuperResolution(32, 4, "test", length=64, seed=1)
    b = make_collate(test)([test[i] for i in range(len(test))])
    model.eval()
    with torch.no_grad():
        cond = synth.Condition(image=b.cond.image, size=(32, 32))
        s = model.sample(cond, 10, generator=torch.Generator().manual_seed(0)).image
        s = s.view(len(test), 10, 3, 32, 32)
        p = psnr(s.flatten(0, 1), b.real.repeat_interleave(10, 0)).view(len(test), 10)
        bic = psnr(bicubic_upsample(b.cond.image, 4), b.real)
    return {
        "steps": args.sr_steps,
        "generator": spec["generator"],
        "lr": args.sr_lr,
        "train_seconds": seconds,
        "psnr_best_of_10": float(p.max(1).values.mean()),
        "psnr_mean_sample": float(p.mean()),
        "psnr_bicubic": float(bic.mean()),
        "sample_l1_between_two_samples": float((s[:, 0] - s[:, 1]).abs().mean()),
    }


def _sr_key(args: argparse.Namespace) -> str:
    return "sr_quality" if args.sr_residual == "none" else f"sr_quality_residual_{args.sr_residual}"


def _sr_key(args: argparse.Namespace) -> str:
    return "sr_quality" if args.sr_residual == "none" else f"sr_quality_residual_{args.sr_residual}"


def run(
    images: int = 16,
    codes: int = 100,
    chunk: int = 100,
    *,
    nf: int = 32,
    nb: int = 2,
    gc: int = 16,
    inner_steps: int = 4,
    train_steps: int = 3,
    vgg_weights: str = "none",
    repeats: int = 3,
    warmup: int = 1,
    official: bool = True,
    device: torch.device | str = "cpu",
) -> dict[str, object]:
    """Code selection (official loop vs ours, a comparison row) and training throughput
    (a variant row) for ``images`` SR ×4 inputs with ``codes`` candidates each."""
    device = torch.device(device)
    torch.manual_seed(0)
    spec = _spec(nf, nb, gc, codes, chunk, inner_steps, vgg_weights)
    model = synth.compose(spec).to(device).eval()
    data = DemoSuperResolution(128, 4, "train", work=128, holdout=0.0, length=images)
    from synth.data import make_collate

    batch = make_collate(data)([data[i] for i in range(images)])
    cond = synth.Condition(image=batch.cond.image.to(device), size=(128, 128))
    real = batch.real.to(device)
    seed = 1234
    setting = (
        f"{images} images x {codes} codes (chunk {chunk}), SR x4 32->128, "
        f"RRDB nf {nf} nb {nb} gc {gc}, distance preset sr"
    )
    chosen: dict[str, torch.Tensor] = {}

    def ours() -> None:
        with torch.no_grad():
            sel = select_codes(
                model, cond, real, model.losses["imle"], codes, seed=seed, chunk_size=chunk
            )
        chosen["ours"] = sel.index.cpu()

    def reference() -> None:
        chosen["reference"] = official_selection(model, cond, real, codes, seed).cpu()

    rows: list[dict[str, object]] = []
    variants: list[dict[str, object]] = []
    name = "cimle: code selection, official batch-1 loop vs batched/chunked"
    timing = {"repeats": repeats, "warmup": warmup, "device": device}
    if official:
        rows.append(harness.compare(name, setting, reference, ours, **timing))
        assert torch.equal(chosen["reference"], chosen["ours"]), chosen
        rows[-1]["same_indices"] = True
    else:
        variants.append(harness.variant(f"{name} (ours only)", setting, ours, **timing))
    rss_after_selection = _max_rss_mb()

    # training throughput: Trainer + cimle.imle (batch = S = images, m codes, inner steps)
    model.train()
    cfg = synth.train.TrainerConfig(
        steps=train_steps,
        batch_size=images,
        sample_every=None,
        run_dir=tempfile.mkdtemp(),
        checkpoint_every=10**6,
        progress=False,
        device=device.type,
    )
    trainer = synth.train.Trainer(model, data, cfg)
    t0 = time.perf_counter()
    trainer.fit()
    train_s = time.perf_counter() - t0
    variants.append(
        {
            "name": "cimle: training step (Trainer + cimle.imle: selection + inner steps)",
            "setting": f"{setting}, {inner_steps} inner steps, {train_steps} steps",
            "seconds": train_s / train_steps,
            "runs_s": [round(train_s, 4)],
            "images_per_s": train_steps * images / train_s,
            "candidates_per_s": train_steps * images * codes / train_s,
        }
    )
    harness.announce(variants[-1])
    return {
        "benchmark": "cimle",
        "settings": {
            "images": images,
            "codes": codes,
            "chunk": chunk,
            "sr": "x4 32->128",
            "generator": {"nf": nf, "nb": nb, "gc": gc, "code_channels": 5},
            "distance": "cimle.distance preset sr (pixel L1 x1e-2 + VGG19 conv5_4 L1)",
            "vgg_weights": vgg_weights,
            "inner_steps": inner_steps,
            "train_steps": train_steps,
            "repeats": repeats,
            "device": str(device),
        },
        "rows": rows,
        "variants": variants,
        "errors": [],
        "rss_after_selection_mb": rss_after_selection,
        "peak_rss_mb": _max_rss_mb(),
    }


def latest_sr_quality(results_dir: Path) -> tuple[Path, dict[str, object]] | None:
    """The ``sr_quality*`` entries of the newest ``*-cpu-cimle.json`` that has any."""
    for path in sorted(results_dir.glob("*-cpu-cimle.json"), reverse=True):
        try:
            found = json.loads(path.read_text()).get("results", {})
        except (OSError, ValueError):
            continue
        quality = {k: v for k, v in found.items() if k.startswith("sr_quality")}
        if quality:
            return path, quality
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--codes", type=int, default=100)
    ap.add_argument("--chunk", type=int, default=100)
    ap.add_argument("--nf", type=int, default=32)
    ap.add_argument("--nb", type=int, default=2)
    ap.add_argument("--gc", type=int, default=16)
    ap.add_argument("--vgg-weights", default="none", help="'imagenet' or a file; cost is the same")
    ap.add_argument("--train-steps", type=int, default=3)
    ap.add_argument("--inner-steps", type=int, default=4)
    ap.add_argument(
        "--repeats", type=int, default=1, help="timed selection rounds (1: one shot, no warm-up)"
    )
    ap.add_argument("--sr-steps", type=int, default=0, help="also run the SR quality check")
    ap.add_argument(
        "--sr-residual",
        choices=["none", "bicubic"],
        default="none",
        help="'none' is the paper's RRDB; 'bicubic' the opt-in residual over bicubic",
    )
    ap.add_argument("--sr-nf", type=int, default=16)
    ap.add_argument("--sr-nb", type=int, default=1)
    ap.add_argument("--sr-lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--skip-official", action="store_true")
    ap.add_argument(
        "--sr-only", action="store_true", help="only the SR quality run, added to today's JSON"
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(__file__).parent / "results" / f"{dt.date.today():%Y-%m-%d}-cpu-cimle.json"
    if args.sr_only:
        q = sr_quality(args)
        doc = json.loads(out.read_text()) if out.is_file() else {"results": {}}
        doc["results"][_sr_key(args)] = q
        doc.setdefault("machine", harness.machine("cpu"))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=2))
        print(json.dumps(q, indent=2))
        return
    res = run(
        args.images, args.codes, args.chunk, nf=args.nf, nb=args.nb, gc=args.gc,
        inner_steps=args.inner_steps, train_steps=args.train_steps, vgg_weights=args.vgg_weights,
        repeats=args.repeats, warmup=0 if args.repeats == 1 else 1,
        official=not args.skip_official,
    )  # fmt: skip
    train = res["variants"][-1]
    results: dict = {}
    if res["rows"]:
        sel = res["rows"][0]
        results["ours_seconds"] = sel["ours_s"]
        results["rss_after_ours_mb"] = res["rss_after_selection_mb"]
        results["official_seconds"] = sel["reference_s"]
        results["speedup"] = sel["ratio"]
        results["same_indices"] = True
    else:
        results["ours_seconds"] = res["variants"][0]["seconds"]
        results["rss_after_ours_mb"] = res["rss_after_selection_mb"]
    results["train_steps"] = args.train_steps
    results["train_seconds"] = train["seconds"] * args.train_steps
    results["train_images_per_s"] = train["images_per_s"]
    results["train_candidates_per_s"] = train["candidates_per_s"]
    results["peak_rss_mb"] = res["peak_rss_mb"]
    if args.sr_steps:
        results[_sr_key(args)] = sr_quality(args)
    if out.is_file():  # keep today's other SR quality numbers (from --sr-only)
        previous = json.loads(out.read_text()).get("results", {})
        for key, value in previous.items():
            if key.startswith("sr_quality"):
                results.setdefault(key, value)

    setting = {key: v for key, v in res["settings"].items() if key not in ("train_steps", "device")}
    machine = {
        **harness.machine("cpu"),
        "nproc": torch.get_num_threads() if args.threads else harness.machine("cpu")["nproc"],
        "python": sys.version.split()[0],
        "load_avg_at_end": list(__import__("os").getloadavg()),
    }
    print(f"code selection: {args.images} images x {args.codes} codes, SR x4 32->128, CPU")
    for name, sec in (
        ("official loop (batch-1)", results.get("official_seconds")),
        ("ours (batched, chunked)", results["ours_seconds"]),
    ):
        print(f"  {name:<26} {'-' if sec is None else f'{sec:9.2f} s'}")
    if "speedup" in results:
        print(f"  speedup                    {results['speedup']:9.2f} x  (same indices: yes)")
    print(
        f"training: {results['train_images_per_s']:.3f} images/s "
        f"({results['train_candidates_per_s']:.1f} candidates/s), peak RSS "
        f"{results['peak_rss_mb']:.0f} MB"
    )
    for key, q in results.items():
        if not key.startswith("sr_quality"):
            continue
        print(
            f"{key}: SR x4 demo ({q['steps']} steps, {q['train_seconds']:.0f} s): best-of-10 PSNR "
            f"{q['psnr_best_of_10']:.2f} dB vs bicubic {q['psnr_bicubic']:.2f} dB "
            f"(mean sample {q['psnr_mean_sample']:.2f}); two samples differ by "
            f"{q['sample_l1_between_two_samples']:.4f} L1"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"setting": setting, "machine": machine, "results": results}, indent=2)
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
