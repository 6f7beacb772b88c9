"""CLVAE benchmarks (issue 5) at ADE20K settings: 151 classes, code size 151, 256×256, batch 1.

Baseline: the official formulation, re-implemented in ``tests/clvae/official.py`` (dense
convolutions of the one-hot / class-painted maps, a Python loop over classes to paint the CSE
maps and to max-pool each class region, as endo-yuki-t/DiversifyingSMIS does). Ours: synth's
parts converted from the same weights (``from_official_clvae`` / ``from_official_spade``), so
outputs are asserted equal before timing. Measured in one run:

1. the label-map conv alone: SPADE's ``mlp_shared`` conv (one-hot, 151 -> 128, 3×3) and CSE's
   (painted with per-class vectors), dense vs. gather;
2. generator forward, 3. encoder forward (``no_grad``);
4. forward + backward of one VAE-GAN generator step (E posterior -> G -> D, hinge + KL).

Reference and ours are timed interleaved (``bench/harness.py``); times are medians in ms; peak
memory is the growth of the process's peak RSS during the first timed call
(``/proc/self/clear_refs`` resets the peak, ``malloc_trim`` returns freed memory first).
``run()`` returns the rows for ``bench/run_all.py``; the CLI prints a table and writes
``bench/results/<YYYY-MM-DD>-cpu-clvae.json``.

    .venv/bin/python bench/clvae.py [--ngf 16] [--iters 3] [--size 256]
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import harness
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.clvae.official import (  # noqa: E402
    OfficialEncoder,
    OfficialGenerator,
    OfficialMultiscaleD,
    one_hot,
    paint_loop,
)

import synth  # noqa: E402
from synth.nn.layers import label_conv2d  # noqa: E402
from synth_clvae import from_official_clvae, from_official_spade  # noqa: E402

K = 151


def run(
    size: int = 256,
    ngf: int = 16,
    ndf: int = 16,
    repeats: int = 3,
    device: torch.device | str = "cpu",
) -> dict[str, object]:
    """All CLVAE comparisons at ``size×size`` (``rows``), each with peak-memory columns on CPU.

    On CUDA only the SPADE conv row runs: the official re-implementation in
    ``tests/clvae/official.py`` allocates its painted maps and pooled codes on the CPU, so the
    other references cannot run on a GPU; they are listed under ``skipped``.
    """
    device = torch.device(device)
    torch.manual_seed(0)
    s, d = size, K
    g = torch.Generator().manual_seed(0)
    labels = synth.nn.ops.resize_labels(torch.randint(0, K, (1, 16, 16), generator=g), (s, s))
    present = int(labels.unique().numel())
    image = torch.rand(1, 3, s, s, generator=g) * 2 - 1
    labels, image = labels.to(device), image.to(device)
    cond = synth.Condition(label_map=labels, num_classes=K)
    seg = one_hot(labels, K)
    rows: list[dict[str, object]] = []
    timing = {"repeats": repeats, "device": device, "memory": True}
    setting = f"{s}x{s}, K={K}, code {d}, batch 1"
    net_setting = f"{setting}, ngf {ngf}, ndf {ndf}"

    # 1. label-map convolutions alone
    w = torch.randn(128, K, 3, 3, device=device)
    wd = torch.randn(128, d, 3, 3, device=device)
    vectors = torch.randn(1, K, d, device=device)
    with torch.no_grad():
        torch.testing.assert_close(
            label_conv2d(labels, w, padding=1), F.conv2d(seg, w, padding=1), rtol=1e-3, atol=1e-3
        )
        rows.append(
            harness.compare(
                "clvae: SPADE mlp_shared conv (one-hot 151->128), dense vs gather",
                setting,
                lambda: F.conv2d(one_hot(labels, K), w, padding=1),
                lambda: label_conv2d(labels, w, padding=1),
                **timing,
            )
        )
    result = {
        "benchmark": "clvae",
        "settings": {
            "num_classes": K,
            "code_dim": d,
            "size": s,
            "batch": 1,
            "ngf": ngf,
            "ndf": ndf,
            "spade_hidden": 128,
            "classes_present": present,
            "repeats": repeats,
            "device": str(device),
        },
        "rows": rows,
        "variants": [],
        "errors": [],
    }
    if device.type != "cpu":
        result["skipped"] = [
            "CSE conv, generator, encoder and VAE-GAN step: tests/clvae/official.py is CPU-only"
        ]
        return result

    with torch.no_grad():
        rows.append(
            harness.compare(
                "clvae: CSE conv (painted 151->128), loop paint + dense vs gather",
                setting,
                lambda: F.conv2d(paint_loop(labels, vectors), wd, padding=1),
                lambda: label_conv2d(labels, wd, padding=1, class_vectors=vectors),
                **timing,
            )
        )

    # 2.-4. networks: official layout (loops, dense) vs ours (converted, same weights)
    off_g = OfficialGenerator(K, ngf, z_dim=256, crop=s, code_dim=d).eval()
    off_e = OfficialEncoder(ngf, 6, s // 64, 256, code_dim=d).eval()
    off_d = OfficialMultiscaleD(K + 3, ndf, 4, 2)
    gen = from_official_clvae(off_g.state_dict(), "G", crop_size=s).eval()
    enc = from_official_clvae(off_e.state_dict(), "E").eval()
    disc = from_official_spade(off_d.state_dict(), "D")
    z, codes = torch.randn(1, 256), torch.randn(1, 5, K, d)
    lat = synth.Latents(z=z, class_codes=enc.to_stage_codes(codes))
    with torch.no_grad():
        # untrained weights with identity BN statistics give huge activations: allow the odd
        # saturated pixel whose sign flips under cancellation, require the rest to match
        diff = (gen(cond, lat).image - off_g(seg, z, codes)).abs()
        assert (diff > 1e-3).float().mean() < 1e-4, float(diff.max())
        p = enc.encode(image, cond)
        torch.testing.assert_close(p["class_mu"], off_e(image, labels, K)[2], rtol=1e-3, atol=1e-3)
        rows.append(
            harness.compare(
                "clvae: generator forward (official layout vs ours)",
                net_setting,
                lambda: off_g(seg, z, codes),
                lambda: gen(cond, lat),
                **timing,
            )
        )
        rows.append(
            harness.compare(
                "clvae: encoder forward, class-wise max-pool loop vs ours",
                net_setting,
                lambda: off_e(image, labels, K),
                lambda: enc.encode(image, cond),
                **timing,
            )
        )
    gen.train(), enc.train(), off_g.train(), off_e.train()

    def ref_step() -> None:
        mu, logvar, cmu, clv, pres = off_e(image, labels, K)
        zz = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        cc = cmu + torch.randn_like(cmu) * torch.exp(0.5 * clv)
        fake = off_g(seg, zz, cc)
        outs = off_d(torch.cat([seg, fake], 1))
        loss = sum(-o[-1].mean() for o in outs) / len(outs)
        kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum()
        for j in range(5):  # official: a loop over layers and present classes
            terms = [
                (-0.5 * (1 + clv[0, j, c] - cmu[0, j, c] ** 2 - clv[0, j, c].exp())).sum()
                for c in range(K)
                if pres[0, j, c]
            ]
            kl = kl + sum(terms) / max(len(terms), 1)
        (loss + 0.05 * kl).backward()

    def our_step() -> None:
        post = enc.posterior(image, cond)
        fake = gen(cond, post).image
        out = disc(fake, cond)
        loss = sum(-o.mean() for o in out.logits) / len(out.logits)
        (loss + 0.05 * post.kl).backward()

    rows.append(
        harness.compare(
            "clvae: VAE-GAN generator step fwd+bwd (E -> G -> D, hinge + KL)",
            net_setting,
            ref_step,
            our_step,
            **timing,
        )
    )
    return result


LEGACY_NAMES = {
    "clvae: SPADE mlp_shared conv (one-hot 151->128), dense vs gather": (
        "SPADE mlp_shared conv (one-hot 151->128)"
    ),
    "clvae: CSE conv (painted 151->128), loop paint + dense vs gather": (
        "CSE conv (painted 151->128, loop paint)"
    ),
    "clvae: generator forward (official layout vs ours)": "generator forward (ngf {ngf})",
    "clvae: encoder forward, class-wise max-pool loop vs ours": "encoder forward (ndf {ngf})",
    "clvae: VAE-GAN generator step fwd+bwd (E -> G -> D, hinge + KL)": (
        "VAE-GAN generator step fwd+bwd"
    ),
}


def legacy_rows(result: dict[str, object]) -> list[dict[str, object]]:
    """``run``'s rows in this script's original JSON layout (``what``, ``*_ms``, ``speedup``)."""
    ngf = result["settings"]["ngf"]
    return [
        {
            "what": LEGACY_NAMES[r["name"]].format(ngf=ngf),
            "reference_ms": round(r["reference_s"] * 1e3, 1),
            "ours_ms": round(r["ours_s"] * 1e3, 1),
            "speedup": round(r["ratio"], 2),
            "reference_peak_mib": r.get("reference_peak_mib"),
            "ours_peak_mib": r.get("ours_peak_mib"),
        }
        for r in result["rows"]
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ngf", type=int, default=16)
    ap.add_argument("--ndf", type=int, default=16)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iters", type=int, default=3, help="timed repeats (medians reported)")
    args = ap.parse_args()
    result = run(args.size, args.ngf, args.ndf, args.iters)
    rows = legacy_rows(result)
    print()
    head = ["what", "reference_ms", "ours_ms", "speedup", "reference_peak_mib", "ours_peak_mib"]
    widths = [max(len(h), *(len(str(r[h])) for r in rows)) for h in head]
    print("  ".join(h.ljust(wd) for h, wd in zip(head, widths)))
    for r in rows:
        print("  ".join(str(r[h]).ljust(wd) for h, wd in zip(head, widths)))
    settings = {key: v for key, v in result["settings"].items() if key not in ("repeats", "device")}
    doc = {
        "benchmark": "clvae",
        "date": datetime.date.today().isoformat(),
        "machine": harness.machine("cpu"),
        "settings": {
            **settings,
            "iters": args.iters,
            "note": "ngf/ndf reduced from 64 to fit a 2-core CPU run; K, D, hidden as ADE20K",
        },
        "rows": rows,
    }
    out = ROOT / "bench" / "results" / f"{datetime.date.today().isoformat()}-cpu-clvae.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
