"""Plugin discovery through entry points, isolation of broken plugins, strict/disable/API checks.

Plugins here live outside the repository: a package plus a ``*.dist-info`` with an
``entry_points.txt`` is written to a temporary directory and put on ``sys.path`` of a fresh
interpreter, which is exactly what ``pip install`` leaves behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import synth
from synth.registry import PLUGIN_API_VERSION, api_compatible, discover

EXT_PARTS = '''
import torch
import torch.nn.functional as F
from torch import nn

import synth


class TinyGenerator(synth.Generator):
    """Two-stage generator from an external plugin: label map + global code, norm slot."""

    class Config(synth.PartConfig):
        num_classes: int
        z_dim: int = 8
        style_dim: int = 8
        ch: int = 8
        norm: synth.PartSpec = {"type": "core.instance_norm"}

    size_multiple = 2

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        c = self.config
        self.inp = nn.Conv2d(c.num_classes + c.z_dim, c.ch, 3, padding=1)
        self.stages = nn.ModuleList(nn.Conv2d(c.ch, c.ch, 3, padding=1) for _ in range(2))
        self.norms = nn.ModuleList(
            self.build_slot(c.norm, channels=c.ch, stage=i, num_stages=2,
                            style_dim=c.style_dim, num_classes=c.num_classes)
            for i in range(2)
        )
        self.to_rgb = nn.Conv2d(c.ch, 3, 1)
        self.stage_channels = [c.ch, c.ch]
        self.stage_scales = [2, 1]

    @classmethod
    def requirements(cls, config=None):
        return frozenset({"label_map", "z"})

    def forward(self, cond, latents=None, *, return_features=False):
        ctx = synth.Context(cond, latents)
        h, w = cond.size
        z = latents.z[:, :, None, None].expand(-1, -1, h // 2, w // 2)
        x = self.inp(torch.cat([ctx.one_hot((h // 2, w // 2)), z], 1))
        feats = []
        for i, (conv, norm) in enumerate(zip(self.stages, self.norms)):
            if i == 1:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = F.leaky_relu(norm(conv(x), ctx.at(i)), 0.2)
            feats.append(x)
        return synth.SynthesisOutput(torch.tanh(self.to_rgb(x)), feats if return_features else None)
'''

EXT_PLUGIN = """
import synth

SYNTH_API = ">=1,<2"


@synth.hookimpl
def synth_register(registry):
    registry.add("extplug.tiny_generator", kind="generator",
                 target="synth_extplug.parts:TinyGenerator")
    registry.add_recipe("extplug.tiny", {
        "generator": {"type": "extplug.tiny_generator", "num_classes": 4,
                      "norm": {"type": "core.adain"}},
        "injector": {"type": "core.gaussian"},
        "losses": {"l1": {"type": "core.l1", "weight": 2.0}},
    }, description="tiny external model")
