"""The public conformance kit ``synth.testing``: every core part passes it, broken parts fail
it with messages that name the problem and the fix, and the ``synth_registry`` fixture gives an
isolated core-only registry."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import synth
import synth.registry
from synth.registry import discover
from synth.testing import CHECKS, ConformanceError, ConformanceReport, check_part, fresh_registry
from synth.testing._tiny import TinyGenerator, TinyInjector

from .fid_weights import FIDKitParams

pytest_plugins = ("pytester",)

# --------------------------------------------------------------------------- core parts

#: Minimal, fast configs per core part (runtime arguments such as ``channels`` included). A
#: part with several entries is checked in each configuration.
CORE_PARAMS: dict[str, list[dict[str, Any]]] = {
    "core.instance_norm": [{"channels": 8}, {"channels": 8, "affine": True}],
    "core.batch_norm": [{"channels": 8}, {"channels": 8, "affine": True}],
    "core.adain": [{"channels": 8, "stage": 0, "style_dim": 4}],
    "core.gaussian": [
        {"z_dim": 8, "style_dim": 4, "num_stages": 2},
        {"z_dim": 0, "style_dim": 4, "num_stages": 2, "shared_styles": False},
    ],
    "core.spatial_noise": [{"channels": 4, "scale": 2}],
    "core.simple_generator": [
        {"num_classes": 4, "ngf": 8, "num_stages": 2},
        {
            "num_classes": 4,
            "ngf": 8,
            "num_stages": 2,
            "z_dim": 4,
            "style_dim": 4,
            "noise_channels": 2,
            "norm": {"type": "core.adain"},
        },
    ],
    "core.patch_discriminator": [
        {"num_classes": 4, "ndf": 8, "n_layers": 2, "num_scales": 2},
        {"conditional": False, "use_image": True, "use_mask": True, "ndf": 8, "n_layers": 2},
    ],
    "core.hinge": [{}],
    "core.lsgan": [{}],
    "core.nonsaturating": [{}],
    "core.l1": [{}],
    "core.kl": [{}],
    # Random (weights="none") small backbones: no weight files, fast on CPU.
    "core.perceptual": [
        {
            "weights": "none",
            "backbone": "vgg11",
            "layers": ["relu1_1", "relu2_1"],
            "layer_weights": [1, 1],
        }
    ],
    "core.feature_matching": [{}, {"weighting": "pix2pixhd"}],
    "core.lpips": [{"weights": "none", "net": "alex"}],
    "core.prior": [{}],
    "core.interpolate": [{}, {"mode": "lerp"}],
    "core.best_of_n": [{}],
    # metrics: a random LPIPS trunk; precomputed distances (example_inputs); FID with a random
    # Inception weights file made on first use (FID never runs without a file) and the
    # 64-feature layer so compute() stays fast.
    "core.lpips_diversity": [{"weights": "none"}, {"weights": "none", "per_scale": True}],
    "core.disentanglement_curve": [{"weights": "none", "m": 3}],
    "core.identity_recovery": [{}, {"n": 3, "distance": {"type": "core.l1"}}],
    "core.fid": [FIDKitParams()],
}


#: Extra check_part arguments per part (example inputs the defaults cannot guess). Empty: parts
#: that need special inputs (core.best_of_n's target) supply them with ``example_inputs``.
KIT_OPTIONS: dict[str, dict[str, Any]] = {}


def _core_names() -> list[str]:
    reg = synth.Registry()
    discover(reg, entry_points=False)
    return reg.list(pattern="core.*")


def _core_cases() -> list[Any]:
    cases = []
    for name in sorted(set(_core_names()) | set(CORE_PARAMS)):
        for i, params in enumerate(CORE_PARAMS.get(name, [{}])):
            cases.append(pytest.param(name, params, id=f"{name}-{i}"))
    return cases


@pytest.mark.parametrize(("name", "params"), _core_cases())
def test_core_part_conforms(synth_registry, name, params):
    report = check_part(name, **KIT_OPTIONS.get(name, {}), **params)
    assert report.passed
    assert report.status("build") == "passed"
    assert report.status("forward") == "passed"


def test_params_table_names_registered_parts():
    assert set(CORE_PARAMS) <= set(_core_names())


# --------------------------------------------------------------------------- broken parts


class Good(synth.ConditioningBlock):
    """Learned per-channel scale after an instance norm."""

    class Config(synth.PartConfig):
        channels: int

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        self.scale = nn.Parameter(torch.ones(self.config.channels))

    def forward(self, x, ctx):
        return F.instance_norm(x) * self.scale[:, None, None]


class Unused(Good):
    """Has a parameter that forward never touches."""

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        self.head = nn.Linear(4, 4)


class Noisy(Good):
    """Draws noise from the global RNG in forward."""

    def forward(self, x, ctx):
        return super().forward(x, ctx) + 0.1 * torch.rand_like(x)


class Shrinks(Good):
    """Drops half the channels."""

    def forward(self, x, ctx):
        return super().forward(x, ctx)[:, : x.shape[1] // 2]


class Breaks(Good):
    """Branches in Python on a tensor value: a graph break under fullgraph compile."""

    def forward(self, x, ctx):
        gain = 2.0 if x.mean().item() > 0 else 1.0
        return super().forward(x, ctx) * gain


class BadConfig(Good):
    """A config field typed Any holding a tuple: JSON gives back a list."""

    class Config(synth.PartConfig):
        channels: int
        pad: Any = (1, 2)


class ReadsUndeclared(Good):
    """Reads the label map without declaring it in ``requires``."""

    class Config(synth.PartConfig):
        channels: int
        num_classes: int = 4

    def forward(self, x, ctx):
        return super().forward(x, ctx) + ctx.one_hot(x.shape[-2:]).sum(1, keepdim=True)


class _BrokenPlugin:
    """A plugin object (not a module) registering the parts above as plugin ``bad``."""

    @synth.hookimpl
    def synth_register(self, registry):
        for name, cls in {
            "bad.good": Good,
            "bad.unused": Unused,
            "bad.noisy": Noisy,
            "bad.shrinks": Shrinks,
            "bad.breaks": Breaks,
            "bad.bad_config": BadConfig,
            "bad.reads_undeclared": ReadsUndeclared,
        }.items():
            registry.add(name, kind="conditioning", target=cls)


@pytest.fixture
def bad(synth_registry):
    synth_registry.register_plugin(_BrokenPlugin(), "bad")
    return synth_registry


def _failure(name: str, **kwargs) -> tuple[str, ConformanceReport]:
    with pytest.raises(ConformanceError) as info:
        check_part(name, channels=8, size=16, **kwargs)
    err = info.value
    assert isinstance(err, AssertionError)
    return str(err), err.report


def test_good_block_passes(bad):
    report = check_part("bad.good", channels=8, size=16)
    assert report.passed
    assert [report.status(c) for c in CHECKS] == ["passed"] * len(CHECKS)
    text = str(report)
    assert "'bad.good' (conditioning)" in text and "8 passed" in text


def test_unused_parameter_fails_gradients(bad):
    msg, report = _failure("bad.unused")
    assert report.status("gradients") == "failed"
    assert "bad.unused gradients:" in msg
    assert "['head.weight', 'head.bias'] received no gradient" in msg
    assert "requires_grad=False" in msg  # the fix
    assert report.status("forward") == "passed"


def test_global_rng_in_forward_fails_determinism(bad):
    msg, report = _failure("bad.noisy")
    assert report.status("determinism") == "failed"
    assert "bad.noisy determinism: the same input twice (eval mode) gave different outputs" in msg
    assert "torch.Generator" in msg  # the fix


def test_shape_change_fails_forward(bad):
    msg, report = _failure("bad.shrinks")
    assert report.status("forward") == "failed"
    assert "output shape (2, 4, 8, 8) != input shape (2, 8, 8, 8)" in msg
    assert "same shape" in msg


def test_graph_break_fails_compile(bad):
    msg, report = _failure("bad.breaks")
    assert [c.name for c in report.failures] == ["compile"]
    assert "bad.breaks compile: forward(x, ctx) does not compile with fullgraph=True" in msg
    assert "test_conformance.py" in msg  # points at the offending line
    assert "skip=('compile',)" in msg


def test_skip_is_reported_not_passed(bad):
    report = check_part("bad.breaks", channels=8, size=16, skip=("compile",))
    assert report.status("compile") == "skipped"
    assert "skipped  compile" in str(report)
    with pytest.raises(ValueError, match="unknown check"):
        check_part("bad.good", channels=8, skip=("compile_it",))


def test_config_that_does_not_roundtrip_fails(bad):
    msg, report = _failure("bad.bad_config")
    assert [c.name for c in report.failures] == ["config_roundtrip"]
    assert "does not survive a JSON round trip (pad: (1, 2) -> [1, 2])" in msg


def test_undeclared_requirement_is_caught(bad):
    msg, report = _failure("bad.reads_undeclared")
    assert report.status("forward") == "failed"
    assert "label_map" in msg


def test_report_without_raising(bad):
    report = check_part("bad.unused", channels=8, size=16, raise_on_failure=False)
    assert not report.passed
    assert [c.name for c in report.failures] == ["gradients"]
    with pytest.raises(ConformanceError):
        report.raise_for_failures()


def test_example_inputs_protocol(bad):
    class Custom(Good):
        """Brings its own (odd-sized) inputs."""

        def example_inputs(self, *, batch_size, size, generator):
            x = torch.randn(batch_size, self.config.channels, 5, 7, generator=generator)
            return {"x": x.requires_grad_()}

    class Wrong(Good):
        def example_inputs(self, *, batch_size, size, generator):
            return {"image": torch.zeros(1)}

    bad.add_part("bad.custom", Custom)
    bad.add_part("bad.wrong", Wrong)
    assert check_part("bad.custom", channels=8).passed
    msg, _ = _failure("bad.wrong")
    assert "unknown key(s) ['image']" in msg


# --------------------------------------------------------------------------- other kinds


class GlobalRngGaussian(synth.LatentInjector):
    """Ignores the generator it is given."""

    class Config(synth.PartConfig):
        z_dim: int = 4

    provides = frozenset({"z"})

    def prior(self, cond, generator=None):
        return synth.Latents(z=torch.randn(cond.batch_size, self.config.z_dim))


class WrongStages(TinyGenerator):
    """Claims 16 channels for a stage that has 8."""

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        self.stage_channels = [16]


class DetachedL1(synth.Loss):
    """Detaches the fake image: the generator cannot learn from it."""

    def forward(self, batch):
        return (batch.fake.image.detach() - batch.real).abs().mean()


class MeanAbs(synth.Metric):
    """Mean absolute difference over all updates."""

    class Config(synth.PartConfig):
        pass

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        self.total, self.count = 0.0, 0

    def update(self, fake, real):
        self.total += float((fake - real).abs().sum())
        self.count += fake.numel()

    def compute(self):
        return {"mae": self.total / max(self.count, 1), "settings": {"n": self.count}}


class NoSettings(MeanAbs):
    def compute(self):
        return {"mae": self.total / max(self.count, 1)}


class Objective(synth.Objective):
    """Logs a loss but never applies it."""

    class Config(synth.PartConfig):
        steps: int = 1

    def step(self, model, cond, real, updater):
        return {"g/l1": (model.generate(cond, grad=True).image - real).abs().mean()}


@pytest.fixture
def kinds(synth_registry):
    for name, cls in {
        "t.global_rng": GlobalRngGaussian,
        "t.tiny_generator": TinyGenerator,
        "t.tiny_encoder": TinyInjector,
        "t.wrong_stages": WrongStages,
        "t.detached_l1": DetachedL1,
        "t.mean_abs": MeanAbs,
        "t.no_settings": NoSettings,
        "t.objective": Objective,
    }.items():
        synth_registry.add_part(name, cls)
    return synth_registry


def test_plugin_generator_and_encoder_pass(kinds):
    assert check_part("t.tiny_generator").passed
    report = check_part("t.tiny_encoder")
    assert report.status("gradients") == "passed"  # the posterior's encoder trains


def test_injector_ignoring_its_generator_fails_determinism(kinds):
    msg, report = _failure("t.global_rng")
    assert [c.name for c in report.failures] == ["determinism"]
    assert "the same torch.Generator seed gave different outputs" in msg
    assert "generator=generator" in msg


def test_generator_with_wrong_stage_channels_fails(kinds):
    msg, _ = _failure("t.wrong_stages")
    assert "features[0] is (2, 8, 16, 16), expected (2, 16, 16, 16)" in msg


def test_detached_loss_fails_gradients(kinds):
    msg, report = _failure("t.detached_l1")
    assert [c.name for c in report.failures] == ["gradients"]
    assert "does not require grad" in msg


def test_metric_and_objective(kinds):
    report = check_part("t.mean_abs")
    assert report.status("forward") == "passed"
    assert report.status("compile") == "n/a"
    msg, _ = _failure("t.no_settings")
    assert "compute() has no 'settings' dict" in msg
    report = check_part("t.objective", steps=2, raise_on_failure=False)
    assert report.status("config_roundtrip") == "passed"
    msg = str(report)
    assert "still require grad" in msg and "never called updater.update" in msg
    assert {report.status(c) for c in ("gradients", "save_load", "dtypes", "compile")} == {"n/a"}


# --------------------------------------------------------------------------- registries


def test_fresh_registry_swaps_and_restores():
    before = synth.registry.default._default
    with fresh_registry(("bad", _BrokenPlugin())) as reg:
        assert synth.get_registry() is reg
        assert "core.adain" in reg and "bad.good" in reg
        assert [i.name for i in reg.plugin_infos] == ["core", "bad"]
    assert synth.registry.default._default is before
    with pytest.raises(RuntimeError), fresh_registry():
        raise RuntimeError("boom")
    assert synth.registry.default._default is before


def test_fresh_registry_raises_for_a_failing_plugin():
    class Failing:
        @synth.hookimpl
        def synth_register(self, registry):
            registry.add("other.part", kind="conditioning", target=Good)

    with (
        pytest.raises(synth.PluginError, match="did not register"),
        fresh_registry(("mine", Failing())),
    ):
        pass


EXT_PLUGIN = """
import synth

