"""Run every plugin's benchmark in one process and write one report per device.

For each plugin (``bench/pix2pixhd.py``, ``bench/clvae.py``, ``bench/cimle.py``,
``bench/nested_scale.py``, ``bench/collage.py``) this calls
its ``run()`` at settings sized for a quick CPU run (the whole script takes a few minutes on 2
cores; the scripts' own CLIs keep the issue-sized settings). Each *comparison* row times the
reference formulation (the official code's loops / dense layout) and ours interleaved in this
process and reports the medians and ``ratio = reference / ours``; *variants* (eager vs
``channels_last`` vs ``torch.compile``, training throughput) have no reference and no ratio.

Writes ``bench/results/<YYYY-MM-DD>-cpu.json`` and ``.md`` plus ``latest-cpu.md``; when CUDA
is available also ``<YYYY-MM-DD>-gpu.json`` / ``.md`` / ``latest-gpu.md`` at the issue-sized
settings. ``--device cuda`` runs on CUDA only and adds ``bench/gpu.py``'s rows (issue 19;
``bench/gpu.sh`` runs it on a lent GPU). Prints the table and exits non-zero if any ratio is
< 1 or a benchmark failed.

**References** (issue 18). A row's reference is the authors' own code when a local checkout of
their repository is given, else the project's re-implementation of the official layout; each
row records which in its ``reference`` field and the table prints it. Give a checkout per
repository with ``--official-<name> PATH`` (``pix2pixhd``: NVIDIA/pix2pixHD, ``spade``:
NVlabs/SPADE, ``clvae``: endo-yuki-t/DiversifyingSMIS, ``cimle``: niopeng/SRIM-pytorch) or
the environment variables of ``bench/official.py`` (``SYNTH_OFFICIAL_PIX2PIXHD``, ...). The
authors' code is imported from there, never copied into this repository. With a checkout the
re-implementation rows still run beside the official ones, and the exit status is non-zero if
any ratio is < 1 against either reference.

``--paper-sizes`` runs the issue's sizes on CPU (tens of minutes on 2 cores) and writes
``<date>-cpu-paper.json`` / ``.md`` and ``latest-cpu-paper.{md,json}`` instead of the quick
report; ``tools/bench_table.py`` turns the newest JSON into README.md's table.

The cIMLE SR quality run (~20 min, ``bench/cimle.py --sr-only``) is not run here; the newest
``sr_quality*`` numbers found in ``bench/results/*-cpu-cimle.json`` are copied into the report,
labelled with their source file.

``OMP_WAIT_POLICY`` defaults to ``PASSIVE`` (unless set in the environment or
``--omp-wait-policy default`` is given): on a shared, oversubscribed machine libgomp's default
spin-waiting makes small parallel kernels (``torch.sort``, ``index_add``) stall for tens to
hundreds of ms whenever the other OpenMP thread is descheduled; see ``bench/README.md``.

    uv run python bench/run_all.py              # or: make bench
    uv run python bench/run_all.py --only clvae --no-compile
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

T0 = time.perf_counter()
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PLUGINS = ("pix2pixhd", "clvae", "cimle", "nested_scale", "collage")

# Quick CPU settings: the whole run is a few minutes on a 2-core machine.
CPU_SETTINGS: dict[str, dict[str, object]] = {
    "pix2pixhd": {"size": (256, 512), "instances": 60, "repeats": 3},
    "clvae": {"size": 128, "ngf": 16, "ndf": 16, "repeats": 3},
    # default chunking (timed on CPU) and a sweep of fixed chunks beside it
    "cimle": {
        "images": 2,
        "codes": 20,
        "chunk": None,
        "train_steps": 1,
        "repeats": 3,
        "chunk_sweep": (8, 20),
    },
    # NDiv at the paper's size; the 128² decoder at 64 channels (512: bench/nested_scale.py --full)
    "nested_scale": {"batch": 24, "n": 4, "decoder": ((64, 8),), "repeats": 3},
    # blending at every stage of the 128 px SNGAN at ch 16, R = 1, 4, 8; 8 photos, 3 Adam steps
    "collage": {"size": 128, "ch": 16, "batch": 2, "photos": 8, "steps": 3, "repeats": 3},
}
# The sizes on CPU (``--paper-sizes``, issue 18: 2 threads, fp32), over the quick ones:
# pix2pixHD at 512x1024 (its encoder on 512 instances); cIMLE m = 100 codes per image for 2
# images (not an outer batch of 640: the authors' loop takes ~0.3 s per candidate on 2 quiet
# cores and runs 12 times: its row, its ceiling and the re-implemented row); CLVAE at 256²,
# ngf 64.
PAPER_SETTINGS: dict[str, dict[str, object]] = {
    **CPU_SETTINGS,
    "pix2pixhd": {"size": (512, 1024), "instances": 60, "repeats": 5},
    "clvae": {"size": 256, "ngf": 64, "ndf": 64, "repeats": 5},
    "cimle": {
        "images": 2,
        "codes": 100,
        "chunk": None,
        "train_steps": 1,
        "repeats": 3,
        "chunk_sweep": (1, 8, 32),
    },
}
# Issue-sized settings for a GPU.
GPU_SETTINGS: dict[str, dict[str, object]] = {
    "pix2pixhd": {"size": (512, 1024), "instances": 60, "repeats": 10},
    "clvae": {"size": 256, "ngf": 64, "ndf": 64, "repeats": 10},
    "cimle": {"images": 16, "codes": 100, "chunk": None, "train_steps": 3, "repeats": 3},
    "nested_scale": {"batch": 24, "n": 4, "decoder": ((512, 8),), "repeats": 10},
    # the official 256 px dog+cat widths (ch 48); the paper's 200 projection steps
    "collage": {"size": 256, "ch": 48, "batch": 4, "photos": 8, "steps": 200, "repeats": 5},
    "gpu": {},  # bench/gpu.py's own issue-sized settings (--device cuda)
}


def run_plugin(name: str, settings: dict[str, object], device: str, compile: bool) -> dict:
    """Import ``bench/<name>.py`` and call its ``run()`` with ``settings`` on ``device``."""
    if name == "pix2pixhd":
        import pix2pixhd

        return pix2pixhd.run(device=device, compile=compile, **settings)
    if name == "clvae":
        import clvae

        return clvae.run(device=device, **settings)
    if name == "cimle":
        import cimle

        return cimle.run(device=device, **settings)
    if name == "nested_scale":
        import nested_scale

        return nested_scale.run(device=device, **settings)
    if name == "collage":
        import collage

        return collage.run(device=device, **settings)
    if name == "gpu":  # issue 19's GPU rows (bench/gpu.py), CUDA only
        import gpu

        return gpu.run(device=device, compile=compile, **settings)
    raise ValueError(f"unknown benchmark {name!r}")


def copied_sr_quality() -> dict[str, object] | None:
    """The newest cIMLE SR quality numbers on disk, labelled with their source file."""
    import cimle

    found = cimle.latest_sr_quality(RESULTS)
    if found is None:
        return None
    path, quality = found
    return {
        "source": str(path.relative_to(HERE.parent)),
        "note": "copied from that file, not measured by this run (bench/cimle.py --sr-only)",
        "results": quality,
    }


def run_device(
    device: str, plugins: list[str], compile: bool, paper: bool = False
) -> dict[str, object]:
    """Run the chosen plugins' benchmarks on ``device``; failures become ``errors``."""
    import harness
    import official
    import torch

    settings = GPU_SETTINGS if device != "cpu" else PAPER_SETTINGS if paper else CPU_SETTINGS
    doc: dict[str, object] = {
        "sizes": "paper" if paper else ("quick" if device == "cpu" else "gpu"),
        "references": {
            name: official.label(name, official.checkout(name)) for name in official.REPOS
        },
        "date": datetime.date.today().isoformat(),
        "device": device,
        "machine": harness.machine(device),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(libgomp default)"),
        "settings": {},
        "rows": [],
        "variants": [],
        "errors": [],
        "skipped": [],
    }
    t_start = time.perf_counter()
    for i, name in enumerate(plugins, 1):
        t0 = time.perf_counter()
        print(f"[{harness.elapsed()}] ({i}/{len(plugins)}) {name} on {device}: start", flush=True)
        try:
            res = run_plugin(name, dict(settings[name]), device, compile)
        except Exception as e:  # report and go on with the other benchmarks
            traceback.print_exc()
            doc["errors"].append({"name": name, "error": f"{type(e).__name__}: {e}"[:500]})
            continue
        finally:
            if device != "cpu":
                torch.cuda.empty_cache()
        doc["settings"][name] = res["settings"]
        for key in ("rows", "variants", "errors", "skipped"):
            doc[key].extend(res.get(key, []))
        took = time.perf_counter() - t0
        print(f"[{harness.elapsed()}] ({i}/{len(plugins)}) {name} done in {took:.0f} s", flush=True)
    if device == "cpu" and "cimle" in plugins:
        doc["cimle_sr_quality"] = copied_sr_quality()
    doc["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    doc["total_wall_s"] = round(time.perf_counter() - t_start, 1)
    doc["process_wall_s"] = round(time.perf_counter() - T0, 1)  # + imports, earlier devices
    for r in doc["rows"]:  # rows of scripts that do not say it timed a re-implementation
        r.setdefault("reference", official.REIMPLEMENTATION)
    doc["all_ratios_ge_1"] = all(r["ratio"] >= 1 for r in doc["rows"])
    doc["ok"] = bool(doc["rows"]) and doc["all_ratios_ge_1"] and not doc["errors"]
    return doc


def markdown(doc: dict[str, object]) -> str:
    """The report as markdown: comparisons, variants, copied SR quality, status line."""
    from harness import fmt_seconds

    m = doc["machine"]
    lines = [
        f"# Benchmarks, {doc['device']}, {doc['date']}",
        "",
        f"Machine: {m.get('gpu', m['cpu'])}; {m['nproc']} CPUs, {m['torch_threads']} torch "
        f"threads; torch {m['torch']}, python {m['python']}; load average "
        f"{m['load_avg']} at start, {m['load_avg_end']} at end; "
        f"OMP_WAIT_POLICY={doc['omp_wait_policy']}. Total wall time {doc['total_wall_s']:.0f} s "
        "(`bench/run_all.py`).",
        "",
        "Reference and ours are timed interleaved in one process; times are medians; "
        "ratio = reference / ours (> 1: ours is faster). Outputs are asserted equal first.",
        "",
        "The `reference` column says which code the reference times ran: the authors' own code "
        "(imported from a local checkout, at its commit) or the project's re-implementation of "
        "their layout. Peak memory: growth of the process's peak RSS during the first timed "
        "call (CPU rows that record it).",
        "",
        "| benchmark | setting | reference | reference time | ours | ratio | peak MiB ref / ours |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in doc["rows"]:
        ratio = f"{r['ratio']:.2f}"
        if "ceiling" in r:
            ratio += f" (ceiling {r['ceiling']:.2f})"
        peak = (
            f"{r['reference_peak_mib']:.0f} / {r['ours_peak_mib']:.0f}"
            if "reference_peak_mib" in r
            else "-"
        )
        lines.append(
            f"| {r['name']} | {r['setting']} | {short_reference(r)} | "
            f"{fmt_seconds(r['reference_s'])} | {fmt_seconds(r['ours_s'])} | {ratio} | {peak} |"
        )
    if doc["variants"]:
        lines += [
            "",
            "Variants (our code only, no reference, no ratio):",
            "",
            "| variant | setting | time | notes |",
            "|---|---|---:|---|",
        ]
        for v in doc["variants"]:
            notes = []
            if "compile_s" in v:
                notes.append(f"compile {v['compile_s']} s, max abs diff {v['max_abs_diff']:.1e}")
            if "images_per_s" in v:
                notes.append(f"{v['images_per_s']:.3f} images/s")
            if "candidates_per_s" in v:
                notes.append(f"{v['candidates_per_s']:.1f} candidates/s")
            if "paper_ms" in v:
                notes.append(f"paper: {v['paper_ms']} ms")
            if v.get("note") and "images_per_s" not in v:  # bench/gpu.py: ms/image, MFU, goal
                notes.append(v["note"])
            lines.append(
                f"| {v['name']} | {v['setting']} | {fmt_seconds(v['seconds'])} | "
                f"{'; '.join(notes)} |"
            )
    sr = doc.get("cimle_sr_quality")
    if sr:
        lines += ["", f"cIMLE SR ×4 quality — {sr['note']}: `{sr['source']}`", ""]
        lines += ["| run | steps | best-of-10 PSNR | mean-sample PSNR | bicubic PSNR |"]
        lines += ["|---|---:|---:|---:|---:|"]
        for key, q in sr["results"].items():
            lines.append(
                f"| {key} | {q['steps']} | {q['psnr_best_of_10']:.2f} dB | "
                f"{q['psnr_mean_sample']:.2f} dB | {q['psnr_bicubic']:.2f} dB |"
            )
    for s in doc["skipped"]:
        lines += ["", f"Skipped: {s}"]
    for e in doc["errors"]:
        lines += ["", f"**Error** in {e['name']}: `{e['error']}`"]
    lines += ["", status_line(doc), ""]
    return "\n".join(lines)


def short_reference(row: dict[str, object]) -> str:
    """``official NVIDIA/pix2pixHD @ 14b3b3c7fff4`` or ``re-implementation``."""
    ref = str(row.get("reference", ""))
    if ref.startswith("official code: "):
        repo, _, rest = ref[len("official code: ") :].partition(" @ ")
        return f"official {repo} @ {rest.split()[0][:12]}"
    return "re-implementation"


def status_line(doc: dict[str, object]) -> str:
    """One line: whether every ours-vs-reference ratio is >= 1 (and nothing failed)."""
    below = [r["name"] for r in doc["rows"] if r["ratio"] < 1]
    if not doc["rows"]:
        verdict = "no comparison rows were measured"
    elif below:
        verdict = f"NOT every ratio is >= 1: {len(below)} below 1 ({'; '.join(below)})"
    else:
        verdict = f"every ratio is >= 1 ({len(doc['rows'])} comparisons)"
    if doc["errors"]:
        verdict += f"; {len(doc['errors'])} benchmark(s) failed"
    return f"Result ({doc['device']}): {verdict}."


def write(doc: dict[str, object], kind: str) -> None:
    """``<date>-<kind>.json``, ``<date>-<kind>.md`` and ``latest-<kind>.md`` in results/."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"{doc['date']}-{kind}"
    stem.with_suffix(".json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    md = markdown(doc)
    stem.with_suffix(".md").write_text(md)
    shutil.copyfile(stem.with_suffix(".md"), RESULTS / f"latest-{kind}.md")
    # the JSON beside it feeds tools/bench_table.py (README.md's performance table)
    shutil.copyfile(stem.with_suffix(".json"), RESULTS / f"latest-{kind}.json")
    print("\n" + md)
    print(f"wrote {stem.with_suffix('.json').relative_to(HERE.parent)}, .md, latest-{kind}.md")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=(*PLUGINS, "gpu"), default=None)
    ap.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="auto: CPU, then CUDA when available; cuda: only CUDA, plus bench/gpu.py's rows",
    )
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    ap.add_argument("--no-gpu", action="store_true", help="CPU only, even when CUDA is there")
    ap.add_argument(
        "--omp-wait-policy",
        choices=["passive", "default"],
        default="passive",
        help="'passive' sets OMP_WAIT_POLICY=PASSIVE unless already set (before torch loads)",
    )
    ap.add_argument(
        "--paper-sizes",
        action="store_true",
        help="CPU at the issue's sizes (PAPER_SETTINGS; slow); writes <date>-cpu-paper.*",
    )
    sys.path.insert(0, str(HERE))
    import official

    for name, repo in official.REPOS.items():
        ap.add_argument(
            f"--official-{name}",
            metavar="PATH",
            default=None,
            help=f"a checkout of {repo.github}: time the authors' code (else ${repo.env})",
        )
    args = ap.parse_args(argv)
    for name, repo in official.REPOS.items():
        path = getattr(args, f"official_{name}")
        if path is not None:  # checked now (a wrong path fails, never falls back), then shared
            os.environ[repo.env] = str(official.checkout(name, path))
    if args.omp_wait_policy == "passive":
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch  # after OMP_WAIT_POLICY: libgomp reads it when torch loads

    devices = ["cpu"]
    if torch.cuda.is_available() and not args.no_gpu:
        devices.append("cuda")
    if args.device != "auto":
        if args.device == "cuda" and not torch.cuda.is_available():
            print(
                "--device cuda: no CUDA device here (bench/gpu.sh runs on a GPU)", file=sys.stderr
            )
            return 2
        devices = [args.device]
    ok = True
    for device in devices:
        only = args.only or [*PLUGINS, *(["gpu"] if args.device == "cuda" else [])]
        only = [p for p in only if device != "cpu" or p != "gpu"]  # the gpu rows: CUDA only
        paper = args.paper_sizes and device == "cpu"
        doc = run_device(device, only, not args.no_compile, paper)
        write(doc, ("cpu-paper" if paper else "cpu") if device == "cpu" else "gpu")
        ok = ok and bool(doc["ok"])
    verdict = "every ratio is >= 1" if ok else "NOT every ratio is >= 1 (or a benchmark failed)"
    print(f"FINAL ({', '.join(devices)}, {time.perf_counter() - T0:.0f} s): {verdict}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
