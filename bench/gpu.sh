#!/usr/bin/env bash
# The ONE script a session with a lent GPU runs for issue 19 (see bench/README.md, "GPU").
#
#   bash bench/gpu.sh --prepare   # HERE, with the package index: the wheels the GPU machine lacks
#                                 # into .gpu-wheels/ (ignored by git; carry it to the device)
#   bash bench/gpu.sh --dry-run   # print the plan, run nothing
#   bash bench/gpu.sh             # ON THE GPU MACHINE (device tool: carry [".gpu-wheels"],
#                                 # timeout_s 600): install, CUDA tests, GPU benchmarks, the
#                                 # conformance kit on CUDA; everything under $OUT
#   bash bench/gpu.sh --full      # also the plugins' own benchmarks at GPU sizes (run_all)
#
# The GPU machine (KINDS.md) has python3 3.12 with torch 2.11, triton, pytest, pytest-xdist,
# einops, pluggy, safetensors, timm, tqdm, pyyaml, numpy, scipy, but no network and no pydantic;
# hatchling (our build backend) is also missing. So: the carried wheels go to /tmp/site (on
# PYTHONPATH), then `pip install --no-deps --no-build-isolation --no-index -e` of every package;
# if that fails, a fallback puts the sources on the path and writes the entry points by hand.
# Each stage is time-boxed (the whole script: 500 s at most, GPU_SH_BUDGET; run it with the
# device tool's timeout_s 600) and a failing stage does not stop the next. What comes back
# ($OUT, at most 8 files): setup.log, tests.log, bench.log, the results .json/.md,
# gpu-partial.json (bench/gpu.py's rows after each section, in case the stage is killed),
# conformance.log, summary.txt.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
WHEELS=$ROOT/.gpu-wheels
OUT=${OUT:-/tmp/gpu-out}
PY=${PYTHON:-python3}
BUDGET=${GPU_SH_BUDGET:-500}  # seconds for everything, the install included
MODE=run
FULL=0
for arg in "$@"; do
  case $arg in
    --dry-run) MODE=dry ;;
    --prepare) MODE=prepare ;;
    --full) FULL=1 ;;
    -h|--help) sed -n 2,20p "$0"; exit 0 ;;
    *) echo "unknown argument $arg (use --dry-run, --prepare, --full)" >&2; exit 2 ;;
  esac
done

# (pytest runs with --continue-on-collection-errors: a test module whose optional dependency is
# missing there must not stop the others.)
# Pure-python (or cp312 manylinux) wheels the device lacks; versions of uv.lock where it has them.
WHEEL_PINS="pydantic==2.14.3 pydantic-core==2.50.4 annotated-types==0.8.0 typing-inspection==0.4.5
typing-extensions==4.16.0 lpips==0.1.4 torch-fidelity==0.4.0 hatchling trove-classifiers
editables pathspec"

# stage name, seconds, command (run from the repo root with PYTHONPATH set by the install)
TEST_CMD="$PY -m pytest -q -rs --tb=short -p no:cacheprovider --continue-on-collection-errors -m cuda tests"
BENCH_CMD="$PY bench/run_all.py --device cuda --only gpu"
CONF_CMD="$PY -m pytest -q --tb=line -p no:cacheprovider --continue-on-collection-errors -p tests.gpu.cuda_conformance --cuda-conformance-only tests"
FULL_CMD="$PY bench/run_all.py --device cuda"

