"""The composer: spec loading, whole-graph checks before allocation, runtime args."""

from __future__ import annotations

import json

import pytest
import torch

import synth
from synth import ComposeError

from .parts_fixture import BUILT, make_registry


@pytest.fixture
def reg():
    BUILT.clear()
    return make_registry()


def compose(spec, reg):
    return synth.compose(spec, registry=reg)


def errors_of(spec, reg) -> str:
    BUILT.clear()
    with pytest.raises(ComposeError) as err:
        compose(spec, reg)
    assert BUILT == [], "a part was built before the graph was checked"
    return str(err.value)


# ----------------------------------------------------------------------------- spec sources


def test_spec_from_dict_json_yaml_toml_and_recipe(reg, tmp_path):
    spec = {
        "generator": {"type": "t.gen", "num_classes": 3},
        "losses": {"fm": "t.fm"},
        "discriminator": "t.disc",
    }
    (tmp_path / "m.json").write_text(json.dumps(spec))
    (tmp_path / "m.yaml").write_text(
        "generator: {type: t.gen, num_classes: 3}\ndiscriminator: t.disc\nlosses:\n  fm: t.fm\n"
    )
    (tmp_path / "m.toml").write_text(
        '[generator]\ntype = "t.gen"\nnum_classes = 3\n[discriminator]\ntype = "t.disc"\n'
        '[losses.fm]\ntype = "t.fm"\n'
    )
    for source in (spec, tmp_path / "m.json", str(tmp_path / "m.yaml"), tmp_path / "m.toml"):
        m = compose(source, reg)
        assert m.generator.config.num_classes == 3
        assert set(m.losses) == {"fm"}
        assert m.discriminator.config.num_classes == 3  # offered by the generator
    assert compose("t.small", reg).generator.config.num_classes == 4


def test_base_recipe_with_overrides(reg):
    m = compose({"base": "t.small", "generator": {"ch": 4}}, reg)
    assert m.generator.config.ch == 4 and m.generator.config.num_classes == 4
    # a different type replaces the whole section
    m = compose({"base": "t.small", "generator": {"type": "t.pyramid_gen"}}, reg)
    assert type(m.generator).__name__ == "PyramidGen" and m.generator.config.num_classes == 4


def test_missing_file_and_unknown_recipe(reg, tmp_path):
    with pytest.raises(ComposeError, match="does not exist"):
        compose(tmp_path / "nope.yaml", reg)
    with pytest.raises(synth.UnknownPartError, match="Did you mean 't.small'"):
        compose("t.smal", reg)
    with pytest.raises(ComposeError, match="unknown format"):
        (tmp_path / "x.txt").write_text("{}")
        compose(tmp_path / "x.txt", reg)


# ----------------------------------------------------------------------------- graph checks


def test_unknown_part_and_wrong_kind(reg):
    msg = errors_of({"generator": "t.gne"}, reg)
    assert "unknown part 't.gne'" in msg and "Did you mean 't.gen'" in msg
    msg = errors_of({"generator": "t.fm"}, reg)
    assert "'t.fm' is a loss, not a generator" in msg and "t.gen" in msg
    msg = errors_of({"generator": "clvae.spade_generator"}, reg)
    assert "pip install synth-plugin-clvae" in msg


def test_bad_spec_key_and_bad_generator_field(reg):
    msg = errors_of({"generator": "t.gen", "discrimnator": "t.disc"}, reg)
    assert "unknown field 'discrimnator'" in msg and "did you mean 'discriminator'" in msg
    msg = errors_of({"generator": {"type": "t.gen", "num_clases": 3}}, reg)
    assert "unknown field 'num_clases'" in msg and "did you mean 'num_classes'" in msg
    msg = errors_of({"generator": {"type": "t.gen", "ch": "wide"}}, reg)
    assert "field 'ch' = 'wide'" in msg
    msg = errors_of({"generator": "t.gen", "losses": {"bad name": "t.fm"}}, reg)
    assert "must be an identifier" in msg
    msg = errors_of({"generator": "t.gen", "condition": ["labels"]}, reg)
    assert "unknown Condition field" in msg


def test_latent_requirement_names_missing_field_and_providers(reg):
    msg = errors_of({"generator": {"type": "t.gen", "norm": {"type": "core.adain"}}}, reg)
    assert "generator.norm (core.adain) requires latent 'styles'" in msg
    assert "the spec has no injector" in msg and "core.gaussian" in msg
    msg = errors_of({"generator": {"type": "t.gen", "z_dim": 4}}, reg)
    assert "requires latent 'z'" in msg
    m = compose({"generator": {"type": "t.gen", "z_dim": 4}, "injector": "core.gaussian"}, reg)
    assert m.injector.config.z_dim == 4  # runtime argument offered by the generator


