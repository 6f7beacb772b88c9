"""Is the editor responsive? The model ``make demo`` saves answering a sample-6 request.

Issue 15 item 5: on this 2-core CPU the demo's model answers a request for 6 samples in ≤ 1 s.
This script gets that model the way a user does — ``synth demo --steps N`` into a temporary
directory (a few steps: speed does not depend on training), or ``--model DIR`` for one already
saved (``runs/demo/model`` after ``make demo``) — loads it with ``synth.load`` and times, with
the median of interleaved repeats:

* ``http``: ``POST /api/run`` through the FastAPI app in process (JSON in, 6 PNGs out): what
  the page waits for, minus the loopback socket; the server runs the handler in a worker
  thread, as ``synth app`` does (the other rows run on the main thread: torch's OpenMP pool
  differs between the two, which shows on a loaded machine);
* ``editor``: :meth:`synth.app.Editor.run` (the handler: recipe checks, one forward, PNGs);
* ``forward``: ``model.sample(cond, 6)`` alone (the floor);
* the edits the model offers (resample a scale, blend a region), one request each.

Every request has a new seed, so no cached state answers it. The machine's load average is
recorded next to the numbers (other jobs slow every row alike).

    uv run python bench/app.py                     # trains the demo model for 2 steps first
    uv run python bench/app.py --model runs/demo/model
    uv run python bench/app.py --threads 2 --repeats 15

Writes ``bench/results/<YYYY-MM-DD>-cpu-app.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# as bench/run_all.py: libgomp's spin-waiting stalls short OpenMP regions on a loaded machine
# (bench/README.md); set before torch loads, recorded in the result
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from harness import machine  # noqa: E402

import synth  # noqa: E402
from synth.app import Editor, create_app, encode_array  # noqa: E402

GOAL_S = 1.0


def demo_model(steps: int, out: Path) -> Path:
    """Train the default demo recipe for ``steps`` steps into ``out`` (``synth demo``)."""
    from synth.demo import run_demo

    result = run_demo(out_dir=out, steps=steps, minutes=30, progress=False, log=lambda *_: None)
    return Path(result.files["model"])


def painted_labels(size: tuple[int, int], k: int) -> np.ndarray:
    """A label map like a user paints: bands of a few classes and a blob."""
    h, w = size
    lm = np.zeros((h, w), np.uint8)
    lm[h // 2 :] = 1 % k
    lm[h * 3 // 4 :, : w // 2] = 2 % k
    yy, xx = np.mgrid[:h, :w]
    lm[(yy - h // 3) ** 2 + (xx - w // 2) ** 2 < (h // 6) ** 2] = 3 % k
    return lm


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, help="a saved model (default: train the demo's)")
    p.add_argument("--steps", type=int, default=2, help="demo training steps (default 2)")
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--out", type=Path, default=None, help="JSON path (default bench/results/)")
    p.add_argument(
        "--work",
        type=Path,
        default=None,
        help="train the demo model here and keep it (reused when it holds one); default: a "
        "temporary directory",
    )
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        work = args.work or Path(tmp) / "demo"
        model_dir = args.model
        if model_dir is None:
            saved = work / "model"
            model_dir = saved if (saved / "synth.json").is_file() else demo_model(args.steps, work)
        made = time.perf_counter() - t0
        t0 = time.perf_counter()
        model = synth.load(model_dir, for_training=False)
        editor = Editor(model, size=(64, 64), name=str(model_dir))
        loaded = time.perf_counter() - t0
        spec = model.spec.model_dump(mode="json")

    caps = editor.caps
    inp: dict = {"size": list(caps.size)}
    if caps.input == "label_map":
        inp["label_map"] = encode_array(painted_labels(caps.size, caps.num_classes or 1))
    elif caps.input == "class_id":
        inp["class_id"] = 0
    else:
        print(
            f"bench/app.py: the model reads {caps.input}; give a label-map model", file=sys.stderr
        )
        return 2

    from fastapi.testclient import TestClient

    client = TestClient(create_app(editor))
    seeds = iter(range(1, 10**6))
    cond = synth.app.make_condition(model, synth.app.Recipe(input=inp).input)

    def http() -> None:
        r = client.post(
            "/api/run",
            json={"input": inp, "steps": [{"op": "sample", "n": 6, "seed": next(seeds)}]},
        )
        assert r.status_code == 200, r.text
        assert len(r.json()["images"]) == 6

    def direct() -> None:
        editor.run({"input": inp, "steps": [{"op": "sample", "n": 6, "seed": next(seeds)}]})

    def forward() -> None:
        g = torch.Generator().manual_seed(next(seeds))
        model.sample(cond, 6, sampler="core.prior", generator=g)

    rows = {"http": http, "editor": direct, "forward": forward}
    base = [{"op": "sample", "n": 6, "seed": 0}, {"op": "pick", "index": 1}]
    if caps.offers("resample_scale"):
        scale_sampler = caps.edits["resample_scale"].sampler

        def scale() -> None:
            step = {"op": "resample_scale", "scales": [caps.edits["resample_scale"].count - 2],
                    "n": 6, "seed": next(seeds), "sampler": scale_sampler}  # fmt: skip
            editor.run({"input": inp, "steps": [*base, step]})

        rows["resample_scale_6"] = scale
    if caps.offers("blend"):
        blend_sampler = caps.edits["blend"].sampler
        h, w = caps.size
        region = np.zeros((h, w), np.uint8)
        region[: h // 2, : w // 2] = 1

        def blend() -> None:
            step = {"op": "blend", "with_index": 0, "sampler": blend_sampler}
            step["region"] = encode_array(region)
            editor.run(
                {
                    "input": inp,
                    "steps": [{"op": "sample", "n": 6, "seed": next(seeds)}, base[1], step],
                }
            )

        rows["blend_after_sample_6"] = blend

    for fn in rows.values():  # warm-up: first-call allocations, lazy imports
        fn()
    times: dict[str, list[float]] = {k: [] for k in rows}
    load_before = os.getloadavg()
    for _ in range(args.repeats):  # interleaved: load from other processes hits every row alike
        for name, fn in rows.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    load_after = os.getloadavg()
    med = {k: statistics.median(v) for k, v in times.items()}

    result = {
        "benchmark": "synth app: the demo model answering a sample-6 request (issue 15 item 5)",
        "date": datetime.date.today().isoformat(),
        "machine": machine("cpu"),
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "model": {
            "source": str(args.model)
            if args.model
            else f"synth demo --steps {args.steps} ({work})",
            "recipe_generator": spec["generator"]["type"],
            "size": list(caps.size),
            "num_classes": caps.num_classes,
            "offers": [k for k, e in caps.edits.items() if e.offered],
            "made_s": round(made, 2),
            "load_and_probe_s": round(loaded, 2),
        },
        "repeats": args.repeats,
        "median_s": {k: round(v, 4) for k, v in med.items()},
        "all_s": {k: [round(x, 4) for x in v] for k, v in times.items()},
        "goal_s": GOAL_S,
        "goal_met": med["http"] <= GOAL_S,
        "note": "sample-6 = POST /api/run with one 'sample' step, n 6, a new seed each time; "
        "on a loaded machine every row slows alike: compare with the load average",
    }
    print(f"model: {result['model']['source']} ({result['model']['recipe_generator']}, "
          f"{caps.size[0]}×{caps.size[1]}, offers {', '.join(result['model']['offers'])})")  # fmt: skip
    print(f"load average {load_before} -> {load_after}, torch threads {torch.get_num_threads()}")
    print(f"{'request':<24} {'median':>9} {'min':>9} {'max':>9}")
    for k, v in times.items():
        print(f"{k:<24} {med[k]:>8.3f}s {min(v):>8.3f}s {max(v):>8.3f}s")
    verdict = "met" if result["goal_met"] else "NOT met"
    print(f"goal: sample-6 over HTTP ≤ {GOAL_S:.0f} s: {verdict} ({med['http']:.3f} s)")
    out = args.out or HERE / "results" / f"{result['date']}-cpu-app.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
