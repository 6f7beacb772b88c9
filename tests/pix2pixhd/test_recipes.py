"""Recipes, the coarse-to-fine trainer configuration and composition."""

from __future__ import annotations

import pytest
import torch

import synth
from synth.train import Trainer, TrainerConfig
from synth_pix2pixhd import recipe, to_official, training_config

from .helpers import OnePair, demo_pair


@pytest.mark.parametrize(
    "name", ["pix2pixhd.cityscapes_512", "pix2pixhd.cityscapes_1024", "pix2pixhd.ade20k"]
)
def test_recipes_are_valid_specs(reg, name):
    spec = synth.recipes()[name].spec
    checked = synth.check_spec(synth.load_spec(name))
    assert checked["data_fields"] >= (
        {"label_map"} | ({"instance_map"} if "ade" not in name else set())
    )
    assert spec["losses"]["gan"]["type"] == "core.lsgan"
    assert spec["losses"]["feat"] == {"type": "pix2pixhd.feature_matching", "weight": 10.0}
    assert spec["losses"]["vgg"] == {"type": "core.perceptual", "weight": 10.0}
    assert spec["objective"]["type"] == "core.gan"
    want_d = {"pix2pixhd.cityscapes_1024": 3}.get(name, 2)
    assert spec["discriminator"]["num_d"] == want_d


def test_cityscapes_1024_is_local_enhancer_ngf32(reg):
    g = synth.recipes()["pix2pixhd.cityscapes_1024"].spec["generator"]
    assert g["type"] == "pix2pixhd.local_enhancer" and g["ngf"] == 32


def test_training_config_defaults():
    cfg = TrainerConfig.model_validate(training_config(steps=200))
    assert cfg.optimizer.lr == 2e-4 and cfg.optimizer.betas == (0.5, 0.999)
    assert cfg.decay_start == 100 and not cfg.freeze
    with pytest.raises(ValueError, match="fixed_stages"):
        training_config(steps=10, freeze_global_until=5)


def test_coarse_to_fine_schedule_freezes_global_generator(reg, tmp_path):
    """Enhancer alone until step 2 (global generator frozen), then jointly."""
    k = 8
    spec = recipe(
        "cityscapes_1024",
        num_classes=k,
        ngf=4,
        n_downsample_global=1,
        n_blocks_global=1,
        n_blocks_local=1,
    )
    spec["discriminator"].update(ndf=4, n_layers=2)
    del spec["losses"]["vgg"]
    torch.manual_seed(0)
    model = synth.compose(spec)
    n_global = model.generator.global_stages
    assert model.generator.fixed_stages == n_global  # one enhancer: G1 is all that is fixed
    cfg = training_config(
        steps=3,
        freeze_global_until=2,
        fixed_stages=model.generator.fixed_stages,
        batch_size=1,
        device="cpu",
        run_dir=str(tmp_path),
        sample_every=None,
        progress=False,
        log_every=1,
    )
    data = OnePair(demo_pair(32, k), k)
    glob = {
        n: p.detach().clone()
        for n, p in model.generator.named_parameters()
        if n.startswith("stages.0.")
    }
    local = model.generator.stages[n_global].conv.weight.detach().clone()
    trainer = Trainer(model, data, cfg)
    trainer.config.steps = 2
    trainer.fit()
    after = dict(model.generator.named_parameters())
    assert all(torch.equal(after[n], v) for n, v in glob.items())
    assert not torch.equal(model.generator.stages[n_global].conv.weight, local)
    trainer.config.steps = 3
    trainer.fit()
    after = dict(model.generator.named_parameters())
    assert not all(torch.equal(after[n], v) for n, v in glob.items())


def test_instance_feature_model_trains_end_to_end(reg, tmp_path):
    """G with instance features + the encoder E (posterior during training, §3.4)."""
    k = 8
    spec = recipe("cityscapes_512", num_classes=k, ngf=4, n_downsampling=2, n_blocks=1, feat_num=3)
    spec["injector"] = {"type": "pix2pixhd.instance_encoder", "nef": 4, "n_downsampling": 2}
    spec["discriminator"].update(ndf=4, n_layers=2)
    del spec["losses"]["vgg"]
    torch.manual_seed(0)
    model = synth.compose(spec)
    assert model.generator.requirements(model.generator.config) >= {"spatial", "instance_map"}
    enc_before = model.injector.conv_in.weight.detach().clone()
    cfg = training_config(
        steps=2, batch_size=1, device="cpu", run_dir=str(tmp_path), sample_every=None,
        progress=False, log_every=1,
    )  # fmt: skip
    Trainer(model, OnePair(demo_pair(32, k), k), cfg).fit()
    assert not torch.equal(model.injector.conv_in.weight, enc_before)


def test_frozen_global_phase_trains_only_the_outermost_enhancer(reg, tmp_path):
    """N = 2 enhancers: the official ``niter_fix_global`` phase optimises only the parameters
    whose official name starts with ``model{n_local_enhancers}`` (``pix2pixHD_model.py``):
    the outermost enhancer with the RGB head. G1 and the inner enhancer stay fixed."""
    k = 4
    spec = recipe(
        "cityscapes_1024",
        num_classes=k,
        ngf=2,
        n_downsample_global=1,
        n_blocks_global=1,
        n_local_enhancers=2,
        n_blocks_local=1,
        use_instances=False,
    )
    spec["discriminator"].update(ndf=4, n_layers=2, num_d=1, use_instances=False)
    del spec["losses"]["vgg"]
    torch.manual_seed(0)
    model = synth.compose(spec)
    gen = model.generator
    assert gen.fixed_stages == gen.enhancer_fronts[1] > gen.global_stages
    before = {n: v.clone() for n, v in to_official(gen).items()}
    cfg = training_config(
        steps=2,
        freeze_global_until=2,
        fixed_stages=gen.fixed_stages,
        batch_size=1,
        device="cpu",
        run_dir=str(tmp_path),
        sample_every=None,
        progress=False,
        log_every=1,
    )
    Trainer(model, OnePair(demo_pair(32, k), k), cfg).fit()
    after = to_official(gen)
    changed = {n for n, v in after.items() if not torch.equal(v, before[n])}
    assert changed == {n for n in after if n.startswith("model2")}


def test_global_stages_is_the_deprecated_name_of_fixed_stages():
    with pytest.warns(DeprecationWarning, match="fixed_stages"):
        cfg = training_config(steps=10, freeze_global_until=5, global_stages=2)
    assert (
        cfg["freeze"] == training_config(steps=10, freeze_global_until=5, fixed_stages=2)["freeze"]
    )