def test_condition_field_requirement(reg):
    msg = errors_of({"generator": {"type": "t.gen", "norm": "t.weights_norm"}}, reg)
    assert "Condition field 'class_weights'" in msg and "condition: [...]" in msg
    m = compose(
        {
            "generator": {"type": "t.gen", "norm": "t.weights_norm"},
            "condition": ["label_map", "class_weights"],
        },
        reg,
    )
    assert m.data_fields == {"label_map", "class_weights"}


def test_loss_needs(reg):
    msg = errors_of({"generator": "t.gen", "losses": {"p": "t.pyramid_loss"}}, reg)
    assert "losses.p (t.pyramid_loss) needs a per-scale RGB pyramid" in msg
    assert "pyramid adapter" in msg
    compose({"generator": "t.pyramid_gen", "losses": {"p": "t.pyramid_loss"}}, reg)
    msg = errors_of({"generator": "t.gen", "losses": {"fm": "t.fm"}}, reg)
    assert "needs 'disc_features': add a `discriminator`" in msg
    msg = errors_of({"generator": "t.gen", "losses": {"kl": "core.kl"}}, reg)
    assert "needs a KL term" in msg


def test_objective_parts_and_channels(reg):
    msg = errors_of({"generator": "t.gen", "objective": "t.obj"}, reg)
    assert "objective (t.obj) needs a 'discriminator'" in msg
    msg = errors_of({"generator": "t.gen", "discriminator": "t.gray_disc"}, reg)
    assert "reads 1-channel images but the generator makes 3-channel ones" in msg


def test_all_problems_reported_together(reg):
    msg = errors_of(
        {
            "generator": {"type": "t.gen", "norm": "core.adain"},
            "losses": {"fm": "t.fm"},
            "objective": "t.obj",
        },
        reg,
    )
    assert msg.count("\n  - ") == 3


def test_runtime_argument_override_is_an_error(reg):
    with pytest.raises(ComposeError) as err:
        compose({"generator": {"type": "t.gen", "norm": {"type": "t.norm", "channels": 3}}}, reg)
    assert "'channels' is a runtime argument set by the part that hosts it" in str(err.value)
    assert "remove it from the spec" in str(err.value)


def test_build_passes_only_declared_runtime_args(reg):
    norm = reg.build("t.norm", channels=5, stage=2, style_dim=7, num_classes=3)
    assert norm.config.channels == 5 and norm.name == "t.norm"
    with pytest.raises(synth.ConfigError, match="unknown field 'width'"):
        reg.build("t.norm", channels=5, width=3)
    with pytest.raises(synth.ConfigError, match="field 'channels' is required"):
        reg.build("t.norm")


def test_model_generate_and_condition_checks(reg):
    m = compose("t.small", reg)
    cond = synth.Condition(label_map=torch.randint(0, 4, (2, 8, 8)), num_classes=4)
    assert m.generate(cond).image.shape == (2, 3, 8, 8)
    with pytest.raises(ValueError, match="built for num_classes = 4"):
        m.generate(synth.Condition(label_map=torch.zeros(1, 8, 8, dtype=torch.long), num_classes=5))
    with pytest.raises(ValueError, match=r"reads Condition field\(s\) \['label_map'\]"):
        m.generate(synth.Condition(image=torch.zeros(1, 3, 8, 8)))
    with pytest.raises(
        ValueError,
        match="multiples of 2; resize or pad the inputs to e.g. "
        r"\(8, 8\)",
    ):
        m.generate(synth.Condition(label_map=torch.zeros(1, 7, 7, dtype=torch.long), num_classes=4))
    with pytest.raises(TypeError, match="expected a synth.Condition"):
        m.generate(torch.zeros(1, 8, 8))
    with pytest.raises(synth.CapabilityError, match="no injector"):
        m.encode(torch.zeros(2, 3, 8, 8), cond)


def test_describe_and_list(reg):
    d = reg.describe("t.norm")
    assert d["kind"] == "conditioning" and d["runtime_args"] == ["channels"]
    assert d["config_schema"]["properties"]["channels"]["type"] == "integer"
    assert reg.list("generator", "t.*") == ["t.gen", "t.pyramid_gen"]
    with pytest.raises(ValueError, match="unknown kind"):
        reg.list("widget")


class _ReadsFromConfig(synth.Discriminator):
    """What it reads comes from its config (as a wrapper's does from the part it wraps)."""

    class Config(synth.PartConfig):
        reads: list[str] = []
        num_classes: int  # a runtime argument the generator offers only at build time

    @classmethod
    def requirements(cls, config=None):
        return frozenset(config.reads) if config is not None else frozenset()

    def forward(self, image, cond):
        raise AssertionError("never built")


def test_discriminator_requirements_are_read_from_its_spec(synth_registry):
    synth_registry.add_part("t.reads_d", _ReadsFromConfig)
    spec = {
        "generator": {"type": "core.simple_generator", "num_classes": 4},
        "discriminator": {"type": "t.reads_d", "reads": ["instance_map"]},
    }
    with pytest.raises(ComposeError, match="requires Condition field 'instance_map'"):
        synth.compose(spec)
