"""The official SPADE / CLVAE code's settings in the recipes: xavier-normal init with gain 0.02
(``BaseNetwork.init_weights``), the discriminator step's regenerated fake
(``pix2pix_model.py``), and the learning rates (the paper's, the official TTUR on request)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

import synth
from synth.train.run import run_config
from synth_clvae.plugin import OFFICIAL_LRS

PAPER_RECIPES = [
    "clvae.spade_cityscapes",
    "clvae.gaugan_vae_ade20k",
    "clvae.ade20k",
    "clvae.deepfashion",
    "clvae.gta5",
]
CLVAE_RECIPES = ["clvae.ade20k", "clvae.deepfashion", "clvae.gta5"]
DATA = {"type": "demo", "size": 16, "num_classes": 4, "crops_per_photo": 1}


@pytest.mark.parametrize("name", PAPER_RECIPES)
def test_recipes_use_the_official_init_and_regenerated_fake(clvae_registry, name):
    spec = synth.recipes()[name].spec
    for section in ("generator", "injector", "discriminator"):
        if section in spec:
            assert spec[section]["init"] == "xavier", section
    assert spec["objective"] == {"type": "core.gan", "d_fake": "regenerate"}


def _layers(module: nn.Module):
    for m in module.modules():
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
            w = (
                m.parametrizations.weight.original
                if parametrize.is_parametrized(m, "weight")
                else m.weight
            )
            yield m, w


def _xavier_std(w: torch.Tensor, gain: float = 0.02) -> float:
    """Official xavier-normal: gain·sqrt(2 / (fan_in + fan_out)), fans × receptive field."""
    receptive = w[0][0].numel() if w.dim() > 2 else 1
    return gain * math.sqrt(2.0 / ((w.shape[0] + w.shape[1]) * receptive))


def test_xavier_init_of_generator_encoder_and_discriminator(clvae_registry):
    """Every conv / linear weight (the spectral norm's original included) has xavier's std
    with gain 0.02 and every bias is 0; the class embedding keeps torch's N(0, 1), as
    the official ``init_func`` (which matches only Conv / Linear / BatchNorm) leaves it."""
    torch.manual_seed(0)
    model = synth.compose(
        {
            "generator": {
                "type": "clvae.clvae_generator",
                "num_classes": 6,
                "ngf": 8,
                "z_dim": 16,
                "crop_size": 64,
                "init": "xavier",
            },
            "injector": {
                "type": "clvae.class_layer_encoder",
                "ndf": 16,
                "input_size": 64,
                "num_layers": 5,
                "init": "xavier",
            },
            "discriminator": {"type": "clvae.multiscale_discriminator", "init": "xavier"},
        }
    )
    checked = 0
    for part in (model.generator, model.injector, model.discriminator):
        for m, w in _layers(part):
            if m.bias is not None:
                assert torch.count_nonzero(m.bias) == 0
            if w.numel() >= 20_000:  # enough draws for a 5 % check of the std
                assert w.std().item() == pytest.approx(_xavier_std(w), rel=0.05)
                assert abs(w.mean().item()) < 0.1 * _xavier_std(w)
                checked += 1
    assert checked > 10
    assert model.generator.embedding.weight.std().item() == pytest.approx(1.0, rel=0.3)
    # spectral norm's σ was re-estimated for the new weights: normalised weights have norm 1
    conv = model.generator.stages[0].conv_0.eval()
    sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2).item()
    assert sigma == pytest.approx(1.0, rel=0.05)


def test_default_init_is_torchs(clvae_registry):
    """Without ``init`` the parts keep PyTorch's initialisation (biases not zero)."""
    torch.manual_seed(0)
    enc = synth.build({"type": "clvae.conv_encoder", "ndf": 4, "input_size": 64, "z_dim": 8})
    assert torch.count_nonzero(enc.fc_mu.bias) > 0


@pytest.mark.parametrize("name", CLVAE_RECIPES)
def test_clvae_recipes_run_the_papers_rates_and_offer_the_official(clvae_registry, name):
    """§4.2: G/E 4e-4, D 1e-4 (the recipes); official (TTUR from lr 2e-4): G/E 1e-4, D 4e-4,
    as the run's ``train`` section OFFICIAL_LRS, merged over the recipe's settings."""
    run = run_config({"model": name, "data": DATA})
    t = run.train
    assert (t.optimizer.lr, t.optimizers["discriminator"].lr) == (4e-4, 1e-4)
    assert "OFFICIAL_LRS" in synth.recipes()[name].description
    official = run_config({"model": name, "data": DATA, "train": OFFICIAL_LRS}).train
    assert (official.optimizer.lr, official.optimizers["discriminator"].lr) == (1e-4, 4e-4)
    assert official.optimizer.betas == official.optimizers["discriminator"].betas == (0.0, 0.9)
    assert (official.steps, official.batch_size) == (t.steps, t.batch_size)
