"""Packaging: our version line, the pins, and the wheels installed into a fresh venv.

The package index holds an unrelated project named ``synth-core`` (0.1.x); our packages live on
the ``1.x`` line (``1.0.0.dev0`` until the first release) and every plugin pins
``synth-core>=1.0.0.dev0,<2``, so a resolver can never pick the foreign one. The smoke test
builds every wheel (what ``make wheels`` does), makes a fresh venv, installs ``synth-core`` and
``synth-plugin-cimle`` from the built wheels and everything else from the index at the lock's
versions, then composes, trains one step and samples there. It needs the index (or uv's cache,
which ``make sync`` fills): without either it is skipped, saying so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import urllib.request
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import synth

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(p.parent for p in (ROOT / "packages").glob("*/pyproject.toml"))
FOREIGN = Version("0.1.1")  # the unrelated synth-core on PyPI (its newest release)


def _project(package: Path) -> dict:
    return tomllib.loads((package / "pyproject.toml").read_text())["project"]


def _locked(name: str) -> Version:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    (version,) = {p["version"] for p in lock["package"] if p["name"] == name}
    return Version(version)


# ------------------------------------------------------------------ versions and pins
def test_our_versions_sort_past_the_foreign_synth_core():
    ours = Version(synth.__version__)
    assert ours > FOREIGN and ours.major == 1
    for package in PACKAGES:
        project = _project(package)
        if project["name"] == "synth-core":
            continue
        assert Version(project["version"]) == ours, package.name
        (pin,) = [Requirement(d) for d in project["dependencies"] if d.startswith("synth-core")]
        assert pin.specifier.contains(ours), (package.name, pin)
        assert FOREIGN not in pin.specifier and Version("2.0.0") not in pin.specifier, pin


def test_torch_bounds_match_the_lock():
    deps = {
        Requirement(d).name: Requirement(d)
        for d in _project(ROOT / "packages/core")["dependencies"]
    }
    constraints = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"][
        "constraint-dependencies"
    ]
    for name in ("torch", "torchvision"):
        spec = deps[name].specifier
        locked = _locked(name)
        assert locked in spec, (name, locked, spec)
        upper = [s for s in spec if s.operator == "<"]
        assert upper, f"{name} needs an upper bound in packages/core/pyproject.toml"
        # the next minor after the locked one is out: the bound is what the lock was tested with
        assert Version(f"{locked.major}.{locked.minor + 1}") not in spec, spec
        (root,) = [Requirement(c) for c in constraints if Requirement(c).name == name]
        assert root.specifier == spec, f"{name}: package says {spec}, root constraint {root}"


# ------------------------------------------------------------------ the wheels, installed
_SMOKE = textwrap.dedent(
    """
    import importlib.metadata as md
    from typing import Any

    import torch

    import synth
    from synth.data.base import SynthDataset

    assert md.version("synth-core") == synth.__version__, md.version("synth-core")
    assert "cimle.imle" in synth.list_parts(kind="objective")

    class RandomSR(SynthDataset):
        fields = frozenset({"image"})
        num_classes = None

        def __init__(self):
            super().__init__(0)
            self.hr = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1

        def __len__(self):
            return len(self.hr)

        def _load(self, index: int, generator: torch.Generator) -> dict[str, Any]:
            hr = self.hr[index]
            return {"real": hr, "image": torch.nn.functional.avg_pool2d(hr[None], 2)[0]}

    model = synth.compose({
        "generator": {"type": "cimle.rrdb_generator", "scale": 2, "nf": 8, "nb": 1, "gc": 4,
                      "code_channels": 2},
        "injector": {"type": "cimle.spatial_code"},
        "losses": {"imle": {"type": "cimle.distance", "preset": "none", "pixel_weight": 1.0}},
        "objective": {"type": "cimle.imle", "num_codes": 4, "inner_steps": 1, "minibatch": 2},
    })
    cfg = synth.TrainerConfig(steps=1, batch_size=2, run_dir="run", device="cpu",
                              sample_every=None, progress=False)
    assert synth.Trainer(model, RandomSR(), cfg).fit()["step"] == 1
    loaded = synth.load("run/model")
    cond = synth.Condition(image=torch.rand(1, 3, 8, 8) * 2 - 1, size=(16, 16))
    out = loaded.sample(cond, n=3, generator=torch.Generator().manual_seed(0))
    assert out.image.shape == (3, 3, 16, 16), out.image.shape
    print("smoke ok", synth.__version__)
    """
)


def _uv() -> str:
    """The uv that built .venv: $UV (the Makefile passes it), on PATH, or pip's uv package."""
    for cand in (os.environ.get("UV"), shutil.which("uv"), str(Path.home() / ".local/bin/uv")):
        if cand and Path(cand).is_file():
            return cand
    try:
        import uv

        return uv.find_uv_bin()
    except (ImportError, FileNotFoundError):
        pytest.skip("no uv found (set UV=/path/to/uv): the wheel smoke test builds with uv")


def _index_error() -> str | None:
    """Why the package index cannot be reached, or None when it can."""
    index = (
        os.environ.get("UV_DEFAULT_INDEX")
        or os.environ.get("UV_INDEX_URL")
        or os.environ.get("PIP_INDEX_URL")
        or "https://pypi.org/simple"
    )
    url = index.rstrip("/") + "/pluggy/"
    try:
        with urllib.request.urlopen(url, timeout=5):
            return None
    except OSError as e:
        return f"{url}: {e}"


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300):
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.slow
def test_wheels_install_into_a_fresh_venv_and_train(tmp_path):
    uv = _uv()
    dist = tmp_path / "dist"
    res = _run([uv, "build", "--all-packages", "--out-dir", str(dist), "--quiet"], ROOT)
    assert res.returncode == 0, res.stderr
    wheels = {w.name.split("-")[0]: w for w in dist.glob("*.whl")}
    names = {_project(p)["name"].replace("-", "_") for p in PACKAGES}
    assert names <= set(wheels), sorted(wheels)
    # the plugin's metadata pins our line (a resolver can never pick the foreign synth-core)
    with zipfile.ZipFile(wheels["synth_plugin_cimle"]) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        requires = [
            ln
            for ln in z.read(meta).decode().splitlines()
            if ln.startswith("Requires-Dist: synth-core")
        ]
    assert requires and all("<2" in r and ">=1.0.0.dev0" in r for r in requires), requires

    # everything else at the lock's versions (torch/torchvision included): uv's cache has them
    lock = _run(
        [uv, "export", "--frozen", "--package", "synth-plugin-cimle", "--no-emit-workspace",
         "--no-hashes", "--no-dev", "--no-header", "--quiet", "-o", str(tmp_path / "lock.txt")],
        ROOT,
    )  # fmt: skip
    assert lock.returncode == 0, lock.stderr
    venv = tmp_path / "venv"
    made = _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], tmp_path)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    install = [
        uv, "pip", "install", "--quiet", "--python", str(python),
        "--constraints", str(tmp_path / "lock.txt"),
        str(wheels["synth_core"]), str(wheels["synth_plugin_cimle"]),
    ]  # fmt: skip
    offline = _index_error()
    res = _run([*install, "--offline"] if offline else install, tmp_path)
    if res.returncode != 0 and offline:
        pytest.skip(f"no network to the package index ({offline}) and uv's cache lacks a package")
    assert res.returncode == 0, res.stderr

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env |= {"SYNTH_OFFLINE": "1", "SYNTH_HOME": str(tmp_path / "home")}
    smoke = _run([str(python), "-c", _SMOKE], tmp_path, env=env)
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert f"smoke ok {synth.__version__}" in smoke.stdout
