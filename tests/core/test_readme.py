"""The README's code runs: the plugin-authoring guide end to end, and every Python example.

Code blocks in README.md are marked with an HTML comment on the line before the fence:

- ``<!-- readme-test: run -->``: a Python snippet, executed (with the guide's plugin registered);
- ``<!-- readme-test: file PATH -->``: a file of the example plugin, written to ``PATH``;
- ``<!-- readme-test: pyproject -->``: the plugin's pyproject.toml (its entry point is used);
- ``<!-- readme-test: pytest PATH -->``: the plugin's tests, whose ``test_*`` functions are called
  with a fresh ``synth_registry``;
- ``<!-- readme-test: spec -->``: a YAML model spec, composed.
- ``<!-- readme-test: run-config -->``: a ``synth train`` run config, validated and trained for
  two steps on its data set (shrunk to 16 px).
- ``<!-- readme-test: run-config-check -->``: a run config for a real data set (Cityscapes,
  ADE20K), validated: the model spec checks, the data set reads a miniature copy of its layout
  and gives what the model reads, and the optimiser settings match the recipe's.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
from pathlib import Path

import pytest
import yaml

import synth
import synth.testing

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

README = Path(__file__).resolve().parents[2] / "README.md"

_MARKED = re.compile(
    r"<!-- readme-test: (?P<what>[^>]*?) -->[ \t]*\n```(?P<lang>\w*)[^\n]*\n(?P<code>.*?)\n```",
    re.S,
)


class Block:
    def __init__(self, m: re.Match, text: str) -> None:
        self.what, *args = m["what"].split()
        self.arg = args[0] if args else None
        self.lang = m["lang"]
        self.code = m["code"] + "\n"
        self.line = text.count("\n", 0, m.start("code")) + 1

    def run(self, namespace: dict | None = None) -> dict:
        ns = {"__name__": "__readme__"} if namespace is None else namespace
        exec(compile(self.code, f"{README}:{self.line}", "exec"), ns)
        return ns


def blocks(what: str | None = None) -> list[Block]:
    text = README.read_text()
    out = [Block(m, text) for m in _MARKED.finditer(text)]
    return [b for b in out if what is None or b.what == what]


def test_every_python_block_is_tested():
    text = README.read_text()
    python_fences = len(re.findall(r"^```python\s*$", text, re.M))
    marked = [b for b in blocks() if b.lang == "python"]
    assert python_fences == len(marked), (
        "every ```python block in README.md needs a <!-- readme-test: ... --> marker so it is "
        "executed by this test"
    )
    kinds = [(b.what, b.arg) for b in blocks()]
    for needed in [
        ("pyproject", None),
        ("file", "src/synth_myplugin/norms.py"),
        ("file", "src/synth_myplugin/plugin.py"),
        ("pytest", "tests/test_norms.py"),
        ("spec", None),
    ]:
        assert needed in kinds, f"README.md lost its {needed} block"
    assert len(blocks("run")) >= 4


def _entry_point(pyproject: str) -> tuple[str, str]:
    data = tomllib.loads(pyproject)
    assert any(d.replace(" ", "").startswith("synth-core") for d in data["project"]["dependencies"])
    eps = data["project"]["entry-points"]["synth.plugins"]
    assert len(eps) == 1
    ((name, module),) = eps.items()
    return name, module


@pytest.mark.slow
def test_plugin_guide_end_to_end(synth_registry, tmp_path, monkeypatch):
    (pyproject,) = blocks("pyproject")
    ep_name, ep_module = _entry_point(pyproject.code)
    assert ep_name == "myplugin" and ep_module == "synth_myplugin.plugin"

    # lay out the plugin as the guide describes and put its src/ on sys.path
    for block in blocks("file"):
        path = tmp_path / block.arg
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block.code)
        (path.parent / "__init__.py").touch()
    src = tmp_path / "src"
    assert (src / Path(*ep_module.split("."))).with_suffix(".py").is_file()
    monkeypatch.syspath_prepend(str(src))
    monkeypatch.chdir(tmp_path)
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(ep_module)
        info = synth.register_plugin(synth_registry, module, ep_name)
        assert info.status == "ok", info.error
        assert "myplugin.label_modulation" in synth.list_parts(kind="conditioning")
        described = synth.describe("myplugin.label_modulation")
        assert described["requires"] == ["label_map"]
        assert described["runtime_args"] == ["channels", "num_classes"]

        # every Python snippet of the README, with the plugin installed
        for block in blocks("run"):
            block.run()

        # the guide's own tests, each with a fresh registry (what the fixture gives)
        (tests,) = blocks("pytest")
        test_file = tmp_path / tests.arg
        test_file.parent.mkdir(parents=True, exist_ok=True)
        test_file.write_text(tests.code)
        spec = importlib.util.spec_from_file_location("readme_plugin_tests", test_file)
        test_module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(test_module)
        functions = [f for n, f in vars(test_module).items() if n.startswith("test_")]
        assert len(functions) >= 2
        for fn in functions:
            assert list(inspect.signature(fn).parameters) == ["synth_registry"]
            with synth.testing.fresh_registry() as reg:
                fn(reg)
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] == "synth_myplugin"]:
            del sys.modules[name]


def test_spec_example_composes(synth_registry):
    (block,) = blocks("spec")
    model = synth.compose(yaml.safe_load(block.code))
    assert set(model.losses) == {"gan", "l1"}
    assert model.discriminator is not None and model.injector is not None


def test_run_config_example_trains(synth_registry, tmp_path):
    from synth.train import RunConfig, train

    (block,) = blocks("run-config")
    config = yaml.safe_load(block.code)
    RunConfig.model_validate(config)  # exactly as written
    config["data"]["size"] = 16
    config["data"]["crops_per_photo"] = 1
    config["train"].update(steps=2, batch_size=2, run_dir=str(tmp_path / "run"))
    config["train"].update(sample_every=2, checkpoint_every=2, precision="off")
    run = train(config)
    assert (run / "model" / "synth.json").is_file()
    assert (run / "samples" / "step-0000002.png").is_file()


#: photos in the training splits (the Trainer drops the last incomplete batch of an epoch)
CITYSCAPES_TRAIN, ADE20K_TRAINING = 2975, 20_210


def _recipe_lrs(description: str) -> dict[str, float]:
    """``G/E lr 4e-4, D lr 1e-4`` in a recipe's description -> lr per network."""
    m = re.search(r"G/E lr (\d[0-9.]*e-\d+), D lr (\d[0-9.]*e-\d+)", description)
    assert m, f"no TTUR settings in {description!r}"
    g, d = float(m[1]), float(m[2])
    return {"generator": g, "injector": g, "discriminator": d}