"""


def write_dist(root: Path, dist: str, package: str, files: dict[str, str], entry: str) -> None:
    """Lay out an installed distribution: package files plus a dist-info with an entry point."""
    pkg = root / package
    pkg.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (pkg / name).write_text(textwrap.dedent(text))
    info = root / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[synth.plugins]\n{entry}\n")
    (info / "RECORD").write_text("")


def run_python(code: str, path: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(path), **env}
    environ.pop("SYNTH_STRICT_PLUGINS", None) if "SYNTH_STRICT_PLUGINS" not in env else None
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=300,
    )


@pytest.fixture
def ext_plugin(tmp_path: Path) -> Path:
    write_dist(
        tmp_path,
        "synth-extplug",
        "synth_extplug",
        {"__init__.py": "", "plugin.py": EXT_PLUGIN, "parts.py": EXT_PARTS},
        "extplug = synth_extplug.plugin",
    )
    return tmp_path


def test_external_plugin_is_discovered_built_composed_saved_and_reloaded(ext_plugin, tmp_path):
    out_dir = tmp_path / "saved"
    res = run_python(
        f"""
        import json, torch, synth
        info = {{p.name: p for p in synth.plugins()}}
        assert info["extplug"].status == "ok", info
        assert info["extplug"].dist == "synth-extplug" and info["extplug"].version == "0.1.0"
        assert "extplug.tiny_generator" in synth.list_parts(kind="generator")
        g = synth.build("extplug.tiny_generator", num_classes=4)
        assert isinstance(g, synth.Generator)
        model = synth.compose("extplug.tiny")
        assert type(model.generator.norms[0]).__name__ == "AdaIN"
        torch.manual_seed(0)
        cond = synth.Condition(label_map=torch.randint(0, 4, (2, 8, 8)), num_classes=4)
        out = model.sample(cond, 3, generator=torch.Generator().manual_seed(1))
        assert out.image.shape == (6, 3, 8, 8)
        model.eval()
        lat = model.injector.prior(cond, torch.Generator().manual_seed(2))
        ref = model.generate(cond, lat).image
        model.save_pretrained({str(out_dir)!r})
        torch.save({{"cond": cond.label_map, "lat": lat.z, "styles": lat.styles, "ref": ref}},
                   {str(tmp_path / "io.pt")!r})
        print(json.dumps(sorted(model.plugin_versions())))
        """,
        ext_plugin,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1]) == ["core", "extplug"]
    meta = json.loads((out_dir / "synth.json").read_text())
    assert meta["plugins"]["extplug"] == {"dist": "synth-extplug", "version": "0.1.0"}

    # A second interpreter rebuilds it from disk and gives identical images.
    res = run_python(
        f"""
        import torch, synth
        io = torch.load({str(tmp_path / "io.pt")!r}, weights_only=True)
        model = synth.load({str(out_dir)!r}).eval()
        cond = synth.Condition(label_map=io["cond"], num_classes=4)
        lat = synth.Latents(z=io["lat"], styles=io["styles"])
        assert torch.equal(model.generate(cond, lat).image, io["ref"])
        print("identical")
        """,
        ext_plugin,
    )
    assert res.returncode == 0, res.stderr
    assert "identical" in res.stdout

    # Without the plugin installed, loading names the dist to install.
    res = run_python(
        f"""
        import synth
        try:
            synth.load({str(out_dir)!r})
        except synth.UnknownPartError as e:
            print(e)
        """,
        tmp_path / "nothing-here",
    )
    assert "pip install synth-extplug==0.1.0" in res.stdout, res.stdout + res.stderr


BROKEN_IMPORT = "raise RuntimeError('boom at import')\n"
BROKEN_HOOK = """
import synth

@synth.hookimpl
def synth_register(registry):
    registry.add("badhook.half", kind="loss", target="synth.parts.losses:L1")
    raise ValueError("boom in hook")
"""
WRONG_NAMESPACE = """
import synth

@synth.hookimpl
def synth_register(registry):
    registry.add("core.stolen", kind="loss", target="synth.parts.losses:L1")
"""
OLD_API = """
import synth
SYNTH_API = ">=7"

@synth.hookimpl
def synth_register(registry):
    registry.add("oldapi.part", kind="loss", target="synth.parts.losses:L1")
"""
BAD_HOOK_SIGNATURE = """
import synth

@synth.hookimpl
def synth_register(registry, extra):
    pass
"""
GOOD = """
import synth

@synth.hookimpl
def synth_register(registry):
    registry.add("goodplug.l1", kind="loss", target="synth.parts.losses:L1")