@synth.hookimpl
def synth_register(registry):
    registry.add("ext.block", kind="conditioning", target="ext_plugin:Block")
"""


@pytest.fixture
def installed_ext(tmp_path, monkeypatch):
    """A plugin installed on sys.path with a ``synth.plugins`` entry point."""
    (tmp_path / "ext_plugin.py").write_text(EXT_PLUGIN)
    info = tmp_path / "ext_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ext-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[synth.plugins]\next = ext_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = synth.Registry()
    discover(reg)
    assert "ext.block" in reg  # discovery would find it
    return tmp_path


def test_synth_registry_fixture_has_core_but_no_entry_points(installed_ext, synth_registry):
    assert synth.get_registry() is synth_registry
    assert "core.instance_norm" in synth_registry
    assert "ext.block" not in synth_registry
    assert [i.name for i in synth_registry.plugin_infos] == ["core"]


def test_synth_registry_fixture_is_an_installed_pytest_plugin(pytester):
    """Loaded through the ``pytest11`` entry point (no import in the test file) and restores
    the previous registry after each test."""
    before = synth.registry.default._default
    pytester.makepyfile(
        textwrap.dedent(
            """
            import synth

            def test_uses_it(synth_registry):
                assert synth.get_registry() is synth_registry
                assert "core.adain" in synth_registry
                assert [i.name for i in synth_registry.plugin_infos] == ["core"]
            """
        )
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)
    assert synth.registry.default._default is before
