"""Registry error paths: names, kinds, collisions, lazy targets, close matches."""

import pytest

import synth
from synth import RegistryError, UnknownPartError
from synth.registry import discover


@pytest.fixture
def reg():
    r = synth.Registry()
    discover(r, entry_points=False)
    return r


@pytest.mark.parametrize("name", ["hinge", "Core.Hinge", "core.", ".x", "my-plugin.part"])
def test_bad_names(reg, name):
    with pytest.raises(RegistryError, match="must look like '<plugin>.<part>'"):
        reg.add(name, kind="loss", target="synth.parts.losses:L1")


def test_unknown_kind(reg):
    with pytest.raises(RegistryError, match="unknown kind 'norm'; kinds are conditioning"):
        reg.add("x.norm", kind="norm", target="synth.parts.conditioning:AdaIN")


def test_collision_names_both_owners(reg):
    with pytest.raises(RegistryError) as err:
        reg.add("core.hinge", kind="loss", target="other:Hinge")
    assert "first by plugin 'core'" in str(err.value) and "'other:Hinge'" in str(err.value)
    reg.add_recipe("x.r", {"generator": "core.simple_generator"})
    with pytest.raises(RegistryError, match="recipe 'x.r' is registered twice"):
        reg.add_recipe("x.r", {})


def test_lazy_target_errors_surface_on_use_only(reg):
    reg.add("x.missing", kind="loss", target="no_such_module_xyz:Thing")
    reg.add("x.noattr", kind="loss", target="synth.parts.losses:NoSuchLoss")
    reg.add("x.badform", kind="loss", target="synth.parts.losses.L1")
    reg.add("x.wrongkind", kind="generator", target="synth.parts.losses:L1")
    assert "x.missing" in reg.list()  # registering imports nothing
    with pytest.raises(RegistryError, match="could not be imported from 'no_such_module_xyz"):
        reg.resolve("x.missing")
    with pytest.raises(RegistryError, match="AttributeError"):
        reg.resolve("x.noattr")
    with pytest.raises(RegistryError, match="must be 'module.path:ClassName'"):
        reg.resolve("x.badform")
    with pytest.raises(RegistryError, match="not a subclass of synth.Generator"):
        reg.resolve("x.wrongkind")


def test_unknown_names_get_close_matches_and_pip_hint(reg):
    with pytest.raises(UnknownPartError, match="Did you mean 'core.hinge'"):
        reg.get("core.hinje")
    with pytest.raises(UnknownPartError, match="pip install synth-plugin-nested-scale"):
        reg.get("nested_scale.disentangle")
    with pytest.raises(UnknownPartError, match="`synth list` shows every registered name"):
        reg.get("zzz.qqq")


def test_wildcards_and_kinds(reg):
    assert reg.list("loss", "core.l*") == ["core.l1", "core.lpips", "core.lsgan"]
    assert set(reg.list("sampler")) == {"core.prior", "core.interpolate", "core.best_of_n"}
    assert all(n.startswith("core.") for n in reg.list())


def test_spec_must_name_a_type(reg):
    with pytest.raises(ValueError, match="needs a 'type'"):
        reg.build({"weight": 1.0})
    with pytest.raises(ValueError, match="a part spec is a name or a dict"):
        reg.build(3)


def test_the_old_objective_names_still_work_with_a_deprecation_warning():
    from synth.parts.objectives import GAN

    reg = synth.Registry()
    with pytest.warns(DeprecationWarning, match="kind 'trainer' is deprecated"):
        reg.add("old.gan", kind="trainer", target=GAN)
    assert reg.get("old.gan").kind == "objective"
    with pytest.warns(DeprecationWarning, match="use synth.Objective"):
        assert synth.TrainingObjective is synth.Objective


def test_list_parts_takes_the_pattern_first():
    assert synth.list_parts("core.*_norm") == ["core.batch_norm", "core.instance_norm"]
    assert synth.list_parts("core.*", kind="loss") == synth.list_parts(
        kind="loss", pattern="core.*"
    )
    with pytest.warns(DeprecationWarning, match="list_parts\\(kind='conditioning'\\)"):
        assert "core.adain" in synth.list_parts("conditioning")