"""


@pytest.fixture
def broken_plugins(tmp_path: Path) -> Path:
    for name, text in {
        "badimport": BROKEN_IMPORT,
        "badhook": BROKEN_HOOK,
        "thief": WRONG_NAMESPACE,
        "oldapi": OLD_API,
        "badsig": BAD_HOOK_SIGNATURE,
        "goodplug": GOOD,
    }.items():
        write_dist(
            tmp_path,
            f"synth-{name}",
            f"synth_{name}",
            {"__init__.py": "", "plugin.py": text},
            f"{name} = synth_{name}.plugin",
        )
    return tmp_path


def test_broken_plugins_are_recorded_and_skipped(broken_plugins):
    res = run_python(
        """
        import json, warnings, synth
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            infos = {p.name: [p.status, p.error] for p in synth.plugins()}
        print(json.dumps({"infos": infos, "parts": synth.list_parts(pattern="*"),
                          "warnings": [str(x.message) for x in w]}))
        """,
        broken_plugins,
    )
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout.strip().splitlines()[-1])
    infos = data["infos"]
    assert infos["goodplug"] == ["ok", None]
    assert infos["core"][0] == "ok"
    assert infos["badimport"][0] == "failed" and "boom at import" in infos["badimport"][1]
    assert infos["badhook"][0] == "failed" and "boom in hook" in infos["badhook"][1]
    assert infos["thief"][0] == "failed" and "own namespace" in infos["thief"][1]
    assert infos["oldapi"][0] == "incompatible" and ">=7" in infos["oldapi"][1]
    assert infos["badsig"][0] == "failed" and "extra" in infos["badsig"][1]
    # what a failed hook registered before raising is rolled back; the good plugin works
    assert "badhook.half" not in data["parts"]
    assert "core.stolen" not in data["parts"]
    assert "goodplug.l1" in data["parts"]
    # one warning per skipped plugin, each naming it
    skipped = [w for w in data["warnings"] if "was skipped" in w]
    assert len(skipped) == 5
    assert any("'badimport'" in w for w in skipped)


def test_failures_show_in_synth_plugins_cli(broken_plugins):
    res = subprocess.run(
        [sys.executable, "-m", "synth", "plugins"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(broken_plugins)},
    )
    assert res.returncode == 0, res.stderr
    assert "badimport" in res.stdout and "failed" in res.stdout
    assert "boom at import" in res.stdout
    assert "goodplug" in res.stdout


def test_strict_mode_raises(broken_plugins):
    res = run_python("import synth; synth.list_parts()", broken_plugins, SYNTH_STRICT_PLUGINS="1")
    assert res.returncode != 0
    assert "PluginError" in res.stderr and "was skipped" in res.stderr


def test_disable_plugins_skips_named(broken_plugins):
    res = run_python(
        """
        import json, synth
        print(json.dumps({p.name: p.status for p in synth.plugins()}))
        """,
        broken_plugins,
        SYNTH_DISABLE_PLUGINS="badimport,badhook,thief,oldapi,badsig",
        SYNTH_STRICT_PLUGINS="1",
    )
    assert res.returncode == 0, res.stderr
    status = json.loads(res.stdout.strip().splitlines()[-1])
    assert status["badimport"] == "disabled" and status["goodplug"] == "ok"


def test_api_range_parser():
    assert api_compatible(">=1,<2", 1)
    assert not api_compatible(">=2", 1)
    assert api_compatible("==1", PLUGIN_API_VERSION)
    with pytest.raises(ValueError, match="integer versions"):
        api_compatible(">=1.0", 1)


def test_register_plugin_in_process_and_rollback():
    import types

    reg = synth.Registry()
    discover(reg, entry_points=False)
    mod = types.ModuleType("inproc")
    mod.synth_register = synth.hookimpl(
        lambda registry: registry.add("inproc.l1", kind="loss", target="synth.parts.losses:L1")
    )
    info = synth.register_plugin(reg, mod, "inproc")
    assert info.status == "ok" and "inproc.l1" in reg

    bad = types.ModuleType("inbad")

    def hook(registry):
        registry.add("inbad.a", kind="loss", target="synth.parts.losses:L1")
        registry.add("inbad.a", kind="loss", target="synth.parts.losses:L1")

    bad.synth_register = synth.hookimpl(hook)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        info = synth.register_plugin(reg, bad, "inbad")
    assert info.status == "failed" and "registered twice" in info.error
    assert "inbad.a" not in reg
