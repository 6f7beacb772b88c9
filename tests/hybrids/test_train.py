"""Each hybrid recipe, scaled down to 32 px and tiny widths, trains with the core Trainer on the
embedded demo photos: finite losses, its networks learn, samples of one input differ across
codes, and ``save_pretrained`` -> ``synth.load`` reproduces the outputs for a seed."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

import synth
import synth.data
from synth.train import Trainer, TrainerConfig

SIZE, K = 32, 8

#: Perceptual / VGG terms at test size: random backbone (tests never download), two layers.
VGG: dict[str, Any] = {
    "weights": "none",
    "layers": ["relu1_1", "relu2_1"],
    "layer_weights": [0.5, 1.0],
}
#: cIMLE's layout distance shortened the same way (input pixels + one VGG layer).
DISTANCE: dict[str, Any] = {
    "weights": "none",
    "layers": ["input", "conv1_2"],
    "layer_weights": [1.0, 1.0],
}
#: Algorithm 1 in miniature: 4 codes per input, 2 inner updates on pairs of cached codes.
IMLE: dict[str, Any] = {
    "num_codes": 4,
    "minibatch": 2,
    "inner_steps": 2,
    "perturb": 0.1,
    "chunk_size": 8,
    "draw_block": 2,
}
SPADE_TINY: dict[str, Any] = {"type": "clvae.spade", "hidden": 8}
ENCODER_TINY: dict[str, Any] = {"ndf": 4, "input_size": SIZE, "num_layers": 5}


@dataclass(frozen=True)
class Case:
    plugins: tuple[str, ...]
    overrides: dict[str, Any]
    #: model attributes whose weights the objective must update
    trained: tuple[str, ...]
    #: log keys every step must report
    logged: frozenset[str] = field(default_factory=frozenset)


CASES: dict[str, Case] = {
    "clvae.gaugan_composed": Case(
        ("clvae", "pix2pixhd"),
        {
            "generator": {
                "num_classes": K,
                "ngf": 2,
                "z_dim": 8,
                "crop_size": SIZE,
                "norm": SPADE_TINY,
            },
            "injector": ENCODER_TINY,
            "discriminator": {"ndf": 8, "n_layers": 2},
            "losses": {"vgg": VGG},
        },
        ("generator", "injector", "discriminator"),
        frozenset({"g/gan", "g/fm", "g/vgg", "g/kl", "d/gan"}),
    ),
    "pix2pixhd.imle": Case(
        ("pix2pixhd", "cimle"),
        {
            "generator": {
                "num_classes": K,
                "ngf": 8,
                "n_downsampling": 2,
                "n_blocks": 1,
                "feat_num": 4,
            },
            "injector": {"scale": 4},
            "losses": {"imle": DISTANCE},
            "objective": IMLE,
        },
        ("generator",),
        frozenset({"g/imle", "imle/distance"}),
    ),
    "clvae.imle": Case(
        ("clvae", "cimle"),
        {
            "generator": {
                "num_classes": K,
                "ngf": 2,
                "z_dim": 8,
                "code_dim": 4,
                "crop_size": SIZE,
                "norm": SPADE_TINY,
                "cse": {"type": "clvae.cse", "hidden": 8},
            },
            "injector": ENCODER_TINY,
            "losses": {"imle": DISTANCE},
            "objective": IMLE,
        },
        ("generator",),
        frozenset({"g/imle", "imle/distance"}),
    ),
    "cimle.crn_gan": Case(
        ("cimle", "pix2pixhd"),
        {
            "generator": {
                "num_classes": K,
                "num_levels": 3,
                "channels": [16, 16, 8],
                "noise_channels": 4,
            },
            "injector": {"noise_dim": 4, "hidden": 8},
            "discriminator": {"ndf": 8, "n_layers": 2},
            "losses": {"vgg": VGG},
        },
        ("generator", "injector", "discriminator"),
        frozenset({"g/gan", "g/feat", "g/vgg", "d/gan"}),
    ),
}


def _weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def _condition() -> synth.Condition:
    """One whole demo photo's label map (not a training crop)."""
    item = synth.data.demo(SIZE, K, split="all")[0]
    return synth.Condition(label_map=item["label_map"][None], num_classes=K)


@pytest.mark.parametrize("name", sorted(CASES))
def test_hybrid_trains_samples_and_round_trips(registry_with, tmp_path, name):
    case = CASES[name]
    registry_with(*case.plugins)
    torch.manual_seed(0)
    model = synth.compose({"base": name, **case.overrides})
    before = {net: _weights(getattr(model, net)) for net in case.trained}

    run = tmp_path / "run"
    config = TrainerConfig(
        steps=2,
        batch_size=2,
        run_dir=str(run),
        device="cpu",
        progress=False,
        sample_every=None,
        log_every=1,
        seed=0,
    )
    Trainer(model, synth.data.demo(SIZE, K, crops_per_photo=1), config).fit()

    lines = [json.loads(ln) for ln in (run / "log.jsonl").read_text().splitlines()]
    assert [ln["step"] for ln in lines] == [1, 2]
    for line in lines:
        assert case.logged <= set(line), sorted(line)
        losses = {k: v for k, v in line.items() if k.startswith(("g/", "d/", "imle/"))}
        assert all(math.isfinite(v) for v in losses.values()), losses
    for net, old in before.items():
        new = _weights(getattr(model, net))
        assert any(not torch.equal(old[n], new[n]) for n in old), f"{net} did not train"

    # multimodal: three codes for one label map give three different images
    cond = _condition()
    model.eval()
    with torch.no_grad():
        samples = model.sample(cond, 3, generator=torch.Generator().manual_seed(0)).image
    assert samples.shape == (3, 3, SIZE, SIZE) and torch.isfinite(samples).all()
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        assert (samples[i] - samples[j]).abs().mean() > 1e-3, (i, j)

    # save_pretrained -> load: the same images for the same seed
    model.save_pretrained(tmp_path / "saved")
    loaded = synth.load(tmp_path / "saved").eval()
    assert loaded.spec == model.spec
    with torch.no_grad():
        a = model.generate(cond, generator=torch.Generator().manual_seed(1)).image
        b = loaded.generate(cond, generator=torch.Generator().manual_seed(1)).image
    assert torch.equal(a, b)
