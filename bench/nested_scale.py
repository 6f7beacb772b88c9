"""Nested scale-editing benchmarks (items 8-9): progressive NDiv batched vs a per-pair loop, the
128² pyramid decoder's forward + backward, and a ``--learn`` run that shows the model learns.

Rows (``run()``, also in ``bench/run_all.py``):

1. *comparison*: progressive NDiv (eq. 5) over every pyramid level (6 levels, 4×4 … 128×128),
   ``N = 4`` samples per input, ``B = 24`` inputs (the paper's batch), each level's codes as
   wide as the decoder's ``A_k(z)`` (``2 convs · (γ, β) · channels = 2048`` at 512 channels),
   forward + backward. Reference: ``tests/nested_scale/ndiv_reference.py``, the NDiv reference's
   arithmetic in Python loops (per level, per input, per ordered pair ``i ≠ j``); ours:
   ``nested_scale.ndiv`` (the ``NDiv`` loss part: one batched ``cdist`` per level). Two of each
   input's samples nearly coincide, so the hinge is active; values and gradients are asserted
   equal before timing.
2. *variant*: the pyramid decoder at 128×128 (6 scales 4→128, outpainting input: image + mask)
   forward + backward, images/s. The quick run (``make bench``) uses 64 channels; the paper's
   512 channels (``--full``) is seconds per image on 2 cores.

``--learn`` (item 8, not part of ``make bench``): trains the recipe
``nested_scale.celeba_outpaint`` at its CPU demo settings (``synth.demo.demo_spec``, the trainer
settings of ``synth demo``) on the masked demo photos (``synth.data.demo``, the centred half of
each side known) for ``--minutes`` with ``synth.Trainer``, and measures before and after
training, on the eight whole demo photos (the training photos, uncropped):

* per-scale diversity: ``core.lpips_diversity`` per pyramid level (``synth.metrics.evaluate``;
  a random AlexNet trunk when the ImageNet weights file is absent, which the JSON says) and the
  mean pairwise pixel distance per level;
* ``nested_scale.scale_edit`` at each level ``k``: the mean ``|Δ|`` of every pyramid level
  between the reference output and the outputs with ``styles[k]`` redrawn (levels coarser than
  ``k`` must not change at all), and of the finer levels pooled to level ``k``'s size (how far
  they follow the edit);
* the disentanglement curve (``core.disentanglement_curve``).

It writes ``bench/results/<date>-cpu-nested_scale-learn.json``, ``…-learn.png`` (the figure),
``…-scale_edit.png`` (``.jpg`` when large; per input: masked input | reference | three redraws
each of the coarsest, a middle and the finest scale's code) and ``…-loss.png``. The quick rows'
CLI writes ``bench/results/<date>-cpu-nested_scale.json``.

    .venv/bin/python bench/nested_scale.py                  # quick rows
    .venv/bin/python bench/nested_scale.py --full           # + the decoder at 512 channels
    .venv/bin/python bench/nested_scale.py --learn --minutes 12
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness
import torch
from einops import rearrange
from torch import Tensor

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

from tests.nested_scale.ndiv_reference import progressive_ndiv_loop  # noqa: E402

import synth  # noqa: E402
import synth.data  # noqa: E402
import synth.viz  # noqa: E402
from synth.demo import MaskedPhotos  # noqa: E402
from synth_nested_scale import NDiv, ScaleEdit  # noqa: E402

RECIPE = "nested_scale.celeba_outpaint"
SOURCE = f"recipe {RECIPE} at its CPU demo settings"

#: The paper's decoder (supplement A): 6 scales 4→128, 512 channels, two conv/AdaIN pairs per
#: scale, so each level's mapped code A_k(z) is 2·2·512 wide.
PAPER = {"resolution": 128, "num_scales": 6, "channels": 512, "convs_per_scale": 2}


# --------------------------------------------------------------------------- item 9: NDiv


def ndiv_inputs(
    batch: int, n: int, sizes: list[int], code_dim: int, seed: int = 0, device: str = "cpu"
) -> synth.LossInputs:
    """The generator step's samples as ``core.gan`` leaves them: ``B·N`` pyramids (coarsest
    first, ``[B·N, 3, s, s]`` per level, ordered ``(b n)``) and per-level codes ``[B·N, D]``
    in ``extras["scale_code/{k}"]``, all leaves that require grad.

    The first two samples of each input nearly coincide (a partial mode collapse): with
    independent random samples every normalised distance is close to ``1/(N−1)`` on both sides
    and ``relu(α·Dz − Dy)`` is 0 everywhere, so the loss and its gradients would be 0."""
    g = torch.Generator().manual_seed(seed)
    m = batch * n
    levels = []
    for s in sizes:
        x = torch.randn(batch, n, 3, s, s, generator=g)
        x[:, 1] = x[:, 0] + 0.05 * x[:, 1]
        x = rearrange(torch.tanh(x), "b n ... -> (b n) ...")
        levels.append(x.to(device).requires_grad_())
    codes = {
        f"scale_code/{k}": torch.randn(m, code_dim, generator=g).to(device).requires_grad_()
        for k in range(len(sizes))
    }
    out = synth.SynthesisOutput(image=levels[-1], pyramid=levels, extras=codes)
    return synth.LossInputs(
        "generator",
        synth.Condition(mask=torch.ones(m, 1, sizes[-1], sizes[-1], device=device)),
        samples=rearrange(levels[-1], "(b n) c h w -> b n c h w", n=n),
        sample_output=out,
    )


def ndiv_comparison(
    batch: int = 24, n: int = 4, repeats: int = 3, device: str = "cpu"
) -> dict[str, Any]:
    """Progressive NDiv forward + backward: the per-pair loop reference vs ``NDiv``."""
    sizes = [PAPER["resolution"] // 2**k for k in reversed(range(PAPER["num_scales"]))]
    code_dim = PAPER["convs_per_scale"] * 2 * PAPER["channels"]
    inputs = ndiv_inputs(batch, n, sizes, code_dim, device=device)
    levels = list(inputs.sample_output.pyramid)
    codes = [inputs.sample_output.extras[f"scale_code/{k}"] for k in range(len(sizes))]
    loss = NDiv(alpha=0.8)

    def reference() -> tuple[Tensor, ...]:
        value = progressive_ndiv_loop(codes, levels, n, alpha=0.8)
        return (value, *torch.autograd.grad(value, levels + codes))

    def ours() -> tuple[Tensor, ...]:
        value = loss(inputs)
        return (value, *torch.autograd.grad(value, levels + codes))

    want, got = reference(), ours()
    torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-7)
    for a, b in zip(got[1:], want[1:]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-9)
    setting = (
        f"B={batch}, N={n}, {len(sizes)} levels {sizes[0]}..{sizes[-1]} px, codes {code_dim} "
        "(A_k of the 512-ch decoder), fwd+bwd"
    )
    row = harness.compare(
        "nested_scale: progressive NDiv, per-pair loop vs batched (nested_scale.ndiv)",
        setting,
        reference,
        ours,
        repeats=repeats,
        device=device,
    )
    row["value"] = float(got[0].detach())
    return row


# --------------------------------------------------------------------------- item 9: decoder


def decoder_variant(
    channels: int, batch: int, repeats: int = 3, device: str = "cpu"
) -> dict[str, Any]:
    """Forward + backward of the 128² outpainting decoder at ``channels`` (images/s)."""
    torch.manual_seed(0)
    spec = {
        "type": "nested_scale.pyramid_decoder",
        "input": "image",
        "use_mask": True,
        "resolution": PAPER["resolution"],
        "num_scales": PAPER["num_scales"],
        "channels": channels,
    }
    gen = synth.build(spec).train().to(device)
    s = PAPER["resolution"]
    g = torch.Generator().manual_seed(0)
    mask = synth.data.box_mask((s, s), (s // 2, s // 2)).expand(batch, 1, s, s)
    image = (torch.rand(batch, 3, s, s, generator=g) * 2 - 1) * mask
    cond = synth.Condition(image=image, mask=mask).to(device)
    z = torch.randn(batch, gen.config.style_dim, generator=g).to(device)
    latents = synth.Latents(styles=[z] * PAPER["num_scales"])  # shared Z0, as in training

    def step() -> None:
        out = gen(cond, latents)
        sum(level.mean() for level in out.pyramid).backward()

    params = sum(p.numel() for p in gen.parameters())
    setting = (
        f"{s}x{s}, {PAPER['num_scales']} scales 4..{s}, {channels} ch"
        f"{' (paper width)' if channels == 512 else ' (paper: 512)'}, batch {batch}, "
        f"{params / 1e6:.1f} M params"
    )
    row = harness.variant(
        "nested_scale: pyramid decoder fwd+bwd", setting, step, repeats=repeats, device=device
    )
    row["images_per_s"] = batch / row["seconds"]
    row["channels"] = channels
    return row


def run(
    batch: int = 24,
    n: int = 4,
    decoder: tuple[tuple[int, int], ...] = ((64, 8),),
    repeats: int = 3,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """The comparison row and one decoder variant per ``(channels, batch)`` in ``decoder``."""
    device = str(device)
    rows = [ndiv_comparison(batch, n, repeats, device)]
    variants = [decoder_variant(c, b, repeats, device) for c, b in decoder]
    return {
        "benchmark": "nested_scale",
        "settings": {
            "ndiv": {"batch": batch, "samples_per_input": n, **PAPER, "alpha": 0.8},
            "decoder": [{"channels": c, "batch": b} for c, b in decoder],
            "repeats": repeats,
            "device": device,
        },
        "rows": rows,
        "variants": variants,
        "errors": [],
    }


# --------------------------------------------------------------------------- item 8: data


def learn_setup(size: int, minutes: float, batch: int, seed: int, run_dir: str):
    """The recipe's spec at its CPU demo settings, the changes made, and the trainer config
    (``synth demo``'s settings with this run's time limit, batch and folder)."""
    from synth.demo import demo_spec, demo_trainer_config

    run = {"time_limit": minutes * 60, "run_dir": run_dir, "device": "cpu", "seed": seed}
    run.update(batch_size=batch, progress=False)
    spec, changes = demo_spec(RECIPE, size=size, num_classes=None)
    cfg = demo_trainer_config(synth.get_registry().recipe(RECIPE), run)
    return spec, changes, cfg


# --------------------------------------------------------------------------- item 8: measures


def pixel_diversity(pyramid: list[Tensor], n: int) -> list[float]:
    """Mean pairwise mean-|Δ| between the ``n`` samples of each input, per pyramid level."""
    out = []
    for level in pyramid:
        x = rearrange(level.float(), "(b n) c h w -> b n (c h w)", n=n)
        d = torch.cdist(x, x, p=1) / x.shape[-1]  # [B, n, n], zero diagonal
        out.append(float(d.sum((-2, -1)).mean() / (n * (n - 1))))
    return out


@torch.no_grad()
def scale_edit_changes(
    model: synth.SynthesisModel, cond: synth.Condition, draws: int, seed: int
) -> dict[str, Any]:
    """For each edited level ``k`` (``nested_scale.scale_edit``, ``draws`` redraws of
    ``styles[k]`` per input): between the reference output and the edited ones, the mean and max
    ``|Δ|`` of every level ``j``, and for ``j ≥ k`` the mean ``|Δ|`` of level ``j``
    average-pooled to level ``k``'s size (how far the finer levels follow the edit: with
    eq. 1 met exactly it equals the change at ``k``)."""
    g = torch.Generator().manual_seed(seed)
    reference = model.injector.prior(cond, g)
    ref = model.generator(cond, reference).pyramid
    mean, peak, pooled = [], [], []
    for k in range(len(ref)):
        out = ScaleEdit().sample(model, cond, draws, generator=g, scales=[k], reference=reference)
        deltas = [e - r.repeat_interleave(draws, dim=0) for e, r in zip(out.pyramid, ref)]
        size = [tuple(ref[k].shape[-2:])]
        mean.append([float(d.abs().mean()) for d in deltas])
        peak.append([float(d.abs().max()) for d in deltas])
        pooled.append([float(synth.ops.pool_pyramid(d, size)[0].abs().mean()) for d in deltas[k:]])
    summary = [
        {
            "edited": k,
            "coarser_mean": _mean(row[:k]),
            "coarser_max": max(peak[k][:k], default=0.0),
            "at_k": row[k],
            "finer_mean": _mean(row[k + 1 :]),
            "finer_pooled_to_k_mean": _mean(pooled[k][1:]),
        }
        for k, row in enumerate(mean)
    ]
    return {
        "mean_abs": mean,
        "max_abs": peak,
        "pooled_to_k_mean_abs": pooled,
        "summary": summary,
        "draws": draws,
    }


def lpips_weights(notes: list[str]) -> str:
    """``"imagenet"`` when LPIPS's AlexNet trunk file is on disk, else ``"none"`` (a random
    trunk: comparable between these runs, not with published numbers) with a note."""
    from synth.metrics import lpips_weights_info

    trunk = lpips_weights_info("alex", "imagenet")
    if isinstance(trunk, dict) and trunk.get("file"):
        return "imagenet"
    url = trunk.get("url") if isinstance(trunk, dict) else None
    notes.append(
        f"LPIPS uses a random AlexNet trunk: the ImageNet weights file ({url}) is not on disk; "
        "its values compare before with after training, not with the paper's"
    )
    return "none"


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def measure(
    model: synth.SynthesisModel, cond: synth.Condition, real: Tensor, lpips_weights: str
) -> dict[str, Any]:
    """Per-scale LPIPS and pixel diversity, the disentanglement curve, identity recovery
    (``synth.metrics.evaluate``) and the scale-edit change table, on ``cond``."""
    from synth.metrics import evaluate

    model.eval()
    n = 8
    result = evaluate(
        {"model": model}, [(cond, real)], n=n, seed=0, lpips={"weights": lpips_weights}, m=6
    )
    entry = result["models"]["model"]
    with torch.no_grad():  # evaluate's samples again (same seed): core.prior drops the pyramid
        out = model.generate(cond.repeat_interleave(n), generator=torch.Generator().manual_seed(0))
    return {
        "lpips_diversity": entry["lpips_diversity"],
        "pixel_diversity_per_scale": pixel_diversity(list(out.pyramid), n),
        "disentanglement_curve": entry.get("disentanglement_curve"),
        "identity_recovery": entry.get("identity_recovery"),
        "scale_edit": scale_edit_changes(model, cond, draws=8, seed=1),
        "evaluate_settings": result["settings"],
    }


# --------------------------------------------------------------------------- item 8: pictures


def _level_labels(model: synth.SynthesisModel) -> list[str]:
    res = model.generator.config.resolution[0]
    return [f"{res // s}x{res // s}" for s in model.generator.pyramid_scales]


def learn_figure(before: dict, after: dict, labels: list[str], path: Path) -> Path:
    """Per-scale diversity (LPIPS, pixels), scale-edit change and the disentanglement curve,
    before and after training: one PNG (matplotlib ``Figure`` on Agg, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 8), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2)
    x = list(range(len(labels)))
    panels = [
        (axes[0, 0], "LPIPS diversity per scale", lambda r: r["lpips_diversity"]["per_scale"]),
        (axes[0, 1], "pixel diversity per scale (mean |Δ|)", _pixels),
        (axes[1, 1], "disentanglement curve (LPIPS, styles[k] redrawn)", _curve),
    ]
    for ax, title, read in panels:
        for result, style, name in ((before, "--o", "before"), (after, "-o", "after")):
            ax.plot(x, read(result), style, label=f"{name} training")
        ax.set(title=title, xticks=x, xticklabels=labels, xlabel="pyramid level")
        ax.legend()
    _edit_panel(axes[1, 0], before, after, labels)
    fig.savefig(path, format="png")
    return path


