"""pix2pixHD benchmarks (issue 4): instance-wise average pooling and generator forward.

1. Instance-wise average pooling on a ``1×3×H×W`` feature map with ``--instances`` instances:
   the official formulation (a Python loop over instance ids, batch items and channels, as
   ``Encoder.forward`` in NVIDIA/pix2pixHD) vs. ``synth_pix2pixhd.instance_average`` (one
   sort + ``index_add``), timed interleaved in the same run, results asserted equal.
2. The first layer (7×7 reflect conv of the one-hot map + edge channel): dense conv vs. the
   gather path used by the generator.
3. The Cityscapes-512 generator G1 (35 classes + edges, ngf 64, 4 downsamplings, 9 blocks)
   forward at ``H×W`` under ``no_grad``: eager, channels_last and ``torch.compile`` on CPU; on
   CUDA (``--device cuda``, when a GPU is there) fp32 and bf16 autocast, plus the 1024 local
   enhancer at 1024×2048 to compare with the paper's 20–30 ms per 2048×1024 image (1080Ti).
   These are variants of our own code, not comparisons.

``run()`` returns the rows for ``bench/run_all.py``; the CLI prints a table and writes
``bench/results/<YYYY-MM-DD>-<device>-pix2pixhd.json``.

    .venv/bin/python bench/pix2pixhd.py [--size 512 1024] [--iters 3] [--no-compile]
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import sys
import time
from pathlib import Path

import harness
import numpy as np
import official as official_code
import torch
import torch.nn.functional as F
from torch import nn

from synth import Condition
from synth.nn import ops
from synth.nn.layers import label_conv2d
from synth_pix2pixhd import GlobalGenerator, InstanceEncoder, LocalEnhancer, instance_average


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


class ReimplementedEncoder(nn.Module):
    """The official ``Encoder`` layout re-implemented (the fallback without a checkout):
    ``c7s1-nef, d…, u…, c7s1-feat_num, tanh`` with ``InstanceNorm2d(affine=False)`` and the
    official pooling loop (:func:`looped_instance_average`); the official state-dict keys."""

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 16, n_down: int = 4) -> None:
        super().__init__()
        norm = nn.InstanceNorm2d
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7), norm(ngf)]
        layers.append(nn.ReLU(True))
        for i in range(n_down):
            c = ngf * 2**i
            layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), norm(2 * c), nn.ReLU(True)]
        for i in range(n_down):
            c = ngf * 2 ** (n_down - i)
            up = nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1)
            layers += [up, norm(c // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, input: torch.Tensor, inst: torch.Tensor) -> torch.Tensor:
        return looped_instance_average(self.model(input), inst)


def official_encoder(root: Path | None, feat_num: int, nef: int, n_down: int) -> nn.Module:
    """The authors' ``networks.define_G(3, feat_num, nef, 'encoder', n_down, norm='instance')``
    (their ``weights_init``) from the checkout, or :class:`ReimplementedEncoder` without one."""
    if root is None:
        torch.manual_seed(0)
        return ReimplementedEncoder(3, feat_num, nef, n_down).eval()
    import contextlib
    import io

    with official_code.imported(root), contextlib.redirect_stdout(io.StringIO()):
        from models import networks

        torch.manual_seed(0)
        return networks.define_G(3, feat_num, nef, "encoder", n_down, norm="instance").eval()


def conv_only(encoder: nn.Module) -> nn.Module:
    """The encoder's shared work alone: its padding and (transposed) convolutions, without
    norms, activations or pooling: what any implementation must compute (the ceiling)."""
    keep = (nn.ReflectionPad2d, nn.Conv2d, nn.ConvTranspose2d)
    return nn.Sequential(*[m for m in encoder.model if isinstance(m, keep)])


def instance_map(h: int, w: int, n: int, seed: int = 0) -> torch.Tensor:
    """``[1, H, W]`` with exactly ``n`` instance ids (blocky, like a segmentation)."""
    g = torch.Generator().manual_seed(seed)
    gh, gw = 8, 16
    while gh * gw < n:  # a finer grid for many instances
        gh, gw = 2 * gh, 2 * gw
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
    from synth.train import Trainer
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


def run(
    size: tuple[int, int] = (512, 1024),
    instances: int = 60,
    repeats: int = 3,
    device: torch.device | str = "cpu",
    compile: bool = True,
    *,
    encoder_instances: int = 512,
    official_path: str | Path | None = None,
) -> dict[str, object]:
    """All pix2pixHD rows at ``size``: comparisons (``rows``) and generator ``variants``.

    The encoder row times the authors' ``Encoder`` (a checkout of NVIDIA/pix2pixHD from
    ``official_path`` or ``SYNTH_OFFICIAL_PIX2PIXHD``; else the re-implemented layout) against
    ``InstanceEncoder.posterior`` with the same weights, on ``encoder_instances`` instances.

    Outputs of ours and the reference are asserted equal before timing. A failing
    ``torch.compile`` backend is reported under ``errors``, not raised.
    """
    device = torch.device(device)
    h, w = size
    k, ngf = 35, 64
    rows: list[dict[str, object]] = []
    variants: list[dict[str, object]] = []
    errors: list[dict[str, object]] = []
    timing = {"repeats": repeats, "device": device}

    # 0. the encoder E + instance-wise pooling, against the authors' Encoder when given
    root = official_code.checkout("pix2pixhd", official_path)
    enc_rows = encoder_rows(root, h, w, encoder_instances, device, timing)
    rows.extend(enc_rows)

    # 1. instance-wise average pooling
    torch.manual_seed(0)
    x = torch.randn(1, 3, h, w, device=device)
    inst = instance_map(h, w, instances).to(device)
    assert inst.unique().numel() == instances
    with torch.no_grad():
        ref = looped_instance_average(x, inst[:, None])
        torch.testing.assert_close(instance_average(x, inst), ref, rtol=1e-5, atol=1e-5)
        rows.append(
            harness.compare(
                "pix2pixhd: instance-wise average pooling (loop vs sort + index_add)",
                f"1x3x{h}x{w}, {instances} instances",
                lambda: looped_instance_average(x, inst[:, None]),
                lambda: instance_average(x, inst),
                **timing,
            )
        )

    # 2. the first layer: dense conv of one-hot + edges vs gather
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
        rows.append(
            harness.compare(
                "pix2pixhd: first 7x7 conv, dense one-hot vs gather (label_conv2d)",
                f"{h}x{w}, K={k}+1 edge, {ngf} out",
                dense,
                gather,
                **timing,
            )
        )

    # 3. generator forward (Cityscapes-512 G1): eager, channels_last, torch.compile
    torch.manual_seed(0)
    gen = GlobalGenerator(num_classes=k, ngf=ngf, n_downsampling=4, n_blocks=9, use_instances=True)
    gen = gen.to(device).eval()
    gen_cl = copy.deepcopy(gen).to(memory_format=torch.channels_last)
    cond = Condition(label_map=labels, num_classes=k, instance_map=inst)
    setting = f"G1 cityscapes_512 (ngf {ngf}, 4 down, 9 blocks), 1x{h}x{w}, {device.type}"
    fns = {
        "pix2pixhd: G1 forward, eager fp32": lambda: gen(cond),
        "pix2pixhd: G1 forward, channels_last fp32": lambda: gen_cl(cond),
    }
    compile_info: dict[str, object] = {}
    with torch.no_grad():
        base = gen(cond).image
        if compile:
            try:
                compiled = torch.compile(gen)
                t0 = time.perf_counter()
                out = compiled(cond).image
                compile_info = {
                    "compile_s": round(time.perf_counter() - t0, 1),
                    "max_abs_diff": float((out - base).abs().max()),
                }
                fns["pix2pixhd: G1 forward, torch.compile fp32"] = lambda: compiled(cond)
            except Exception as e:  # report, do not hide, a failing backend
                print(f"torch.compile failed: {type(e).__name__}: {e}", file=sys.stderr)
                msg = f"{type(e).__name__}: {str(e)[:300]}"
                errors.append({"name": "pix2pixhd: G1 forward, torch.compile", "error": msg})
        gen_rows = harness.interleaved_variants(setting, fns, **timing)
        for r in gen_rows:
            r.update(model="G1 cityscapes_512", shape=f"{h}x{w}")
            if "torch.compile" in str(r["name"]):
                r.update(compile_info)
        variants.extend(gen_rows)
        if device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                variants.append(
                    harness.variant(
                        "pix2pixhd: G1 forward, eager bf16 autocast", setting, lambda: gen(cond),
                        model="G1 cityscapes_512", shape=f"{h}x{w}", **timing,
                    )
                )  # fmt: skip
            big = LocalEnhancer(num_classes=k, ngf=32, use_instances=True).to(device).eval()
            lab2 = label_map(2 * h, 2 * w, k).to(device)
            inst2 = instance_map(2 * h, 2 * w, instances).to(device)
            cond2 = Condition(label_map=lab2, num_classes=k, instance_map=inst2)
            big_setting = f"G1+G2 cityscapes_1024, 1x{2 * h}x{2 * w}, cuda"
            for name, dtype in (("fp32", None), ("bf16 autocast", torch.bfloat16)):
                with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=bool(dtype)):
                    variants.append(
                        harness.variant(
                            f"pix2pixhd: G1+G2 forward, {name}", big_setting, lambda: big(cond2),
                            model="G1+G2 cityscapes_1024", shape=f"{2 * h}x{2 * w}",
                            paper_ms="20-30 (1080Ti, 2048x1024)", **timing,
                        )
                    )  # fmt: skip
    return {
        "benchmark": "pix2pixhd",
        "settings": {
            "size": [h, w],
            "instances": instances,
            "repeats": repeats,
            "device": str(device),
        },
        "rows": rows,
        "variants": variants,
        "errors": errors,
    }


def encoder_rows(
    root: Path | None,
    h: int,
    w: int,
    instances: int,
    device: torch.device,
    timing: dict[str, object],
) -> list[dict[str, object]]:
    """The feature encoder E (Cityscapes: feat_num 3, nef 16, 4 downsamplings) + instance-wise
    average pooling on a ``1x3xHxW`` photo with ``instances`` instances: the official Encoder's
    forward vs ``InstanceEncoder.posterior`` (weights converted with ``from_official``),
    outputs asserted equal; and the ceiling, the official time over its convolutions alone."""
    from synth_pix2pixhd import from_official

    feat, nef, nd = 3, 16, 4
    ref = official_encoder(root, feat, nef, nd).to(device)
    ours = from_official(ref.state_dict(), "E").to(device).eval()
    assert isinstance(ours, InstanceEncoder)
    convs = conv_only(ref)
    torch.manual_seed(1)
    image = torch.rand(1, 3, h, w, device=device) * 2 - 1
    inst = instance_map(h, w, instances).to(device)
    assert inst.unique().numel() == instances
    cond = Condition(instance_map=inst)
    inst_f = inst[:, None].float()  # the official input: the instance map as a float image
    with torch.no_grad():
        want, got = ref(image, inst_f), ours.posterior(image, cond).spatial
        max_diff = float((want - got).abs().max())
        assert max_diff <= 1e-4, f"official vs ours encoder outputs differ by {max_diff}"
        setting = f"1x3x{h}x{w}, {instances} instances, nef {nef}, {nd} down, feat_num {feat}"
        label = official_code.label("pix2pixhd", root)
        who = "official Encoder" if root is not None else "official Encoder layout (re-impl.)"
        row = harness.compare(
            f"pix2pixhd: encoder E + instance pooling, {who} vs InstanceEncoder.posterior",
            setting,
            lambda: ref(image, inst_f),
            lambda: ours.posterior(image, cond),
            memory=True,
            **timing,
        )
        ceiling = harness.compare(
            "pix2pixhd: encoder ceiling (reference vs its convolutions alone)",
            setting,
            lambda: ref(image, inst_f),
            lambda: convs(image),
            **timing,
        )
    row.update(
        reference=label,
        max_abs_diff=max_diff,
        ceiling=round(ceiling["ratio"], 3),
        of_ceiling=round(row["ratio"] / ceiling["ratio"], 3),
        target=2.5,  # issue 18
        notes="ceiling: the reference's time over its padding + convolutions alone (no norms, "
        "ReLUs or pooling), measured in the same run; of_ceiling = ratio / ceiling",
    )
    return [row]


def legacy_rows(result: dict[str, object]) -> list[dict[str, object]]:
    """``run``'s rows in this script's original JSON layout (``name``, ``ms``, ``speedup``)."""
    h, w = result["settings"]["size"]
    n = result["settings"]["instances"]
    names = {
        "pix2pixhd: instance-wise average pooling (loop vs sort + index_add)": (
            f"instance pooling, looped (official) [1x3x{h}x{w}, {n} instances]",
            f"instance pooling, ours (sort + index_add) [1x3x{h}x{w}, {n} instances]",
        ),
        "pix2pixhd: first 7x7 conv, dense one-hot vs gather (label_conv2d)": (
            f"first layer 7x7, dense conv of one-hot [{h}x{w}, K=35+1]",
            f"first layer 7x7, gather (label_conv2d) [{h}x{w}, K=35+1]",
        ),
    }
    out: list[dict[str, object]] = []
    for r in result["rows"]:
        ref_name, ours_name = names[r["name"]]
        out.append({"name": ref_name, "ms": round(r["reference_s"] * 1e3, 3)})
        ms = round(r["ours_s"] * 1e3, 3)
        out.append({"name": ours_name, "ms": ms, "speedup": round(r["ratio"], 2)})
    dev = torch.device(result["settings"]["device"]).type
    for v in result["variants"]:
        how = str(v["name"]).split(", ", 1)[1]
        what, shape = v["model"], v["shape"]
        ms = round(v["seconds"] * 1e3, 3)
        extra = {key: v[key] for key in ("compile_s", "max_abs_diff", "paper_ms") if key in v}
        out.append(
            {"name": f"{what} forward {shape}, {how} ({dev})", "ms": ms,
             "ms_per_image": round(ms, 1), **extra}
        )  # fmt: skip
    out.extend(result["errors"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, nargs=2, default=[512, 1024])
    ap.add_argument("--instances", type=int, default=60)
    ap.add_argument("--iters", type=int, default=3, help="timed repeats (medians reported)")
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
    today = datetime.date.today().isoformat()
    if args.overfit:
        res = overfit(args.overfit, args.run_dir)
        out = Path(args.out) if args.out else (
            Path(__file__).parent / "results" / f"{today}-cpu-pix2pixhd-overfit.json"
        )  # fmt: skip
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"machine": harness.machine("cpu"), **res}, indent=2))
        print(f"wrote {out}")
        return
    result = run(tuple(args.size), args.instances, args.iters, device, not args.no_compile)
    rows = legacy_rows(result)
    for r in rows:
        extra = {key: v for key, v in r.items() if key not in ("name", "ms")}
        print(f"{r['name']:<66} {r.get('ms', float('nan')):>11.2f} ms  {extra or ''}")
    doc = {
        "benchmark": "pix2pixhd",
        "date": today,
        "machine": harness.machine(device),
        "settings": {**result["settings"], "iters": args.iters},
        "rows": rows,
    }
    out = Path(args.out) if args.out else (
        Path(__file__).parent / "results" / f"{today}-{device.type}-pix2pixhd.json"
    )  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
