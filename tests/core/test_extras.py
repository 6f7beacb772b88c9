"""synth-core's extras (DESIGN §2): the required dependencies hold none of the extras' packages,
every optional import raises an error naming the extra, and composing, training and sampling
run with no extra installed."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import synth
from synth.extras import EXTRAS, MissingExtraError, install_hint, require

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).parents[2]
CORE = tomllib.loads((ROOT / "packages" / "core" / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    """The distribution name of a requirement string: ``"torch-fidelity>=0.3"`` -> ``torch-fidelity``."""
    for stop in "[<>=!~; ":
        requirement = requirement.split(stop, 1)[0]
    return requirement.strip().lower()


def hide(monkeypatch: pytest.MonkeyPatch, *packages: str) -> None:
    """Make ``packages`` (and their loaded submodules) unimportable, as when not installed."""
    for key in list(sys.modules):
        if any(key == p or key.startswith(p + ".") for p in packages):
            monkeypatch.setitem(sys.modules, key, None)
    for p in packages:
        monkeypatch.setitem(sys.modules, p, None)


# --------------------------------------------------------------------------- the declarations


def test_required_dependencies_hold_no_extra_package():
    required = {_name(r) for r in CORE["dependencies"]}
    optional = CORE["optional-dependencies"]
    in_extras = {_name(r) for reqs in optional.values() for r in reqs} - {"synth-core"}
    assert in_extras, "synth-core declares no extra packages"
    assert not required & in_extras, f"extra packages among the required: {required & in_extras}"
    for needed in ("torch", "torchvision", "pillow", "timm", "pydantic", "pluggy", "tqdm"):
        assert needed in required, f"{needed} is needed to compose, train or sample"
    # synth.extras.EXTRAS (what the error messages name) agrees with the pyproject
    assert set(optional) == {*EXTRAS, "all"}
    for extra, dists in EXTRAS.items():
        assert set(dists) <= {_name(r) for r in optional[extra]}, extra
    everything = "".join(optional["all"]).replace(" ", "")
    assert all(extra in everything for extra in EXTRAS), optional["all"]


def test_plugins_that_score_with_lpips_ask_for_the_metrics_extra():
    cimle = tomllib.loads((ROOT / "packages" / "plugins-cimle" / "pyproject.toml").read_text())
    deps = [d.replace(" ", "") for d in cimle["project"]["dependencies"]]
    assert any(d.startswith("synth-core[metrics]>=") for d in deps), deps  # the pin: test_wheels


def test_require_names_the_extra_and_what_needed_it(monkeypatch):
    hide(monkeypatch, "lpips")
    with pytest.raises(MissingExtraError) as err:
        require("lpips", extra="metrics", needed_by="my metric")
    assert str(err.value) == "my metric needs lpips: pip install 'synth-core[metrics]'"
    assert isinstance(err.value, ImportError) and err.value.name == "lpips"
    assert require("json", extra="viz", needed_by="x").__name__ == "json"
    assert install_hint("all") == "pip install 'synth-core[all]'"
    with pytest.raises(ValueError, match="unknown extra 'charts'"):
        require("json", extra="charts", needed_by="x")


def test_require_tells_a_broken_install_from_a_missing_one(monkeypatch):
    """An installed package whose own dependency is missing: the message says which."""
    for key in [k for k in sys.modules if k == "lpips" or k.startswith("lpips.")]:
        monkeypatch.delitem(sys.modules, key)  # imported afresh, as in a new process
    hide(monkeypatch, "scipy")
    with pytest.raises(MissingExtraError, match=r"needs lpips \(importing it failed: .*scipy"):
        require("lpips.trainer", extra="metrics", needed_by="x")


# --------------------------------------------------------------------------- each import site


def test_lpips_loss_and_metrics_name_the_metrics_extra(monkeypatch):
    from synth.metrics import IdentityRecovery, LPIPSDiversity

    hide(monkeypatch, "lpips")
    hint = r"pip install 'synth-core\[metrics\]'"
    with pytest.raises(MissingExtraError, match=rf"the core.lpips loss needs lpips: {hint}"):
        synth.build("core.lpips", weights="none")
    with pytest.raises(MissingExtraError, match=rf"LPIPSDiversity needs lpips: {hint}"):
        LPIPSDiversity(weights="none")
    metric = IdentityRecovery(n=2)  # its distance is built on first use
    with pytest.raises(MissingExtraError, match=rf"core.lpips loss needs lpips: {hint}"):
        metric.sampler().distance_part()


@pytest.mark.parametrize(
    ("hidden", "dist"), [("torch_fidelity", "torch-fidelity"), ("torchmetrics", "torchmetrics")]
)
def test_fid_names_the_metrics_extra_before_looking_for_weights(monkeypatch, hidden, dist):
    from synth.metrics import FID

    hide(monkeypatch, hidden)
    with pytest.raises(MissingExtraError, match=rf"FID \(core.fid\) needs {dist}: .*\[metrics\]"):
        FID(weights="/nowhere/weights.pth")


@pytest.mark.parametrize(("hidden", "dist"), [("skimage", "scikit-image"), ("scipy", "scipy")])
def test_demo_photos_name_the_demo_extra(monkeypatch, hidden, dist):
    demo = importlib.import_module("synth.data.demo")  # the module, not the function
    hide(monkeypatch, hidden)
    hint = r"pip install 'synth-core\[demo\]'"
    with pytest.raises(MissingExtraError, match=rf"demo label maps .* needs {dist}: {hint}"):
        demo._derive(32, 4, ("astronaut",))
    if hidden == "skimage":
        with pytest.raises(MissingExtraError, match=rf"demo photos .* needs scikit-image: {hint}"):
            demo._image_dir()
        with pytest.raises(MissingExtraError, match=rf"needs scikit-image: {hint}"):
            demo._cache_file(32, 4, ("astronaut",))


def test_charts_name_the_viz_extra_and_grids_need_none(monkeypatch, tmp_path):
    from synth import viz

    hide(monkeypatch, "matplotlib")
    with pytest.raises(MissingExtraError, match=r"loss_curve needs matplotlib: .*\[viz\]"):
        viz.loss_curve([{"step": 1, "loss": 0.5}], tmp_path / "loss.png")
    cond = synth.Condition(label_map=torch.zeros(1, 16, 16, dtype=torch.long), num_classes=2)
    viz.sample_grid(cond, torch.zeros(1, 2, 3, 16, 16), path=tmp_path / "grid.png")
    assert (tmp_path / "grid.png").is_file()


# --------------------------------------------------------------------------- core alone

CORE_ONLY = """
import importlib.abc, sys, warnings
EXTRA = {extra!r}

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in EXTRA:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