def _pixels(result: dict) -> list[float]:
    return result["pixel_diversity_per_scale"]


def _curve(result: dict) -> list[float]:
    return result["disentanglement_curve"]["curve"]


def _edit_panel(ax: Any, before: dict, after: dict, labels: list[str]) -> None:
    """Mean |Δ| of each level (x) when styles[k] is redrawn, one line per k (after training),
    the first edit before training dashed for scale."""
    x = list(range(len(labels)))
    rows = after["scale_edit"]["mean_abs"]
    colors = [f"C{k}" for k in range(len(rows))]
    for k, row in enumerate(rows):
        ax.plot(x, row, "-o", color=colors[k], label=f"edit {labels[k]} (after)")
        ax.plot(x, before["scale_edit"]["mean_abs"][k], ":", color=colors[k], alpha=0.6)
        ax.axvline(k, color=colors[k], alpha=0.15)
    ax.set(
        title="scale_edit: mean |Δ| per level (dotted: before training)",
        xticks=x,
        xticklabels=labels,
        xlabel="pyramid level (levels left of the edited one must be 0)",
    )
    ax.legend(fontsize=8)


@torch.no_grad()
def scale_edit_picture(
    model: synth.SynthesisModel, cond: synth.Condition, draws: int, stem: Path, seed: int
) -> Path:
    """Per input: masked input | reference | ``draws`` redraws of the coarsest, a middle and the
    finest scale's code (``nested_scale.scale_edit``), via ``synth.viz.image_grid``; written
    to ``stem.png`` (``.jpg`` when large)."""
    from synth.viz import image_grid

    model.eval()
    g = torch.Generator().manual_seed(seed)
    reference = model.injector.prior(cond, g)
    ref = model.generator(cond, reference).image
    n_levels = len(model.generator.pyramid_scales)
    chosen = [0, n_levels // 2, n_levels - 1]
    columns = [cond.image, ref]
    labels = ["input", "reference"]
    names = _level_labels(model)
    for k in chosen:
        out = ScaleEdit().sample(model, cond, draws, generator=g, scales=[k], reference=reference)
        columns += list(rearrange(out.image, "(b n) c h w -> n b c h w", n=draws))
        labels += [f"{names[k]} #{i + 1}" for i in range(draws)]
    rows = [[col[b].float().cpu() for col in columns] for b in range(cond.batch_size)]
    return save_picture(image_grid(rows, labels=labels), stem)


def save_picture(grid: Tensor, stem: Path, max_png_kib: int = 200) -> Path:
    """``stem.png``, or ``stem.jpg`` (quality 90) when the PNG would exceed ``max_png_kib``."""
    from PIL import Image

    png = synth.viz.save_image(grid, stem.with_suffix(".png"))
    if png.stat().st_size <= max_png_kib * 1024:
        return png
    jpg = stem.with_suffix(".jpg")
    Image.open(png).convert("RGB").save(jpg, quality=90)
    png.unlink()
    return jpg


# --------------------------------------------------------------------------- item 8: the run


def learn(minutes: float = 12.0, size: int = 64, batch: int = 4, seed: int = 0) -> dict[str, Any]:
    """Train for ``minutes`` on the masked demo photos, measure before and after, write the
    figure, the scale-edit picture and the loss curve; returns the JSON document."""
    notes: list[str] = []
    weights = lpips_weights(notes)
    cond, real = eval_photos(size)
    run_dir = tempfile.mkdtemp(prefix="nested_scale_learn_")
    spec, changes, cfg = learn_setup(size, minutes, batch, seed, run_dir)
    torch.manual_seed(seed)
    model = synth.compose(copy.deepcopy(spec))
    print(f"[{harness.elapsed()}] measuring before training ({SOURCE})", flush=True)
    before = measure(model, cond, real, weights)
    train = train_on_demo(model, cfg, size, seed)
    print(f"[{harness.elapsed()}] {train['steps']} steps in {train['seconds']} s", flush=True)
    after = measure(model, cond, real, weights)
    labels = _level_labels(model)
    files = learn_files(model, cond, before, after, Path(run_dir), seed)
    return {
        "benchmark": "nested_scale-learn",
        "date": datetime.date.today().isoformat(),
        "machine": {**harness.machine("cpu"), **train.pop("load")},
        "model": {"source": SOURCE, "demo_changes": changes, "spec": spec, "levels": labels},
        "train": train,
        "measured_on": "the 8 whole demo photos (split 'all': the training photos, uncropped)",
        "lpips_weights": weights,
        "notes": notes,
        "checks": checks(after),
        "before": before,
        "after": after,
        "files": {k: os.path.relpath(p, ROOT) for k, p in files.items()},
    }


def eval_photos(size: int) -> tuple[synth.Condition, Tensor]:
    """The 8 whole demo photos, masked: ``cond`` (image + mask) and ``real [8, 3, s, s]``."""
    from synth.data import demo, make_collate

    show = MaskedPhotos(demo(size, split="all", disk_cache=True))
    items = make_collate(show)([show[i] for i in range(len(show))])
    return items.cond, items.real


def train_on_demo(
    model: synth.SynthesisModel, cfg: synth.TrainerConfig, size: int, seed: int
) -> dict[str, Any]:
    """``synth.Trainer`` on the masked demo photos (random crops) for ``cfg.time_limit``."""
    from synth.data import demo

    load = {"load_avg": [round(x, 2) for x in os.getloadavg()]}
    print(f"[{harness.elapsed()}] training for {cfg.time_limit:g} s, load {load}", flush=True)
    data = MaskedPhotos(demo(size, split="train", seed=seed, disk_cache=True))
    t0 = time.perf_counter()
    summary = synth.Trainer(model, data, cfg).fit(resume=False)
    seconds = time.perf_counter() - t0
    load["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    return {
        "steps": int(summary["step"]),
        "seconds": round(seconds, 1),
        "batch_size": cfg.batch_size,
        "images_per_s": round(summary["step"] * cfg.batch_size / seconds, 3),
        "final_losses": summary["losses"],
        "data": f"synth.data.demo({size}, split='train'): random crops, centred half known",
        "load": load,
    }


def learn_files(
    model: synth.SynthesisModel,
    cond: synth.Condition,
    before: dict[str, Any],
    after: dict[str, Any],
    run_dir: Path,
    seed: int,
) -> dict[str, Path]:
    """The figure, the scale-edit picture (4 inputs, 3 draws) and the loss curve."""
    stem = f"{datetime.date.today().isoformat()}-cpu-nested_scale"
    labels = _level_labels(model)
    figure = learn_figure(before, after, labels, RESULTS / f"{stem}-learn.png")
    picture = scale_edit_picture(model, cond[:4], 3, RESULTS / f"{stem}-scale_edit", seed)
    curve = synth.viz.loss_curve(
        run_dir / "log.jsonl", RESULTS / f"{stem}-loss.png", smooth=10, size=(720, 400)
    )
    return {"figure": figure, "scale_edit": picture, "loss_curve": curve}


def checks(after: dict[str, Any]) -> dict[str, bool]:
    """What "it learns" and exact nesting require of the trained model."""
    edits = after["scale_edit"]["summary"]
    return {
        "lpips_diversity_positive_at_every_scale": all(
            v > 0 for v in after["lpips_diversity"]["per_scale"]
        ),
        "pixel_diversity_positive_at_every_scale": all(
            v > 0 for v in after["pixel_diversity_per_scale"]
        ),
        "coarser_levels_unchanged_by_every_edit": all(e["coarser_max"] == 0 for e in edits),
        "every_edit_changes_its_level": all(e["at_k"] > 0 for e in edits),
    }


# --------------------------------------------------------------------------- CLI


def _print_learn(doc: dict[str, Any]) -> None:
    """Per-scale diversity before/after and the scale-edit summary as plain tables."""
    print(
        f"\n{doc['train']['steps']} steps in {doc['train']['seconds']} s ({doc['model']['source']})"
    )
    print("level      LPIPS div before/after    pixel div before/after")
    for i, name in enumerate(doc["model"]["levels"]):
        lp = [doc[w]["lpips_diversity"]["per_scale"][i] for w in ("before", "after")]
        px = [doc[w]["pixel_diversity_per_scale"][i] for w in ("before", "after")]
        print(f"{name:8s}   {lp[0]:.4f} / {lp[1]:.4f}           {px[0]:.4f} / {px[1]:.4f}")
    print("scale_edit after training: edited | coarser max |Δ| | at k | finer | finer pooled to k")
    for r in doc["after"]["scale_edit"]["summary"]:
        finer = [r[key] for key in ("finer_mean", "finer_pooled_to_k_mean")]
        text = " | ".join("-" if v is None else f"{v:.4f}" for v in finer)
        print(f"  {r['edited']} | {r['coarser_max']:.1e} | {r['at_k']:.4f} | {text}")
    for name, ok in doc["checks"].items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="also the decoder at 512 channels")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats (medians)")
    ap.add_argument("--learn", action="store_true", help="the it-learns run instead (item 8)")
    ap.add_argument("--minutes", type=float, default=12.0, help="--learn: training minutes")
    ap.add_argument("--size", type=int, default=64, help="--learn: demo image side")
    ap.add_argument("--batch", type=int, default=4, help="--learn: training batch")
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    date = datetime.date.today().isoformat()
    if args.learn:
        doc = learn(args.minutes, args.size, args.batch)
        out = RESULTS / f"{date}-cpu-nested_scale-learn.json"
        out.write_text(json.dumps(doc, indent=2) + "\n")
        _print_learn(doc)
        print(f"\nwrote {out.relative_to(ROOT)} and {', '.join(doc['files'].values())}")
        return
    decoder = ((64, 8), (512, 2)) if args.full else ((64, 8),)
    result = run(decoder=decoder, repeats=args.repeats)
    doc = {"date": date, "machine": harness.machine("cpu"), **result}
    for r in result["rows"]:
        print(f"{r['name']}  [{r['setting']}]  ratio {r['ratio']:.2f}")
    for v in result["variants"]:
        print(f"{v['name']}  [{v['setting']}]  {v['images_per_s']:.3f} images/s")
    out = RESULTS / f"{date}-cpu-nested_scale.json"
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
