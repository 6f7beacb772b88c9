"""Every hybrid recipe is registered by the plugin owning its generator, its description names
the plugins it needs, and composing it without them is a clear ComposeError."""

from __future__ import annotations

from typing import Any

import pytest

import synth

#: hybrid recipe -> (plugin that registers it, the other plugins whose parts it names)
HYBRIDS: dict[str, tuple[str, frozenset[str]]] = {
    "clvae.gaugan_composed": ("clvae", frozenset({"pix2pixhd"})),
    "pix2pixhd.imle": ("pix2pixhd", frozenset({"cimle"})),
    "clvae.imle": ("clvae", frozenset({"cimle"})),
    "cimle.crn_gan": ("cimle", frozenset({"pix2pixhd"})),
}


def part_plugins(spec: Any) -> set[str]:
    """Prefixes of every part name (``"type"``) in a spec, slots included."""
    if isinstance(spec, dict):
        out = {spec["type"].split(".", 1)[0]} if isinstance(spec.get("type"), str) else set()
        for value in spec.values():
            out |= part_plugins(value)
        return out
    if isinstance(spec, list):
        return set().union(*map(part_plugins, spec)) if spec else set()
    return set()


def hybrid_prefix(plugins: set[str] | frozenset[str]) -> str:
    return "Hybrid (needs " + ", ".join(f"synth-plugin-{p}" for p in sorted(plugins)) + "): "


@pytest.mark.parametrize("name", sorted(HYBRIDS))
def test_hybrid_recipe_is_registered_and_fits(registry_with, name):
    owner, needs = HYBRIDS[name]
    registry_with(owner, *needs)
    recipe = synth.recipes()[name]
    assert recipe.plugin == owner
    # the generator is the owner's; the description lists exactly the other plugins used
    assert recipe.spec["generator"]["type"].startswith(f"{owner}.")
    assert part_plugins(recipe.spec) - {"core", owner} == needs
    assert recipe.description.startswith(hybrid_prefix(needs)), recipe.description
    # the full-size graph fits together (checked from classes and configs, nothing allocated)
    synth.check_spec(synth.load_spec(name))


def test_every_registered_hybrid_names_its_plugins(registry_with):
    registry_with("pix2pixhd", "clvae", "cimle")
    hybrids = {n: r for n, r in synth.recipes().items() if r.description.startswith("Hybrid")}
    assert set(HYBRIDS) <= set(hybrids)
    for name, recipe in hybrids.items():
        needs = part_plugins(recipe.spec) - {"core", recipe.plugin}
        assert needs, f"{name} is called a hybrid but uses only {recipe.plugin}'s parts"
        assert recipe.description.startswith(hybrid_prefix(needs)), (name, recipe.description)


@pytest.mark.parametrize("name", sorted(HYBRIDS))
def test_hybrid_without_its_plugins_is_a_compose_error(registry_with, name):
    owner, needs = HYBRIDS[name]
    registry_with(owner)
    assert name in synth.recipes()
    with pytest.raises(synth.ComposeError) as err:
        synth.compose(name)
    for plugin in needs:
        assert f"pip install synth-plugin-{plugin}" in str(err.value)
