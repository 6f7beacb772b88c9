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

Times are medians in ms; peak memory is the growth of the process's peak RSS during the
measurement (``/proc/self/clear_refs`` resets the peak, ``malloc_trim`` returns freed memory
first). Prints a table and writes ``bench/results/<YYYY-MM-DD>-cpu-clvae.json``.

    .venv/bin/python bench/clvae.py [--ngf 16] [--iters 3] [--size 256]
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

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
from synth.layers import label_conv2d  # noqa: E402
from synth_clvae import from_official_clvae, from_official_spade  # noqa: E402

K = 151


def machine() -> dict[str, object]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "load_avg_at_start": os.getloadavg(),
    }


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def measure(fn: Callable[[], object], iters: int) -> tuple[float, float]:
    """``(median ms, peak RSS growth MiB)`` of ``fn`` (one warm-up call first)."""
    fn()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    base = _rss_kib("VmRSS")
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    peak = _rss_kib("VmHWM")
    return statistics.median(times), max(peak - base, 0) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ngf", type=int, default=16)
    ap.add_argument("--ndf", type=int, default=16)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iters", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    s, d = args.size, K
    g = torch.Generator().manual_seed(0)
    labels = synth.ops.resize_labels(torch.randint(0, K, (1, 16, 16), generator=g), (s, s))
    present = int(labels.unique().numel())
    image = torch.rand(1, 3, s, s, generator=g) * 2 - 1
    cond = synth.Condition(label_map=labels, num_classes=K)
    seg = one_hot(labels, K)
    rows: list[dict[str, object]] = []

    def row(name: str, ref: Callable[[], object], ours: Callable[[], object]) -> None:
        t_ref, m_ref = measure(ref, args.iters)
        t_ours, m_ours = measure(ours, args.iters)
        rows.append(
            {
                "what": name,
                "reference_ms": round(t_ref, 1),
                "ours_ms": round(t_ours, 1),
                "speedup": round(t_ref / t_ours, 2),
                "reference_peak_mib": round(m_ref, 1),
                "ours_peak_mib": round(m_ours, 1),
            }
        )
        print(f"  {name}: {t_ref:.1f} ms vs {t_ours:.1f} ms", flush=True)

    # 1. label-map convolutions alone
    w = torch.randn(128, K, 3, 3)
    wd = torch.randn(128, d, 3, 3)
    vectors = torch.randn(1, K, d)
    with torch.no_grad():
        torch.testing.assert_close(
            label_conv2d(labels, w, padding=1), F.conv2d(seg, w, padding=1), rtol=1e-3, atol=1e-3
        )
        row(
            "SPADE mlp_shared conv (one-hot 151->128)",
            lambda: F.conv2d(one_hot(labels, K), w, padding=1),
            lambda: label_conv2d(labels, w, padding=1),
        )
        row(
            "CSE conv (painted 151->128, loop paint)",
            lambda: F.conv2d(paint_loop(labels, vectors), wd, padding=1),
            lambda: label_conv2d(labels, wd, padding=1, class_vectors=vectors),
        )

    # 2.-4. networks: official layout (loops, dense) vs ours (converted, same weights)
    off_g = OfficialGenerator(K, args.ngf, z_dim=256, crop=s, code_dim=d).eval()
    off_e = OfficialEncoder(args.ngf, 6, s // 64, 256, code_dim=d).eval()
    off_d = OfficialMultiscaleD(K + 3, args.ndf, 4, 2)
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
        row(
            f"generator forward (ngf {args.ngf})",
            lambda: off_g(seg, z, codes),
            lambda: gen(cond, lat),
        )
        row(
            f"encoder forward (ndf {args.ngf})",
            lambda: off_e(image, labels, K),
            lambda: enc.encode(image, cond),
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

    row("VAE-GAN generator step fwd+bwd", ref_step, our_step)

    print()
    head = ["what", "reference_ms", "ours_ms", "speedup", "reference_peak_mib", "ours_peak_mib"]
    widths = [max(len(h), *(len(str(r[h])) for r in rows)) for h in head]
    print("  ".join(h.ljust(wd) for h, wd in zip(head, widths)))
    for r in rows:
        print("  ".join(str(r[h]).ljust(wd) for h, wd in zip(head, widths)))
    result = {
        "benchmark": "clvae",
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "settings": {
            "num_classes": K,
            "code_dim": d,
            "size": s,
            "batch": 1,
            "ngf": args.ngf,
            "ndf": args.ndf,
            "spade_hidden": 128,
            "classes_present": present,
            "iters": args.iters,
            "note": "ngf/ndf reduced from 64 to fit a 2-core CPU run; K, D, hidden as ADE20K",
        },
        "rows": rows,
    }
    out = ROOT / "bench" / "results" / f"{datetime.date.today().isoformat()}-cpu-clvae.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
