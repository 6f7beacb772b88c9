"""Feature matching (eq. 4, official weights) and LSGAN values against hand computations."""

from __future__ import annotations

import torch

import synth
from synth import Condition, DiscriminatorOutput, LossInputs


def _disc(features, logits):
    return DiscriminatorOutput(logits=logits, features=features)


def test_feature_matching_official_weighting(reg):
    fm = synth.build("pix2pixhd.feature_matching")
    assert fm.config.weighting == "pix2pixhd"
    g = torch.Generator().manual_seed(0)
    num_d, n_layers = 2, 3
    fake = [
        [torch.randn(2, 4, 5, 5, generator=g) for _ in range(n_layers + 1)] for _ in range(num_d)
    ]
    real = [
        [torch.randn(2, 4, 5, 5, generator=g) for _ in range(n_layers + 1)] for _ in range(num_d)
    ]
    logits = [torch.zeros(2, 1, 3, 3)] * num_d
    cond = Condition(mask=torch.ones(2, 1, 5, 5))
    batch = LossInputs(
        "generator", cond, disc_fake=_disc(fake, logits), disc_real=_disc(real, logits)
    )
    # Official: loss_G_GAN_Feat += D_weights * feat_weights * L1(pred_fake[i][j], pred_real[i][j])
    feat_weights = 4.0 / (n_layers + 1)
    d_weights = 1.0 / num_d
    expected = 0.0
    for i in range(num_d):
        for j in range(n_layers + 1):
            diff = (fake[i][j] - real[i][j]).abs().sum().item() / fake[i][j].numel()
            expected += d_weights * feat_weights * diff
    assert abs(fm(batch).item() - expected) < 1e-5


def test_lsgan_values_by_hand(reg):
    gan = synth.build("core.lsgan")
    real = [torch.tensor([[0.5, 2.0]]), torch.tensor([[1.0, -1.0, 0.0]])]
    fake = [torch.tensor([[0.0, 1.0]]), torch.tensor([[3.0, 0.5, -2.0]])]
    cond = Condition(mask=torch.ones(1, 1, 2, 2))
    dr, df = _disc([], real), _disc([], fake)
    g = gan(LossInputs("generator", cond, disc_fake=df, disc_real=dr)).item()
    # G: Σ_scales mean((D(fake) - 1)²)
    g_hand = ((1 + 0) / 2) + ((4 + 0.25 + 9) / 3)
    assert abs(g - g_hand) < 1e-6
    d = gan(LossInputs("discriminator", cond, disc_fake=df, disc_real=dr)).item()
    # D: 0.5 · Σ_scales [mean((D(real) - 1)²) + mean(D(fake)²)]
    d_hand = 0.5 * (((0.25 + 1) / 2 + (0 + 1) / 2) + ((0 + 4 + 1) / 3 + (9 + 0.25 + 4) / 3))
    assert abs(d - d_hand) < 1e-6
