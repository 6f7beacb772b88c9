"""Recipes: the paper's settings (architecture widths, n_dis, Adam), and the tiny one trains on
CPU."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

import synth
from synth.data.base import SynthDataset
from synth.train.config import TrainerConfig
from synth_collage import layer_class_maps, spatial_norms
from synth_collage.recipes import N_DIS, RECIPES

NAMES = ["collage.dogcat_256", "collage.dogcat_128", "collage.tiny"]


def test_registered(collage_registry):
    assert set(NAMES) <= set(synth.recipes())
    assert set(RECIPES) == set(NAMES)


@pytest.mark.parametrize(
    ("name", "res", "ch", "k", "widths", "d_widths"),
    [
        # snresnet_256.py: c1 at the output width
        ("collage.dogcat_256", 256, 48, 143, [16, 16, 8, 8, 4, 2, 1], [1, 2, 4, 8, 8, 16, 16]),
        # snresnet_small.py: c1 keeps the input width (resblocks.Block's default)
        ("collage.dogcat_128", 128, 64, 143, [8, 8, 4, 4, 2, 1], [1, 2, 4, 4, 8, 8]),
    ],
)
def test_paper_architectures(collage_registry, name, res, ch, k, widths, d_widths):
    spec = synth.recipes()[name].spec
    g = spec["generator"]
    assert (g["resolution"], g["ch"], g["num_classes"], g["z_dim"]) == (res, ch, k, 128)
    assert g["norm"]["type"] == "collage.scbn"
    with torch.device("meta"):  # the real widths without allocating 256 px weights
        gen = synth.build(g)
        disc = synth.build(spec["discriminator"], num_classes=k)
    assert gen.stage_channels == [ch * m for m in widths]
    assert gen.stage_scales[0] == res // 4 and gen.stage_scales[-1] == 1
    assert len(spatial_norms(gen)) == 2 * (len(widths) - 1)
    assert all(n.config.eps == 2e-5 for n in spatial_norms(gen))
    assert [b.c2.weight.shape[0] for b in disc.blocks] == [ch * m for m in d_widths]
    c1_in = [b.c1.weight.shape[:2] for b in disc.blocks[1:]]
    if name == "collage.dogcat_128":
        assert all(o == i for o, i in c1_in)
    else:
        assert [o for o, _ in c1_in] == [ch * m for m in d_widths[1:]]
    assert spec["losses"]["gan"]["type"] == "core.hinge"


@pytest.mark.parametrize("name", NAMES)
def test_trainer_settings_are_the_papers(collage_registry, name):
    cfg = TrainerConfig.model_validate(synth.recipes()[name].train)
    assert (cfg.optimizer.type, cfg.optimizer.lr, cfg.optimizer.betas) == ("adam", 2e-4, (0, 0.9))
    assert cfg.d_steps == N_DIS == 5
    if name != "collage.tiny":
        assert cfg.batch_size == 16
        # 450k generator iterations, decayed linearly to 0 from 400k (trainer steps count D steps)
        assert cfg.steps == 450_000 * 5 and cfg.decay_start == 400_000 * 5


class _Blobs(SynthDataset):
    """Four classes of 32 px images: a bright square whose colour and place follow the class."""

    num_classes = 4
    fields = frozenset({"class_id"})

    def __len__(self) -> int:
        return 8

    def _load(self, index: int, generator: torch.Generator) -> dict[str, Any]:
        c = index % 4
        img = torch.full((3, 32, 32), -1.0)
        y, x = 4 + 12 * (c // 2), 4 + 12 * (c % 2)
        img[c % 3, y : y + 12, x : x + 12] = 1.0
        img += 0.05 * torch.randn(3, 32, 32, generator=generator)
        return {"real": img.clamp(-1, 1), "class_id": torch.tensor(c)}


def test_tiny_recipe_trains_on_cpu_and_collages(collage_registry, tmp_path):
    recipe = synth.recipes()["collage.tiny"]
    torch.manual_seed(0)
    model = synth.compose("collage.tiny")
    train = {
        **recipe.train,
        "steps": 2 * N_DIS,
        "batch_size": 4,
        "run_dir": str(tmp_path),
        "sample_every": None,
        "checkpoint_every": 1000,
        "log_every": 1,
        "progress": False,
    }
    result = synth.Trainer(model, _Blobs(seed=0), train).fit()
    assert result is not None
    log = (tmp_path / "log.jsonl").read_text().splitlines()
    assert log
    model = synth.load(tmp_path / "model")
    cond = synth.Condition(class_id=torch.tensor([0, 1]), num_classes=4, size=(32, 32))
    with torch.no_grad():
        out = model.sample(cond, 2)
        assert out.image.shape == (4, 3, 32, 32) and torch.isfinite(out.image).all()
        w = torch.zeros(2, 4, 32, 32)
        w[:, 3] = 1
        collage = model.sample(
            cond, 1, sampler="collage.label_collage", class_weights=w, layers=[0, 1]
        )
        with layer_class_maps(model.generator, {0: w, 1: w}):
            direct = model.generate(cond, collage.latents).image
    torch.testing.assert_close(collage.image, direct)
    assert math.isfinite(float(collage.image.abs().mean()))
