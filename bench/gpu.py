"""The GPU rows of issue 19, in one script: what a lent GPU session runs (through
``bench/gpu.sh`` and ``bench/run_all.py --device cuda``).

Sections, in priority order (each in its own try: a failure is recorded and the next runs; a
section whose estimated time would end past ``--budget-s`` is skipped and listed; with
``SYNTH_GPU_BENCH_PARTIAL=path`` the results so far are written there after each section, so a
run killed by its time box still leaves them):

1. ``pix2pixhd``: pix2pixHD's generator (G1 + G2, ``pix2pixhd.cityscapes_1024``) at 2048×1024,
   batch 1: ms/image in fp32 (torch's defaults: TF32 off for matmuls, on for cuDNN convs),
   bf16 autocast, bf16 + ``channels_last``, bf16 + ``channels_last`` + ``torch.compile``;
   FLOPs counted once with ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and
   matmuls; the label-gather first layer counts nothing) and MFU = FLOPs / time / the card's
   dense bf16 peak (H100 SXM and H200: 989 TFLOP/s). Goal: <= 5 ms/image in bf16.
2. ``label_gather``: the label-gather conv vs the dense conv of the one-hot map (the official
   layout: one-hot, then conv), for pix2pixHD's 7×7 reflect first layer at 2048×1024 and SPADE's
   3×3 shared MLP conv at 256² (batch 8, 151 classes): ours by the Triton kernel and by the
   PyTorch ``embedding_bag`` path.
5. ``kernels``: the Triton kernels vs ``torch.compile`` of the PyTorch path vs eager PyTorch:
   SPADE's normalise-and-modulate (instance and batch statistics, fp32 and bf16) and the gather,
   forward only (where ``auto`` uses them), plus forward + backward of the fused op (forced
   Triton: its backward recomputes the PyTorch forward) against eager.
3. ``generators``: SPADE (``clvae.spade_generator``) and CLVAE (``clvae.clvae_generator`` with
   its class/layer encoder's prior) at 256², batch 8, 151 classes: images/s in fp32 and bf16,
   kernels on (``auto``) and off (``torch``).
4. ``cimle``: code selection, candidates/s, ``select_codes`` against the official batch-1
   scoring loop (re-implemented: one forward and one distance per candidate,
   ``bench/cimle.py``'s ``official_selection``) on the same GPU; the chosen codes are asserted
   equal first. Goal: >= 10×.

``--tiny`` shrinks every size so that ``--device cpu --tiny`` runs on a CPU in about a minute
(it checks the script, not the numbers). Results: ``bench/results/<date>-gpu.json`` / ``.md``
on CUDA (the device named inside); a CPU dry run writes under ``--out`` (default
``/tmp/synth-gpu-dryrun``), never into bench/results.

    python bench/gpu.py                      # on a GPU machine (bench/gpu.sh runs it)
    python bench/gpu.py --device cpu --tiny  # dry run on a CPU
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
if __name__ == "__main__" and "cpu" in sys.argv:
    # a CPU dry run forces the Triton kernels on CPU tensors: Triton's interpreter runs them,
    # and it must be switched on before they are defined (see synth.nn.kernels.triton_kernels)
    os.environ.setdefault("TRITON_INTERPRET", "1")

import harness  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import synth  # noqa: E402
from synth.nn import kernels, ops  # noqa: E402
from synth.nn.layers import label_conv2d  # noqa: E402

SECTIONS = ("pix2pixhd", "label_gather", "generators", "cimle", "kernels")
#: rough GPU seconds of each section (compiles included): one is not started when it would end
#: past the budget (bench/gpu.sh kills the whole stage at its time box)
ESTIMATE_S = {"pix2pixhd": 100, "label_gather": 10, "generators": 30, "cimle": 30, "kernels": 60}

#: dense bf16 peak (TFLOP/s, no sparsity) by a substring of the device name, first match wins
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756.0),
    ("H100", 989.0),
    ("H200", 989.0),
    ("A100", 312.0),
)
GOAL_MS_BF16 = 5.0
GOAL_CIMLE_RATIO = 10.0

FULL = {
    "pix2pixhd": {"size": (1024, 2048), "instances": 60},
    "label_gather": {"p2p_size": (1024, 2048), "spade_size": 256, "spade_batch": 8},
    "kernels": {
        "norm_shapes": ((8, 64, 256, 256), (8, 1024, 32, 32)),
        "gather": (8, 256, 151, 128),  # batch, size, classes, out
    },
    "generators": {"size": 256, "batch": 8, "ngf": 64, "classes": 151},
    "cimle": {"images": 8, "codes": 64, "nf": 32, "nb": 2, "gc": 16},
    "repeats": 10,
    "warmup": 2,
}
TINY = {
    "pix2pixhd": {"size": (64, 128), "instances": 6},
    "label_gather": {"p2p_size": (64, 128), "spade_size": 32, "spade_batch": 2},
    "kernels": {"norm_shapes": ((2, 4, 16, 16),), "gather": (2, 16, 7, 8)},
    "generators": {"size": 64, "batch": 2, "ngf": 8, "classes": 7},
    "cimle": {"images": 2, "codes": 4, "nf": 8, "nb": 1, "gc": 4},
    "repeats": 1,
    "warmup": 1,
}


def peak_tflops(device: torch.device) -> tuple[float | None, str]:
    """The card's dense bf16 peak and where the number comes from."""
    if device.type != "cuda":
        return None, "no GPU: MFU not computed"
    name = torch.cuda.get_device_name(device)
    for key, tflops in PEAK_BF16_TFLOPS:
        if key in name:
            return tflops, f"{name}: dense bf16 peak {tflops:g} TFLOP/s (datasheet, by name)"
    return None, f"{name}: unknown card, MFU not computed"


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call, as ``FlopCounterMode`` counts them (2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


@contextlib.contextmanager
def backend(name: str) -> Iterator[None]:
    with kernels.backend_scope(name):  # type: ignore[arg-type]
        yield


def _autocast(device: torch.device, bf16: bool) -> Any:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


# --------------------------------------------------------------------------- 1. pix2pixHD


def section_pix2pixhd(device, cfg, timing, compile_ok, peak) -> dict[str, Any]:
    from pix2pixhd import instance_map, label_map

    h, w = cfg["size"]
    k = 35
    spec = dict(synth.recipes()["pix2pixhd.cityscapes_1024"].spec["generator"])
    torch.manual_seed(0)
    gen = synth.build(spec).to(device).eval()
    labels = label_map(h, w, k).to(device)
    inst = instance_map(h, w, cfg["instances"]).to(device)
    cond = synth.Condition(label_map=labels, num_classes=k, instance_map=inst)
    setting = f"pix2pixhd.cityscapes_1024 G (G1+G2), 1x{h}x{w}, {device.type}"
    out: dict[str, Any] = {"variants": [], "rows": [], "errors": []}
    with torch.no_grad():
        flops = count_flops(lambda: gen(cond))
        gen_cl = synth.build(spec).to(device).eval()
        gen_cl.load_state_dict(gen.state_dict())
        gen_cl = gen_cl.to(memory_format=torch.channels_last)
        fns: dict[str, Callable[[], Any]] = {}

        def run(g, bf16):
            def fn():
                with _autocast(device, bf16):
                    return g(cond).image

            return fn

        fns["fp32"] = run(gen, False)
        fns["bf16"] = run(gen, True)
        fns["bf16 + channels_last"] = run(gen_cl, True)
        compile_s = None
        if compile_ok:
            try:
                compiled = torch.compile(gen_cl, backend=compile_ok)
                t0 = time.perf_counter()
                ref = run(gen_cl, True)().float()
                got = run(compiled, True)().float()
                harness.synchronizer(device)()
                compile_s = round(time.perf_counter() - t0, 1)
                out["compile_max_abs_diff"] = float((got - ref).abs().max())
                fns["bf16 + channels_last + compile"] = run(compiled, True)
            except Exception as e:
                out["errors"].append(
                    {"name": "pix2pixhd G torch.compile", "error": f"{type(e).__name__}: {e}"[:400]}
                )
        rows = harness.interleaved_variants(setting, fns, device=device, **timing)
    for r in rows:
        label = r["name"]
        ms = 1e3 * float(r["seconds"])
        r.update(
            name=f"pix2pixHD G 2048x1024-class, {label}",
            ms_per_image=round(ms, 3),
            images_per_s=1.0 / float(r["seconds"]),
            flops=flops,
            tflops_per_s=round(flops / float(r["seconds"]) / 1e12, 2),
        )
        if peak:
            r["mfu"] = round(flops / float(r["seconds"]) / (peak * 1e12), 4)
        if label.startswith("bf16"):
            r["goal_ms"] = GOAL_MS_BF16
            r["goal_met"] = ms <= GOAL_MS_BF16
        if "compile" in label and compile_s is not None:
            r["compile_s"] = compile_s
        r["note"] = _note(r)
    out["variants"] = rows
    out["flops_per_image"] = flops
    # the same bf16 G with the Triton label-gather (auto) and without (torch)
    with torch.no_grad():
        out["rows"].append(
            harness.compare(
                "pix2pixHD G bf16: PyTorch gather (reference) vs Triton gather (ours)",
                setting,
                _with_backend("torch", run(gen, True)),
                _with_backend("auto", run(gen, True)),
                device=device,
                **timing,
            )
        )
    return out


def _with_backend(name: str, fn: Callable[[], Any]) -> Callable[[], Any]:
    def wrapped():
        with backend(name):
            return fn()

    return wrapped


def _note(r: dict[str, Any]) -> str:
    parts = []
    if "ms_per_image" in r:
        parts.append(f"{r['ms_per_image']:.2f} ms/image")
    if "images_per_s" in r and "ms_per_image" not in r:
        parts.append(f"{r['images_per_s']:.1f} images/s")
    if "tflops_per_s" in r:
        parts.append(f"{r['tflops_per_s']} TFLOP/s")
    if "mfu" in r:
        parts.append(f"MFU {100 * r['mfu']:.1f}% of dense bf16 peak")
    if "goal_ms" in r:
        parts.append(f"goal <= {r['goal_ms']} ms: {'met' if r['goal_met'] else 'NOT met'}")
    if "compile_s" in r:
        parts.append(f"compile {r['compile_s']} s")
    if "candidates_per_s" in r:
        parts.append(f"{r['candidates_per_s']:.0f} candidates/s")
    return "; ".join(parts)


# --------------------------------------------------------------------------- 2. label gather


def section_label_gather(device, cfg, timing) -> dict[str, Any]:
    from pix2pixhd import label_map

    rows = []
    cases = []
    h, w = cfg["p2p_size"]
    k = 35
    labels = label_map(h, w, k).to(device)
    weight = torch.randn(32, k, 7, 7, device=device) * 0.02
    bias = torch.zeros(32, device=device)
    cases.append(
        (
            f"pix2pixHD G2 first 7x7 conv (reflect), 1x{h}x{w}, K={k}, 32 out",
            labels,
            weight,
            bias,
            3,
            "reflect",
        )
    )
    s, b = cfg["spade_size"], cfg["spade_batch"]
    g = torch.Generator(device="cpu").manual_seed(0)
    k2 = 151
    labels2 = torch.randint(0, k2, (b, s // 8, s // 8), generator=g)
    labels2 = labels2.repeat_interleave(8, 1).repeat_interleave(8, 2).to(device)
    weight2 = torch.randn(128, k2, 3, 3, device=device) * 0.02
    cases.append(
        (
            f"SPADE mlp_shared 3x3 conv, {b}x{s}x{s}, K={k2}, 128 out",
            labels2,
            weight2,
            torch.zeros(128, device=device),
            1,
            "zeros",
        )
    )
    for setting, lab, wt, bs, pad, mode in cases:
        kk = wt.shape[1]

        def dense(lab=lab, wt=wt, bs=bs, pad=pad, mode=mode, kk=kk):
            x = ops.one_hot(lab, kk)
            if mode == "reflect":
                return F.conv2d(F.pad(x, (pad,) * 4, mode="reflect"), wt, bs)
            return F.conv2d(x, wt, bs, padding=pad)

        def gather(lab=lab, wt=wt, bs=bs, pad=pad, mode=mode):
            return label_conv2d(lab, wt, bs, padding=pad, padding_mode=mode)

        with torch.no_grad():
            ref = dense()
            for name in ("auto", "torch"):
                with backend(name):
                    torch.testing.assert_close(gather(), ref, rtol=1e-4, atol=1e-4)
            for name, label in (("auto", "Triton kernel"), ("torch", "PyTorch embedding_bag")):
                rows.append(
                    harness.compare(
                        f"label-gather conv ({label}) vs dense one-hot conv",
                        setting,
                        dense,
                        _with_backend(name, gather),
                        device=device,
                        **timing,
                    )
                )
    return {"rows": rows}


# --------------------------------------------------------------------------- 3. kernels


def section_kernels(device, cfg, timing, compile_ok) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    variants: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    import torch._dynamo

    # one compiled function, several shapes/dtypes/norms: room for each in dynamo's cache
    for knob in ("cache_size_limit", "recompile_limit"):
        if hasattr(torch._dynamo.config, knob):
            setattr(torch._dynamo.config, knob, 64)
    ref_fn = kernels.norm_modulate_reference
    compiled_ref = torch.compile(ref_fn, backend=compile_ok) if compile_ok else None
    for shape in cfg["norm_shapes"]:
        for dtype in (torch.float32, torch.bfloat16):
            for norm in ("instance", "batch"):
                g = torch.Generator(device="cpu").manual_seed(0)
                x = torch.randn(shape, generator=g).to(device, dtype)
                gamma = (0.1 * torch.randn(shape, generator=g)).to(device, dtype)
                beta = (0.1 * torch.randn(shape, generator=g)).to(device, dtype)
                bn = None
                if norm == "batch":  # SPADE's default; eval: the running statistics
                    bn = torch.nn.BatchNorm2d(shape[1], affine=False).to(device).eval()
                setting = f"{'x'.join(map(str, shape))} {str(dtype)[6:]} {norm} stats"
                fns: dict[str, Callable[[], Any]] = {
                    "eager PyTorch": lambda x=x, g_=gamma, b_=beta, bn=bn: ref_fn(x, g_, b_, bn=bn),
                }
                with torch.no_grad():
                    want = ref_fn(x, gamma, beta, bn=bn).float()
                    if compiled_ref is not None:
                        try:
                            got = compiled_ref(x, gamma, beta, bn=bn).float()
                            torch.testing.assert_close(got, want, rtol=1e-2, atol=1e-2)
                            fns["torch.compile"] = lambda x=x, g_=gamma, b_=beta, bn=bn: (
                                compiled_ref(x, g_, b_, bn=bn)
                            )
                        except Exception as e:
                            errors.append(
                                {"name": f"compile norm_modulate {setting}", "error": str(e)[:300]}
                            )
                    with backend("triton"):
                        got = kernels.norm_modulate(x, gamma, beta, bn=bn).float()
                    torch.testing.assert_close(got, want, rtol=2e-2, atol=2e-2)
                    fns["Triton"] = _with_backend(
                        "triton",
                        lambda x=x, g_=gamma, b_=beta, bn=bn: kernels.norm_modulate(
                            x, g_, b_, bn=bn
                        ),
                    )
                    vs = harness.interleaved_variants(
                        f"norm_modulate forward, {setting}", fns, device=device, **timing
                    )
                for v in vs:
                    v["name"] = f"SPADE normalise+modulate: {v['name']}"
                variants.extend(vs)
                by = {v["name"].split(": ", 1)[1]: float(v["seconds"]) for v in vs}
                for other in ("eager PyTorch", "torch.compile"):
                    if other in by:
                        rows.append(
                            _ratio_row(
                                f"SPADE normalise+modulate forward: {other} (reference) vs "
                                "Triton (ours)",
                                f"{setting}, medians of the interleaved variants",
                                by[other],
                                by["Triton"],
                            )
                        )
        # training: forward + backward, eager vs the fused forward + PyTorch-recompute backward
        x = torch.randn(shape, device=device)
        gamma = 0.1 * torch.randn(shape, device=device)
        beta = 0.1 * torch.randn(shape, device=device)

        def fwd_bwd(name, x=x, gamma=gamma, beta=beta):
            def fn():
                leaves = [t.detach().requires_grad_() for t in (x, gamma, beta)]
                with backend(name):
                    kernels.norm_modulate(*leaves).sum().backward()

            return fn

        rows.append(
            harness.compare(
                "SPADE normalise+modulate forward+backward: eager (reference) vs Triton forward "
                "+ PyTorch-recompute backward (ours; auto does not use it when grads are wanted)",
                f"{'x'.join(map(str, shape))} float32 instance stats",
                fwd_bwd("torch"),
                fwd_bwd("triton"),
                device=device,
                **timing,
            )
        )
    # the gather alone (table prepared), SPADE-sized
    b, s, k, c_out = cfg["gather"]
    g = torch.Generator(device="cpu").manual_seed(1)
    labels = torch.randint(0, k, (b, s, s), generator=g).to(device)
    weight = (0.02 * torch.randn(c_out, k, 3, 3, generator=g)).to(device)
    table = kernels.gather_table(weight, None)
    ref = kernels.label_gather_reference
    kw = dict(kernel_size=3, padding=1, reflect=False, stride=1)
    fns = {"eager PyTorch": lambda: ref(labels, table, **kw)}
    setting = f"gather 3x3 zeros, {b}x{s}x{s}, K={k}, {c_out} out"
    with torch.no_grad():
        want = ref(labels, table, **kw)
        if compile_ok:
            try:
                cref = torch.compile(ref, backend=compile_ok)
                torch.testing.assert_close(cref(labels, table, **kw), want, rtol=1e-4, atol=1e-4)
                fns["torch.compile"] = lambda: cref(labels, table, **kw)
            except Exception as e:
                errors.append({"name": f"compile gather {setting}", "error": str(e)[:300]})
        with backend("triton"):
            got = kernels.label_gather(labels, weight, 1, "zeros", None, 1)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
        fns["Triton"] = _with_backend(
            "triton", lambda: kernels.label_gather(labels, weight, 1, "zeros", None, 1)
        )
        vs = harness.interleaved_variants(setting, fns, device=device, **timing)
    for v in vs:
        v["name"] = f"label gather: {v['name']}"
    variants.extend(vs)
    by = {v["name"].split(": ", 1)[1]: float(v["seconds"]) for v in vs}
    for other in ("eager PyTorch", "torch.compile"):
        if other in by:
            rows.append(
                _ratio_row(
                    f"label gather forward: {other} (reference) vs Triton (ours)",
                    f"{setting}, medians of the interleaved variants",
                    by[other],
                    by["Triton"],
                )
            )
    return {"rows": rows, "variants": variants, "errors": errors}


def _ratio_row(name: str, setting: str, ref_s: float, ours_s: float) -> dict[str, Any]:
    row = {"name": name, "setting": setting, "reference_s": ref_s, "ours_s": ours_s}
    row["ratio"] = ref_s / ours_s
    harness.announce(row)
    return row


# --------------------------------------------------------------------------- 4. generators


def section_generators(device, cfg, timing) -> dict[str, Any]:
    s, b, ngf, k = cfg["size"], cfg["batch"], cfg["ngf"], cfg["classes"]
    g = torch.Generator(device="cpu").manual_seed(0)
    labels = torch.randint(0, k, (b, s // 16, s // 16), generator=g)
    labels = labels.repeat_interleave(16, 1).repeat_interleave(16, 2).to(device)
    cond = synth.Condition(label_map=labels, num_classes=k)
    variants: list[dict[str, Any]] = []
    specs = {
        "SPADE (clvae.spade_generator)": {
            "generator": {"type": "clvae.spade_generator", "num_classes": k, "ngf": ngf}
        },
        "CLVAE (clvae.clvae_generator + class_layer_encoder prior)": {
            "generator": {
                "type": "clvae.clvae_generator",
                "num_classes": k,
                "ngf": ngf,
                "crop_size": s,
            },
            "injector": {"type": "clvae.class_layer_encoder"},
        },
    }
    for label, spec in specs.items():
        torch.manual_seed(0)
        model = synth.compose(spec).to(device).eval()
        with torch.no_grad():
            latents = None
            if model.injector is not None:
                latents = model.injector.prior(cond, torch.Generator(device=device).manual_seed(0))

            def fwd(bf16, name, model=model, latents=latents):
                def fn():
                    with backend(name), _autocast(device, bf16):
                        return model.generator(cond, latents).image

                return fn

            fns = {
                "fp32, kernels off": fwd(False, "torch"),
                "fp32, kernels auto": fwd(False, "auto"),
                "bf16, kernels off": fwd(True, "torch"),
                "bf16, kernels auto": fwd(True, "auto"),
            }
            a, r = fns["fp32, kernels auto"]().float(), fns["fp32, kernels off"]().float()
            torch.testing.assert_close(a, r, rtol=2e-3, atol=2e-3)
            vs = harness.interleaved_variants(
                f"{label}, {b}x{s}x{s}, {k} classes, ngf {ngf}", fns, device=device, **timing
            )
        for v in vs:
            v["name"] = f"{label.split(' (')[0]} generator 256²-class: {v['name']}"
            v["images_per_s"] = b / float(v["seconds"])
            v["note"] = _note(v)
        variants.extend(vs)
        del model
    return {"variants": variants}


# --------------------------------------------------------------------------- 5. cIMLE


def section_cimle(device, cfg, timing) -> dict[str, Any]:
    from cimle import _spec, official_selection
    from synth_cimle import select_codes

    n, m = cfg["images"], cfg["codes"]
    torch.manual_seed(0)
    spec = _spec(cfg["nf"], cfg["nb"], cfg["gc"], m, None, 4, "none")
    model = synth.compose(spec).to(device).eval()
    g = torch.Generator(device="cpu").manual_seed(0)
    lr = (torch.rand(n, 3, 32, 32, generator=g) * 2 - 1).to(device)
    real = (torch.rand(n, 3, 128, 128, generator=g) * 2 - 1).to(device)
    cond = synth.Condition(image=lr, size=(128, 128))
    seed = 1234
    cache: dict = {}
    chosen: dict[str, Any] = {}

    def ours():
        with torch.no_grad():
            sel = select_codes(
                model, cond, real, model.losses["imle"], m, seed=seed, cost_cache=cache
            )
        chosen["ours"] = sel.index.cpu()
        chosen["chunk"] = sel.chunk_size

    def reference():
        chosen["reference"] = official_selection(model, cond, real, m, seed)

    ours()
    reference()
    same = torch.equal(chosen["ours"], chosen["reference"])
    row = harness.compare(
        "cIMLE code selection: official batch-1 scoring loop (re-implemented) vs select_codes",
        f"{n} images x {m} codes, SR x4 32->128, RRDB nf {cfg['nf']} nb {cfg['nb']}, "
        f"distance preset sr (random VGG), default chunking",
        reference,
        ours,
        device=device,
        **timing,
    )
    cands = n * m
    row.update(
        candidates_per_s_ours=cands / float(row["ours_s"]),
        candidates_per_s_reference=cands / float(row["reference_s"]),
        chunk_size=chosen.get("chunk"),
        same_choice=same,
        goal_ratio=GOAL_CIMLE_RATIO,
        goal_met=float(row["ratio"]) >= GOAL_CIMLE_RATIO,
    )
    errors = []
    if not same:
        errors.append(
            {
                "name": "cimle selection",
                "error": "select_codes and the batch-1 loop chose different codes (near-ties "
                "under other batch sizes, or a bug): compare before trusting the ratio",
            }
        )
    return {"rows": [row], "errors": errors}


# --------------------------------------------------------------------------- driver


def run(
    device: str | torch.device = "cuda",
    *,
    tiny: bool = False,
    compile: bool = True,
    budget_s: float | None = None,
    sections: tuple[str, ...] = SECTIONS,
) -> dict[str, Any]:
    """Every section on ``device``; a dict in ``bench/run_all.py``'s benchmark layout
    (``settings``, ``rows``, ``variants``, ``errors``, ``skipped``) plus ``gpu`` facts."""
    device = torch.device(device)
    cfg = TINY if tiny else FULL
    timing = {"repeats": cfg["repeats"], "warmup": cfg["warmup"]}
    # inductor on the GPU; a CPU dry run traces with aot_eager (no C++ build, same code path)
    backend_name = ("inductor" if device.type == "cuda" else "aot_eager") if compile else None
    peak, peak_note = peak_tflops(device)
    out: dict[str, Any] = {
        "benchmark": "gpu",
        "settings": {
            "tiny": tiny,
            "compile": backend_name,
            "device": str(device),
            "repeats": cfg["repeats"],
            "kernels_backend_default": kernels.backend(),
            "triton": _version("triton"),
            "peak_bf16_tflops": peak,
            "peak_note": peak_note,
            "tf32": {
                "matmul": torch.backends.cuda.matmul.allow_tf32,
                "cudnn": torch.backends.cudnn.allow_tf32,
            },
        },
        "rows": [],
        "variants": [],
        "errors": [],
        "skipped": [],
    }
    if budget_s is None and os.environ.get("SYNTH_GPU_BENCH_BUDGET_S"):
        budget_s = float(os.environ["SYNTH_GPU_BENCH_BUDGET_S"])  # bench/gpu.sh's time box
    t0 = time.perf_counter()
    for name in sections:
        spent = time.perf_counter() - t0
        if budget_s is not None and spent + (0 if tiny else ESTIMATE_S[name]) > budget_s:
            out["skipped"].append(
                f"gpu.{name}: would end past the time budget of {budget_s:.0f} s "
                f"({spent:.0f} s spent, about {ESTIMATE_S[name]} s needed)"
            )
            continue
        print(f"[{harness.elapsed()}] gpu.{name}: start", flush=True)
        s0 = time.perf_counter()
        try:
            if name == "pix2pixhd":
                res = section_pix2pixhd(device, cfg[name], timing, backend_name, peak)
                out["pix2pixhd_flops_per_image"] = res.get("flops_per_image")
            elif name == "label_gather":
                res = section_label_gather(device, cfg[name], timing)
            elif name == "kernels":
                res = section_kernels(device, cfg[name], timing, backend_name)
            elif name == "generators":
                res = section_generators(device, cfg[name], timing)
            elif name == "cimle":
                res = section_cimle(
                    device, cfg[name], {"repeats": min(3, cfg["repeats"]), "warmup": 1}
                )
            else:
                raise ValueError(f"unknown section {name!r}; sections are {list(SECTIONS)}")
        except Exception as e:
            traceback.print_exc()
            out["errors"].append({"name": f"gpu.{name}", "error": f"{type(e).__name__}: {e}"[:500]})
            continue
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
        for key in ("rows", "variants", "errors"):
            out[key].extend(res.get(key, []))
        out["settings"][f"{name}_wall_s"] = round(time.perf_counter() - s0, 1)
        print(f"[{harness.elapsed()}] gpu.{name}: done in {time.perf_counter() - s0:.0f} s")
        partial = os.environ.get("SYNTH_GPU_BENCH_PARTIAL")
        if partial:
            doc = {"partial": True, "machine": harness.machine(device), **out}
            Path(partial).write_text(json.dumps(doc, indent=2, default=str) + "\n")
    for r in out["rows"] + out["variants"]:
        r.setdefault("note", _note(r))
    return out


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except Exception:
        return None


def markdown(doc: dict[str, Any]) -> str:
    """The report: the device, comparisons (ratio = reference / ours), variants with notes."""
    from harness import fmt_seconds

    m = doc["machine"]
    st = doc["settings"]
    lines = [
        f"# GPU benchmarks (issue 19), {m.get('gpu', m['cpu'])}, {doc['date']}",
        "",
        f"Device: **{m.get('gpu', 'no GPU: ' + m['device'])}**; torch {m['torch']}, triton "
        f"{st.get('triton')}, python {m['python']}; {st.get('peak_note')}. "
        f"{'TINY sizes (a dry run, not a measurement). ' if st.get('tiny') else ''}"
        f"Wall time {doc.get('total_wall_s', 0):.0f} s (`bench/gpu.py`). Times are medians of "
        f"{st['repeats']} interleaved runs; ratio = reference / ours (> 1: ours is faster).",
        "",
        "| comparison | setting | reference | ours | ratio | notes |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in doc["rows"]:
        notes = []
        if "candidates_per_s_ours" in r:
            notes.append(
                f"{r['candidates_per_s_ours']:.3g} vs {r['candidates_per_s_reference']:.3g} "
                f"candidates/s; goal >= {r['goal_ratio']:g}x: "
                f"{'met' if r['goal_met'] else 'NOT met'}"
            )
        lines.append(
            f"| {r['name']} | {r['setting']} | {fmt_seconds(r['reference_s'])} | "
            f"{fmt_seconds(r['ours_s'])} | {r['ratio']:.2f} | {'; '.join(notes)} |"
        )
    lines += ["", "| variant | setting | time | notes |", "|---|---|---:|---|"]
    for v in doc["variants"]:
        lines.append(
            f"| {v['name']} | {v['setting']} | {fmt_seconds(v['seconds'])} | {v.get('note', '')} |"
        )
    for s in doc["skipped"]:
        lines += ["", f"Skipped: {s}"]
    for e in doc["errors"]:
        lines += ["", f"**Error** in {e['name']}: `{e['error']}`"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu for a dry run")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes (a dry run of the script)")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile variants")
    ap.add_argument("--budget-s", type=float, default=None, help="skip sections after this")
    ap.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    ap.add_argument("--out", type=Path, default=None, help="results folder")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run with --device cpu --tiny for a dry run", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    doc = {
        "date": datetime.date.today().isoformat(),
        "device": str(device),
        "machine": harness.machine(device),
        **run(
            device,
            tiny=args.tiny,
            compile=not args.no_compile,
            budget_s=args.budget_s,
            sections=tuple(args.only),
        ),
    }
    doc["total_wall_s"] = round(time.perf_counter() - t0, 1)
    out_dir = args.out or (
        HERE / "results" if device.type == "cuda" else Path("/tmp/synth-gpu-dryrun")
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{doc['date']}-gpu{'' if device.type == 'cuda' else '-dryrun-' + device.type}"
    stem.with_suffix(".json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    md = markdown(doc)
    stem.with_suffix(".md").write_text(md)
    print("\n" + md)
    print(f"wrote {stem}.json and .md")
    return 0 if not doc["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