sys.meta_path.insert(0, NotInstalled())
import torch, synth
from synth.extras import MissingExtraError
from synth.train import Trainer

class Blocks(torch.utils.data.Dataset):
    num_classes = 3
    fields = frozenset({{"label_map"}})
    def __len__(self):
        return 4
    def __getitem__(self, i):
        lab = torch.full((16, 16), i % 3, dtype=torch.long)
        return {{"real": torch.full((3, 16, 16), i / 4 - 0.5), "label_map": lab, "index": i}}

torch.manual_seed(0)
spec = {{
    "generator": {{"type": "core.simple_generator", "num_classes": 3, "ngf": 8, "num_stages": 2,
                  "z_dim": 4}},
    "injector": {{"type": "core.gaussian"}},
    "discriminator": {{"type": "core.patch_discriminator", "ndf": 8, "n_layers": 2}},
    "losses": {{"gan": {{"type": "core.hinge"}}, "l1": {{"type": "core.l1"}}}},
    "objective": {{"type": "core.gan"}},
}}
run = sys.argv[1]
cfg = dict(steps=2, batch_size=2, run_dir=run, log_every=1, sample_every=1, seed=0)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    Trainer(synth.compose(spec), Blocks(), cfg).fit()
assert any("pip install 'synth-core[viz]'" in str(w.message) for w in caught), caught
model = synth.load(run + "/model")
out = model.sample(synth.Condition(label_map=torch.zeros(1, 16, 16, dtype=torch.long),
                                   num_classes=3), 2, generator=torch.Generator().manual_seed(0))
assert out.image.shape == (2, 3, 16, 16)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in EXTRA)
assert not loaded, loaded
print("core alone: composed, trained, sampled")
"""


@pytest.mark.slow
def test_compose_train_and_sample_with_no_extra_installed(tmp_path):
    extra = sorted({"lpips", "torchmetrics", "torch_fidelity", "skimage", "scipy", "matplotlib"})
    script = tmp_path / "core_only.py"
    script.write_text(CORE_ONLY.format(extra=extra))
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, str(script), str(run)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "core alone: composed, trained, sampled" in proc.stdout
    assert sorted(p.name for p in (run / "samples").iterdir())  # the training sample grids
    assert not (run / "loss_curve.png").exists()