@pytest.mark.parametrize("index", [0, 1])
def test_real_data_run_configs_fit(index, tmp_path):
    """The Cityscapes and ADE20K run configs: valid, their model checks, the data set reads its
    documented layout (a two-photo copy) and gives the fields and class ids the model reads,
    and the training settings are the papers' (as the recipes state them)."""
    from synth.compose import check_spec, load_spec
    from synth.data import build_dataset
    from synth.train import RunConfig

    from .test_data import _ade_tree, _cityscapes_tree

    found = blocks("run-config-check")
    assert len(found) == 2
    config = yaml.safe_load(found[index].code)
    run = RunConfig.model_validate(config)
    recipe = config["model"]
    plugin = recipe.split(".")[0]
    pytest.importorskip(f"synth_{plugin}")
    with synth.testing.fresh_registry(f"synth_{plugin}.plugin") as reg:
        spec = load_spec(recipe)
        fields = check_spec(spec)["data_fields"]
        description = reg.recipes()[recipe].description
        networks = reg.resolve(spec.objective["type"]).networks
    num_classes = spec.generator["num_classes"]

    data = dict(config["data"])
    make_tree = {"cityscapes": _cityscapes_tree, "ade20k": _ade_tree}[data["type"]]
    data["root"] = str(make_tree(tmp_path / "data"))
    dataset = build_dataset(data)
    assert dataset.num_classes == num_classes
    item = dataset[0]
    assert fields <= set(item)
    assert int(item["label_map"].max()) < num_classes
    crop = data.get("crop") or data["size"]
    assert list(item["real"].shape[-2:]) == ([crop] * 2 if isinstance(crop, int) else crop)

    t = run.train
    assert t.decay_start == t.steps // 2  # 100 epochs constant, 100 decaying
    if plugin == "pix2pixhd":
        from synth_pix2pixhd import training_config

        paper = type(t).model_validate(training_config(steps=t.steps, batch_size=t.batch_size))
        for key in ("steps", "decay_start", "batch_size", "optimizer", "optimizers"):
            assert getattr(t, key) == getattr(paper, key), key
        assert t.steps == 200 * (CITYSCAPES_TRAIN // t.batch_size)
    else:
        assert set(t.optimizers) == set(networks)  # a misspelt network would be ignored
        for name, lr in _recipe_lrs(description).items():
            assert t.optimizers[name].lr == lr, name
            assert t.optimizers[name].betas == (0.0, 0.9), name
        assert t.steps == 200 * (ADE20K_TRAINING // t.batch_size)


def test_core_package_readme_example(synth_registry, tmp_path, monkeypatch):
    """The usage example on synth-core's PyPI page (packages/core/README.md) runs."""
    text = (README.parent / "packages" / "core" / "README.md").read_text()
    (code,) = re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "__readme__"}
    exec(compile(code, "packages/core/README.md", "exec"), ns)
    assert isinstance(ns["model"], synth.SynthesisModel)
    assert (tmp_path / "my_model" / "model.safetensors").is_file()
