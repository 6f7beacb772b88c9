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


# --------------------------------------------------------------------------- trainer settings

#: The papers' optimisers per recipe: (generator lr, discriminator lr or None when one
#: optimizer serves every network, betas, batch size). PAPERS.md and the recipe descriptions:
#: pix2pixHD Adam 2e-4 β (0.5, 0.999) batch 1; GauGAN TTUR G 1e-4 / D 4e-4 β (0, 0.9); CLVAE
#: G/E 4e-4 / D 1e-4 β (0, 0.9) batch 4; cIMLE |S| per round and its lr with Adam's default β.
PAPER_OPTIMIZERS: dict[str, tuple[float, float | None, tuple[float, float], int | None]] = {
    "pix2pixhd.cityscapes_512": (2e-4, None, (0.5, 0.999), 1),
    "pix2pixhd.cityscapes_1024": (2e-4, None, (0.5, 0.999), 1),
    "pix2pixhd.ade20k": (2e-4, None, (0.5, 0.999), 1),
    "pix2pixhd.imle": (1e-5, None, (0.9, 0.999), 400),
    "clvae.spade_cityscapes": (1e-4, 4e-4, (0.0, 0.9), None),
    "clvae.gaugan_vae_ade20k": (1e-4, 4e-4, (0.0, 0.9), 4),
    "clvae.gaugan_composed": (1e-4, 4e-4, (0.0, 0.9), 4),
    "clvae.ade20k": (4e-4, 1e-4, (0.0, 0.9), 4),
    "clvae.deepfashion": (4e-4, 1e-4, (0.0, 0.9), 4),
    "clvae.gta5": (4e-4, 1e-4, (0.0, 0.9), 4),
    "clvae.imle": (1e-5, None, (0.9, 0.999), 400),
    "cimle.sr_x8": (1.5e-4, None, (0.9, 0.999), 640),
    "cimle.sr_x4_small": (5e-4, None, (0.9, 0.999), 32),
    "cimle.gta5_layout": (1e-4, None, (0.9, 0.999), 400),  # official; 1e-5 from round 6
    "cimle.crn_gan": (2e-4, None, (0.5, 0.999), 1),
}

#: Epoch schedules in steps: (images per epoch // batch) × epochs, lr decay after the
#: constant epochs. pix2pixHD 100 + 100 epochs at batch 1 (Cityscapes 2,975 images, ADE20K
#: 20,210); CLVAE §4.2 at batch 4: ADE20K 100 + 100, DeepFashion (6,343) 60 + 40, GTA-5
#: (12,403) 20 without decay.
SCHEDULES: dict[str, tuple[int, int | None]] = {
    "pix2pixhd.cityscapes_512": (200 * 2_975, 100 * 2_975),
    "pix2pixhd.cityscapes_1024": (200 * 2_975, 100 * 2_975),
    "pix2pixhd.ade20k": (200 * 20_210, 100 * 20_210),
    "clvae.ade20k": (200 * 5_052, 100 * 5_052),
    "clvae.gaugan_vae_ade20k": (200 * 5_052, 100 * 5_052),
    "clvae.gaugan_composed": (200 * 5_052, 100 * 5_052),
    "clvae.deepfashion": (100 * 1_585, 60 * 1_585),
    "clvae.gta5": (20 * 3_100, None),
}


def test_every_recipe_carries_trainer_and_demo_settings(registry_with):
    from synth.demo import demo_settings, demo_trainer_config
    from synth.train import TrainerConfig

    registry_with("pix2pixhd", "clvae", "cimle")
    recipes = synth.recipes()
    assert set(PAPER_OPTIMIZERS) == set(recipes)
    for name, recipe in recipes.items():
        TrainerConfig.model_validate(recipe.train)  # every key a Trainer field
        assert recipe.demo, f"{name} has no demo settings"
        demo_settings(recipe)
        demo_trainer_config(recipe, {})


@pytest.mark.parametrize("name", sorted(PAPER_OPTIMIZERS))
def test_recipe_trainer_settings_are_the_papers(registry_with, name):
    from synth.train import TrainerConfig

    registry_with(name.split(".", 1)[0])
    cfg = TrainerConfig.model_validate(synth.recipes()[name].train)
    g_lr, d_lr, betas, batch = PAPER_OPTIMIZERS[name]
    assert (cfg.optimizer.type, cfg.optimizer.lr, cfg.optimizer.betas) == ("adam", g_lr, betas)
    if d_lr is None:
        assert cfg.optimizers == {}
    else:  # TTUR: the discriminator alone has its own rate; the encoder follows G
        assert set(cfg.optimizers) == {"discriminator"}
        assert (cfg.optimizers["discriminator"].lr, cfg.optimizers["discriminator"].betas) == (
            d_lr,
            betas,
        )
    if batch is not None:
        assert cfg.batch_size == batch
    if name in SCHEDULES:
        assert (cfg.steps, cfg.decay_start) == SCHEDULES[name]