plan() {
  cat <<EOF
bench/gpu.sh plan (OUT=$OUT, budget ${BUDGET}s in all):
  0. setup   (60 s)  nvidia-smi; $PY, torch, triton versions; pip install --no-index --target /tmp/site
                     $WHEELS/*.whl; pip install --no-deps --no-build-isolation --no-index -e
                     packages/core packages/plugins-* (fallback: sources on the path + entry
                     points written by hand); import check of every dependency; synth.plugins()
  1. tests   (150 s) SYNTH_OFFLINE=1 $TEST_CMD [-n 4 with xdist]
                     (tests/gpu: kernels, Trainer fp32/bf16/fp16/compile, DDP over NCCL, cIMLE
                     memory probe; plus the suite's other cuda-marked tests)
  2. bench   (200 s) SYNTH_GPU_BENCH_BUDGET_S=160 $BENCH_CMD
                     (bench/gpu.py: pix2pixHD G 2048x1024 fp32/bf16/bf16+channels_last+compile
                     + MFU, label-gather vs dense, Triton vs compile vs eager, SPADE/CLVAE
                     images/s, cIMLE selection vs the batch-1 loop) -> bench/results/<date>-gpu.*
  3. conformance (120 s) SYNTH_OFFLINE=1 $CONF_CMD [-n 8 with xdist]
                     (every check_part call of the suite, then CUDA: fp32 vs CPU, gradients,
                     bf16 autocast, inductor compile)
EOF
  if [ "$FULL" = 1 ]; then
    echo "  4. full    (rest)  $FULL_CMD   (the plugins' benchmarks at GPU sizes + the gpu rows)"
  fi
  echo "  -> \$OUT: setup.log tests.log bench.log <date>-gpu.json <date>-gpu.md gpu-partial.json"
  echo "     conformance.log summary.txt"
}

prepare() {
  mkdir -p "$WHEELS"
  grep -qxF "/.gpu-wheels/" .git/info/exclude 2>/dev/null || echo "/.gpu-wheels/" >>.git/info/exclude
  for spec in $WHEEL_PINS; do
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 -d "$WHEELS" "$spec" || echo "FAILED: $spec" >&2
  done
  ls -la "$WHEELS"
  du -sh "$WHEELS"
}

if [ "$MODE" = prepare ]; then prepare; exit $?; fi
if [ "$MODE" = dry ]; then plan; exit 0; fi

mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
T0=$(date +%s)
export PYTHONUNBUFFERED=1 SYNTH_OFFLINE=1 HF_HUB_OFFLINE=1

stage() {  # stage NAME SECONDS LOG COMMAND...
  local name=$1 secs=$2 log=$3
  shift 3
  local left=$((BUDGET - ($(date +%s) - T0)))
  if [ "$left" -lt 20 ]; then
    echo "$name: SKIPPED (budget spent)" | tee -a "$SUMMARY"
    return
  fi
  [ "$secs" -gt "$left" ] && secs=$left
  echo "== $name (time box ${secs}s): $*" | tee -a "$log"
  local t=$(date +%s)
  timeout -k 10 "$secs" "$@" >>"$log" 2>&1
  local rc=$?
  local took=$(($(date +%s) - t))
  local verdict="rc=$rc"
  [ "$rc" = 124 ] && verdict="TIMED OUT after ${secs}s"
  echo "$name: $verdict in ${took}s; last lines:" >>"$SUMMARY"
  tail -n 4 "$log" | sed 's/^/    /' >>"$SUMMARY"
  echo "$name: $verdict in ${took}s"
}

# ---------------------------------------------------------------- 0. setup
SETUP=$OUT/setup.log
{
  plan
  echo "== device"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "no nvidia-smi"
  $PY -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
  $PY -c "import triton; print('triton', triton.__version__)" 2>&1
  echo "== wheels"
  if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site "$WHEELS"/*.whl && echo "wheels installed into /tmp/site"
  else
    echo "no carried wheels in $WHEELS (run bash bench/gpu.sh --prepare here first)"
  fi
} >"$SETUP" 2>&1
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
{
  echo "== our packages (editable, no deps, no index)"
  if $PY -m pip install -q --no-deps --no-build-isolation --no-index -e packages/core \
    $(for p in packages/plugins-*; do echo "-e $p"; done); then
    echo "pip install -e: ok"
  else
    echo "pip install -e failed: fallback (sources on the path, entry points by hand)"
    $PY - <<'EOF'
import pathlib, re, tomllib
site = pathlib.Path("/tmp/site")
site.mkdir(exist_ok=True)
for pyproject in sorted(pathlib.Path("packages").glob("*/pyproject.toml")):
    meta = tomllib.loads(pyproject.read_text())["project"]
    name = meta["name"]
    src = (pyproject.parent / "src").resolve()
    version = "0.0.0"
    for vfile in src.glob("*/version.py"):
        m = re.search(r"__version__\s*=\s*['\"]([^'\"]+)", vfile.read_text())
        version = m.group(1) if m else version
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = []
    for group, eps in meta.get("entry-points", {}).items():
        lines.append(f"[{group}]")
        lines += [f"{k} = {v}" for k, v in eps.items()]
    if "scripts" in meta:
        lines.append("[console_scripts]")
        lines += [f"{k} = {v}" for k, v in meta["scripts"].items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    print("fallback:", name, version, src)
EOF
    # a .pth file is read only in site directories, not on PYTHONPATH: put the sources there
    PYTHONPATH=$PYTHONPATH:$(ls -d "$ROOT"/packages/*/src | paste -sd: -)
    export PYTHONPATH
    echo "PYTHONPATH=$PYTHONPATH"
  fi
  echo "== import check"
  $PY - <<'EOF'
import importlib
missing = []
for mod in ["torch", "torchvision", "triton", "pydantic", "pluggy", "einops", "safetensors", "timm",
            "tqdm", "yaml", "numpy", "PIL", "scipy", "lpips", "torch_fidelity", "pytest", "xdist",
            "synth", "synth_pix2pixhd", "synth_clvae", "synth_cimle", "synth_nested_scale",
            "synth_collage"]:
    try:
        m = importlib.import_module(mod)
        print(f"  ok      {mod} {getattr(m, '__version__', '')}")
    except Exception as e:
        missing.append(mod)
        print(f"  MISSING {mod}: {type(e).__name__}: {e}")
print("missing:", missing or "nothing")
try:
    import synth
    for p in synth.plugins():
        print("  plugin", p)
except Exception as e:
    print("synth.plugins() failed:", e)
EOF
} >>"$SETUP" 2>&1
echo "setup: $(grep -E '^missing:|pip install -e' "$SETUP" | tr '\n' ' ')" | tee -a "$SUMMARY"
XDIST=""
$PY -c "import xdist" 2>/dev/null && XDIST=1

# ---------------------------------------------------------------- 1. CUDA tests
stage tests 150 "$OUT/tests.log" $TEST_CMD ${XDIST:+-n 4}

# ---------------------------------------------------------------- 2. GPU benchmarks
export SYNTH_GPU_BENCH_BUDGET_S=160 SYNTH_GPU_BENCH_PARTIAL=$OUT/gpu-partial.json
stage bench 200 "$OUT/bench.log" $BENCH_CMD
for f in bench/results/[0-9]*-gpu.json bench/results/[0-9]*-gpu.md; do
  [ -f "$f" ] && [ "$f" -nt "$SETUP" ] && cp "$f" "$OUT/"
done

# ---------------------------------------------------------------- 3. conformance kit on CUDA
stage conformance 120 "$OUT/conformance.log" $CONF_CMD ${XDIST:+-n 8}

# ---------------------------------------------------------------- 4. (--full) plugin benches
if [ "$FULL" = 1 ]; then
  stage full 600 "$OUT/bench.log" $FULL_CMD
  for f in bench/results/[0-9]*-gpu.json bench/results/[0-9]*-gpu.md; do
    [ -f "$f" ] && [ "$f" -nt "$SETUP" ] && cp "$f" "$OUT/"
  done
fi

echo "total $(($(date +%s) - T0)) s" | tee -a "$SUMMARY"
ls -la "$OUT"
