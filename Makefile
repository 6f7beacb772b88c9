# Developer entry points. `make test` and `make demo` work on a fresh clone: they install uv
# (with pip, into the user site) when it is missing, then build .venv from the committed uv.lock.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv on PATH, else the one pip installed for python3 (found by the uv package itself), else
# where `pip install --user` puts it (~/.local/bin on Linux). Recursively expanded on purpose:
# after the `uv` target installs it, the next use finds it.
USER_BIN := $(shell python3 -c 'import site; print(site.USER_BASE)' 2>/dev/null || echo $(HOME)/.local)/bin
UV ?= $(shell command -v uv 2>/dev/null \
	|| python3 -c 'import uv; print(uv.find_uv_bin())' 2>/dev/null \
	|| echo $(USER_BIN)/uv)
export PATH := $(USER_BIN):$(PATH)

RUN := $(UV) run --frozen --no-sync
# Tests never download weights or data. UV: the wheel smoke test (tests/core/test_wheels.py)
# builds and installs with the same uv.
TEST_ENV := SYNTH_OFFLINE=1 HF_HUB_OFFLINE=1 UV=$(UV)
PYTEST_ARGS ?=

.PHONY: help uv sync test test-gpu demo demo-compare lint format bench readme-table wheels

help:
	@echo "make test    install uv if missing, sync .venv from uv.lock, lint, run the test suite"
	@echo "make test-gpu  the CUDA tests and the conformance kit on CUDA (skipped without a GPU)"
	@echo "make demo    sync, then run 'synth demo'"
	@echo "make demo-compare  sync, then run 'synth demo --compare' (about 10 minutes)"
	@echo "make lint    ruff check + ruff format --check + import-linter layer contracts"
	@echo "make format  ruff check --fix + ruff format"
	@echo "make bench   run the benchmarks (bench/run_all.py)"
	@echo "make wheels  build a wheel and an sdist of every package into dist/"
	@echo "make readme-table  regenerate the table of registered parts in README.md"

uv:
	@command -v $(UV) >/dev/null 2>&1 || { \
		echo "uv not found: installing it with 'python3 -m pip install --user uv'"; \
		python3 -m pip install --user --quiet uv 2>/dev/null \
		|| python3 -m pip install --user --quiet --break-system-packages uv 2>/dev/null \
		|| python3 -m pip install --quiet uv; \
	}

# The workspace installs every extra of synth-core (metrics, demo, viz, app): tests and the demo use them.
sync: uv
	@command -v $(UV) >/dev/null 2>&1 || { \
		echo "uv is not at $(UV) after installing it; install uv and run 'make UV=/path/to/uv ...'" >&2; \
		exit 1; }
	@$(UV) sync --all-packages --all-extras --frozen --quiet

test: lint
	@n=""; if $(RUN) python -c "import xdist" 2>/dev/null; then n="-n 2"; fi; \
	$(TEST_ENV) $(RUN) pytest -q --tb=short $$n $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; fi; exit $$rc

# CUDA (issue 19): the tests marked `cuda` (tests/gpu: kernels, Trainer with AMP/compile/DDP over
# NCCL, cIMLE's memory probe; and the rest of the suite's), then every check_part call of the
# suite again with a CUDA stage (fp32 vs CPU, gradients, bf16 autocast, inductor compile;
# tests/gpu/cuda_conformance.py). Without CUDA the first skips them all and the second is not run.
# bench/gpu.sh runs the same on a lent GPU machine (no uv there).
test-gpu: sync
	@$(TEST_ENV) $(RUN) python -m pytest -q --tb=short -rs -m cuda $(PYTEST_ARGS) tests; rc=$$?; \
	if $(RUN) python -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then \
		$(TEST_ENV) $(RUN) python -m pytest -q --tb=short -p tests.gpu.cuda_conformance \
			--cuda-conformance-only $(PYTEST_ARGS) tests || rc=1; \
	else echo "no CUDA device: the conformance kit on CUDA was not run"; fi; exit $$rc

demo: sync
	@$(RUN) synth demo

# the demo recipe beside the recipes it names, same budget each (about 10 minutes)
demo-compare: sync
	@$(RUN) synth demo --compare

# ruff, then the layer contracts of DESIGN §1 (import-linter, [tool.importlinter] in pyproject.toml)
lint: sync
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports

format: sync
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

# Every workspace package (synth-core and each plugin) as a wheel and an sdist in dist/. The test
# suite's wheel smoke test (tests/core/test_wheels.py) builds the same way into a temporary folder
# and installs synth-core + synth-plugin-cimle from there into a fresh venv.
wheels: uv
	@rm -rf dist
	@$(UV) build --all-packages --out-dir dist --quiet
	@ls dist/*.whl

bench: sync
	@if [ -f bench/run_all.py ]; then $(RUN) python bench/run_all.py; \
	else echo "no benchmarks yet (bench/run_all.py does not exist)"; fi

# README.md's "Registered parts" block: `synth list --format markdown` for core and the three
# plugins (tests/core/test_readme_table.py checks it).
readme-table: sync
	@$(RUN) python tools/readme_table.py
