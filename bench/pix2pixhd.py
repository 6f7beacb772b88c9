"""pix2pixHD benchmarks (issue 4): instance-wise average pooling and generator forward.

1. Instance-wise average pooling on a ``1×3×H×W`` feature map with ``--instances`` instances:
   the official formulation (a Python loop over instance ids, batch items and channels, as
   ``Encoder.forward`` in NVIDIA/pix2pixHD) vs. ``synth_pix2pixhd.instance_average`` (one
   sort + ``index_add``), measured in the same run, results asserted equal.
2. The first layer (7×7 reflect conv of the one-hot map + edge channel): dense conv vs. the
   gather path used by the generator.
3. The Cityscapes-512 generator G1 (35 classes + edges, ngf 64, 4 downsamplings, 9 blocks)
   forward at ``H×W`` under ``no_grad``: eager, channels_last and ``torch.compile`` on CPU; on
   CUDA (``--device cuda``, when a GPU is there) fp32 and bf16 autocast, plus the 1024 local
   enhancer at 1024×2048 to compare with the paper's 20–30 ms per 2048×1024 image (1080Ti).

Prints a table and writes ``bench/results/<YYYY-MM-DD>-<device>-pix2pixhd.json``.

    .venv/bin/python bench/pix2pixhd.py [--size 512 1024] [--iters 3] [--no-compile]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from synth import Condition, ops
from synth.layers import label_conv2d
from synth_pix2pixhd import GlobalGenerator, LocalEnhancer, instance_average


def looped_instance_average(outputs: torch.Tensor, inst: torch.Tensor) -> torch.Tensor:
    """The official pooling loop (NVIDIA/pix2pixHD ``Encoder.forward``); ``inst [B, 1, H, W]``."""
    outputs_mean = outputs.clone()
    inst_list = np.unique(inst.cpu().numpy().astype(int))
    for i in inst_list:
        for b in range(outputs.size()[0]):
            indices = (inst[b : b + 1] == int(i)).nonzero()
            for j in range(outputs.size()[1]):
                output_ins = outputs[
                    indices[:, 0] + b, indices[:, 1] + j, indices[:, 2], indices[:, 3]
                ]
                mean_feat = torch.mean(output_ins).expand_as(output_ins)
                outputs_mean[indices[:, 0] + b, indices[:, 1] + j, indices[:, 2], indices[:, 3]] = (
                    mean_feat
                )
    return outputs_mean


def timeit(fn: Callable[[], object], iters: int, warmup: int = 1, sync=None) -> float:
    """Median wall time of ``fn`` in milliseconds."""
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def machine(device: torch.device) -> dict[str, object]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, object] = {
        "nproc": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu": cpu,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def instance_map(h: int, w: int, n: int, seed: int = 0) -> torch.Tensor:
    """``[1, H, W]`` with exactly ``n`` instance ids (blocky, like a segmentation)."""
    g = torch.Generator().manual_seed(seed)
    gh, gw = 8, 16
    cells = torch.randperm(gh * gw, generator=g) % n
    ids = (cells.view(1, gh, gw) * 1000 + 26).long()
    return ops.resize_labels(ids, (h, w))


def label_map(h: int, w: int, k: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, k, (1, h // 16, w // 16), generator=g)
    return ops.resize_labels(coarse, (h, w))


def overfit(steps: int, run_dir: str) -> dict[str, object]:
    """The longer version of tests/pix2pixhd/test_overfit.py: the cityscapes_512 recipe scaled
    down (ngf 8, 3 downsamplings, 2 blocks, ndf 16; VGG term dropped: no ImageNet weights
    offline) trained with the core Trainer on one fixed 64×128 demo pair; L1 to the target."""
    import tempfile

    import synth
    import synth.data
    from synth.trainer import Trainer
    from synth_pix2pixhd import recipe, training_config

    k = 8
    item = synth.data.demo(128, k, split="all")[0]
    item = {key: (v[..., 32:96, :].clone() if isinstance(v, torch.Tensor) else v)
            for key, v in item.items()}  # fmt: skip

    class Data:
        num_classes = k

        def __len__(self) -> int:
            return 8

        def __getitem__(self, i: int) -> dict[str, object]:
            return {**item, "index": i}

    torch.manual_seed(0)
    spec = recipe("cityscapes_512", num_classes=k, ngf=8, n_downsampling=3, n_blocks=2)
    spec["discriminator"].update(ndf=16)
    del spec["losses"]["vgg"]
    model = synth.compose(spec)
    cond = Condition(
        label_map=item["label_map"][None], num_classes=k, instance_map=item["instance_map"][None]
    )

    def l1() -> float:
        model.eval()
        with torch.no_grad():
            out = model.generator(cond).image
        model.train()
        return float((out - item["real"][None]).abs().mean())

    curve = [(0, l1())]
    run_dir = run_dir or tempfile.mkdtemp(prefix="pix2pixhd-overfit-")
    chunk = max(steps // 5, 1)
    trainer = None
    t0 = time.perf_counter()
    for end in range(chunk, steps + 1, chunk):
        cfg = training_config(
            steps=end, decay_start=steps, batch_size=1, device="cpu", run_dir=run_dir,
            sample_every=None, checkpoint_every=steps, progress=False, log_every=10,
        )  # fmt: skip
        if trainer is None:
            trainer = Trainer(model, Data(), cfg)
        trainer.config.steps = end
        trainer.fit()
        curve.append((end, l1()))
        print(f"overfit step {end:>5}: L1 {curve[-1][1]:.4f}", flush=True)
    return {"steps": steps, "seconds": round(time.perf_counter() - t0, 1), "l1_curve": curve}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, nargs=2, default=[512, 1024])
    ap.add_argument("--instances", type=int, default=60)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--out", default=None)
    ap.add_argument(
        "--overfit", type=int, default=0, metavar="STEPS",
        help="only run the one-pair overfit of the scaled-down 512 recipe for STEPS steps",
    )  # fmt: skip
    ap.add_argument("--run-dir", default="")
    args = ap.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    h, w = args.size
    rows: list[dict[str, object]] = []
    if args.overfit:
        res = overfit(args.overfit, args.run_dir)
        out = Path(args.out) if args.out else (
            Path(__file__).parent / "results"
            / f"{datetime.date.today().isoformat()}-cpu-pix2pixhd-overfit.json"
        )  # fmt: skip
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"machine": machine(torch.device("cpu")), **res}, indent=2))
        print(f"wrote {out}")
        return

    def add(name: str, ms: float, **extra: object) -> None:
        rows.append({"name": name, "ms": round(ms, 3), **extra})
        print(f"{name:<58} {ms:>11.2f} ms  {extra or ''}", flush=True)

    # 1. instance-wise average pooling
    torch.manual_seed(0)
    x = torch.randn(1, 3, h, w, device=device)
    inst = instance_map(h, w, args.instances).to(device)
    assert inst.unique().numel() == args.instances
    with torch.no_grad():
        ref = looped_instance_average(x, inst[:, None])
        ours = instance_average(x, inst)
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
        t_loop = timeit(lambda: looped_instance_average(x, inst[:, None]), args.iters, sync=sync)
        t_ours = timeit(lambda: instance_average(x, inst), args.iters, sync=sync)
    shape = f"1x3x{h}x{w}, {args.instances} instances"
    add(f"instance pooling, looped (official) [{shape}]", t_loop)
    add(
        f"instance pooling, ours (sort + index_add) [{shape}]",
        t_ours,
        speedup=round(t_loop / t_ours, 1),
    )

    # 2. the first layer: dense conv of one-hot + edges vs gather
    k, ngf = 35, 64
    labels = label_map(h, w, k).to(device)
    edges = ops.instance_edges(inst)
    weight = torch.randn(ngf, k + 1, 7, 7, device=device) * 0.02
    bias = torch.zeros(ngf, device=device)

    def dense() -> torch.Tensor:
        xin = torch.cat([ops.one_hot(labels, k), edges], 1)
        return F.conv2d(F.pad(xin, (3, 3, 3, 3), mode="reflect"), weight, bias)

    def gather() -> torch.Tensor:
        out = label_conv2d(labels, weight[:, :k], bias, padding=3, padding_mode="reflect")
        return out + F.conv2d(F.pad(edges, (3, 3, 3, 3), mode="reflect"), weight[:, k:])

    with torch.no_grad():
        torch.testing.assert_close(gather(), dense(), rtol=1e-4, atol=1e-4)
        t_dense = timeit(dense, args.iters, sync=sync)
        t_gather = timeit(gather, args.iters, sync=sync)
    add(f"first layer 7x7, dense conv of one-hot [{h}x{w}, K={k}+1]", t_dense)
    add(f"first layer 7x7, gather (label_conv2d) [{h}x{w}, K={k}+1]", t_gather,
        speedup=round(t_dense / t_gather, 2))  # fmt: skip

    # 3. generator forward (Cityscapes-512 G1)
    torch.manual_seed(0)
    gen = GlobalGenerator(num_classes=k, ngf=64, n_downsampling=4, n_blocks=9, use_instances=True)
    gen = gen.to(device).eval()
    cond = Condition(label_map=labels, num_classes=k, instance_map=inst)
    tag = f"G1 cityscapes_512 forward {h}x{w}"
    with torch.no_grad():
        base = gen(cond).image
        t = timeit(lambda: gen(cond), args.iters, sync=sync)
        add(f"{tag}, eager fp32 ({device.type})", t, ms_per_image=round(t, 1))
        gen_cl = gen.to(memory_format=torch.channels_last)
        t = timeit(lambda: gen_cl(cond), args.iters, sync=sync)
        add(f"{tag}, channels_last fp32 ({device.type})", t, ms_per_image=round(t, 1))
        gen = gen.to(memory_format=torch.contiguous_format)
        if device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                t = timeit(lambda: gen(cond), args.iters, sync=sync)
            add(f"{tag}, eager bf16 autocast (cuda)", t, ms_per_image=round(t, 1))
        if not args.no_compile:
            try:
                compiled = torch.compile(gen)
                t0 = time.perf_counter()
                out = compiled(cond).image
                compile_s = time.perf_counter() - t0
                err = float((out - base).abs().max())
                t = timeit(lambda: compiled(cond), args.iters, warmup=0, sync=sync)
                add(f"{tag}, torch.compile fp32 ({device.type})", t,
                    ms_per_image=round(t, 1), compile_s=round(compile_s, 1),
                    max_abs_diff=err)  # fmt: skip
            except Exception as e:  # report, do not hide, a failing backend
                print(f"torch.compile failed: {type(e).__name__}: {e}", file=sys.stderr)
                msg = f"{type(e).__name__}: {str(e)[:300]}"
                rows.append({"name": f"{tag}, torch.compile", "error": msg})
        if device.type == "cuda":
            big = LocalEnhancer(num_classes=k, ngf=32, use_instances=True).to(device).eval()
            lab2 = label_map(2 * h, 2 * w, k).to(device)
            inst2 = instance_map(2 * h, 2 * w, args.instances).to(device)
            cond2 = Condition(label_map=lab2, num_classes=k, instance_map=inst2)
            for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
                with torch.autocast(
                    "cuda", dtype=dtype or torch.float32, enabled=dtype is not None
                ):
                    t = timeit(lambda: big(cond2), args.iters, sync=sync)
                add(f"G1+G2 cityscapes_1024 forward {2 * h}x{2 * w}, {name} (cuda)", t,
                    paper_ms="20-30 (1080Ti, 2048x1024)")  # fmt: skip

    result = {
        "benchmark": "pix2pixhd",
        "date": datetime.date.today().isoformat(),
        "machine": machine(device),
        "settings": {"size": [h, w], "instances": args.instances, "iters": args.iters},
        "rows": rows,
    }
    out = Path(args.out) if args.out else (
        Path(__file__).parent / "results"
        / f"{datetime.date.today().isoformat()}-{device.type}-pix2pixhd.json"
    )  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
