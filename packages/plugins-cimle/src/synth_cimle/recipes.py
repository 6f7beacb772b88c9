"""Recipes (named model specs) of the cIMLE plugin.

Trainer settings that are not part of a model spec (the outer batch S is the Trainer's
``batch_size``; Adam lr and its decay) are each recipe's :data:`TRAIN` entry (and stated in
its description); :data:`DEMO` holds the CPU-sized ``synth demo`` settings;
:data:`SR_STAGES` the official three-stage SR schedule (§5.1.1).

Where the paper and the official code disagree the recipes follow the official code (the
released results and checkpoints come from it) and say so; the paper's values are options:
SR lr 1.5e-4 with a ×0.5 multi-step decay (paper η = 1e-5), L1 at ``conv5_4`` (paper ℓ2 at
``relu5_4``); layout lr 1e-4 for 6 rounds, then the noise encoder re-initialised and lr
1e-5 (paper η = 1e-5 throughout). ``cimle.crn_gan`` is a
hybrid naming ``pix2pixhd.*`` parts as strings: composing it needs synth-plugin-pix2pixhd
installed (this plugin never imports it).
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEMO", "RECIPES", "SR_STAGES", "TRAIN"]


def _gta5_crn() -> dict[str, Any]:
    """The GTA-5 layout generator and noise encoder (§5.2.5), a fresh copy per recipe."""
    return {
        "generator": {
            "type": "cimle.crn_generator",
            "num_classes": 20,
            "num_levels": 7,
            # official CRN widths: 512 where the level's height >= 128, else 1024
            "channels": [1024, 1024, 1024, 1024, 1024, 512, 512],
            "noise_channels": 10,
        },
        "injector": {"type": "cimle.noise_encoder", "noise_dim": 10, "hidden": 100},
    }


#: name -> (spec, description)
RECIPES: dict[str, tuple[dict[str, Any], str]] = {
    "cimle.sr_x8": (
        {
            "generator": {
                "type": "cimle.rrdb_generator",
                "scale": 8,
                "nf": 64,
                "nb": 24,
                "gc": 128,
                "code_channels": 5,
            },
            "injector": {"type": "cimle.spatial_code"},
            "losses": {"imle": {"type": "cimle.distance", "preset": "sr"}},
            "objective": {
                "type": "cimle.imle",
                "num_codes": 100,
                "minibatch": 4,
                "inner_steps": 200000,
                "perturb": 0.1,
                "chunk_size": 50,
            },
            "sampler": {"type": "core.prior"},
        },
        "SRIM ×8 (§5.1.4, official configs): RRDB (nf 64, nb 24, gc 128; official checkpoints "
        "fit), 5 code channels at 32×32, m = 100, |S̃| = 4, L = 200,000 inner steps per round "
        "(paper and official; a Trainer step is one round, checkpoints come between rounds), "
        "pixel L1×1e-2 on [0,1] + VGG19 conv5_4 L1 (official; paper: ℓ2 at relu5_4). Train "
        "with batch_size = |S| = 640, Adam lr 1.5e-4, β (0.9, 0.999) and ×0.5 decay (official; "
        "paper η = 1e-5): official milestones 50k/100k/200k/300k updates fall inside rounds 0 "
        "and 1, so lr_milestones [1, 1, 1, 2] halve at round ends (lr/8 in round 1, lr/16 from "
        "round 2, as the official from update 300k). This is stage 2 of the official schedule "
        "(synth_cimle.SR_STAGES: pre-train with z = 0, this, a bilinear fine-tune).",
    ),
    "cimle.sr_x4_small": (
        {
            "generator": {
                "type": "cimle.rrdb_generator",
                "scale": 4,
                "nf": 16,
                "nb": 1,
                "gc": 8,
                "code_channels": 2,
            },
            "injector": {"type": "cimle.spatial_code"},
            "losses": {
                "imle": {
                    "type": "cimle.distance",
                    "preset": "sr",
                    "layers": ["relu2_2"],
                    "layer_weights": [0.1],
                    "pixel_weight": 1.0,
                }
            },
            "objective": {
                "type": "cimle.imle",
                "num_codes": 10,
                "minibatch": 8,
                "inner_steps": 8,
                "perturb": 0.1,
            },
            "sampler": {"type": "core.prior"},
        },
        "CPU-sized ×4 SR (16→64 px): a small RRDB, 2 code channels, m = 10; batch_size 32, "
        "lr 5e-4.",
    ),
    "cimle.gta5_layout": (
        {
            **_gta5_crn(),
            "losses": {"imle": {"type": "cimle.distance", "preset": "layout"}},
            "objective": {
                "type": "cimle.imle",
                "num_codes": 10,
                "minibatch": 1,
                "inner_steps": 10000,
                "perturb": 0.0,
                "chunk_size": 10,
                "draw_block": 4,
                "reinit_injector_at": 6,
            },
            "sampler": {"type": "core.prior"},
        },
        "GTA-5 layouts at 256×512 (§5.2.5): CRN from 4×8 (7 levels, widths 1024…512 as the "
        "official code; soft area-resized labels, bilinear noise, aligned-corner upsampling) + "
        "noise encoder (100 hidden, 10 channels), layout distance (official VGG19 relu "
        "features, average pooling, 0–255 input); |S| = 400 (batch_size), m = 10, L = 10000, "
        "|S̃| = 1. Official schedule (default): Adam lr 1e-4 for rounds 0–5, then at round 6 "
        "the noise encoder re-initialised and lr 1e-5 (lr_milestones [6], lr_gamma 0.1, "
        "objective reinit_injector_at 6); the paper's constant η = 1e-5: train.optimizer.lr "
        "1e-5, lr_milestones null, reinit_injector_at null. Rebalancing: wrap the data set in "
        "synth_cimle.RebalancedDataset and set the distance's `rarity` to the file of "
        "synth_cimle.rarity_scores.",
    ),
    # ---- hybrids: parts of several papers, composed only from registered names
    "cimle.crn_gan": (
        {
            **_gta5_crn(),
            "discriminator": {
                "type": "pix2pixhd.multiscale_discriminator",
                "num_d": 2,
                "ndf": 64,
                "n_layers": 3,
            },
            "losses": {
                "gan": {"type": "core.lsgan", "weight": 1.0},
                "feat": {"type": "pix2pixhd.feature_matching", "weight": 10.0},
                "vgg": {"type": "core.perceptual", "weight": 10.0},
            },
            "objective": {"type": "core.gan"},
            "sampler": {"type": "core.prior"},
        },
        "Hybrid (needs synth-plugin-pix2pixhd): cIMLE's GTA-5 layout generator (CRN from 4×8, "
        "7 levels, noise encoder with 100 hidden and 10 channels) trained as a GAN with "
        "pix2pixHD's objective: its 2-scale discriminator, LSGAN + feature matching ×10 + "
        "VGG19 ×10; the noise encoder trains with the generator on prior draws. Adam lr 2e-4, "
        "β = (0.5, 0.999) as pix2pixHD. The GAN counterpart of cimle.gta5_layout: a GAN may "
        "ignore the noise (mode collapse), which IMLE rules out.",
    ),
}


def _adam(lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> dict[str, Any]:
    """Adam; by default with its own default β, which the official cIMLE code keeps (the
    paper names none)."""
    return {"optimizer": {"type": "adam", "lr": lr, "betas": betas}}


#: the official SR decay (×0.5 at 50k/100k/200k/300k updates) at round ends when a round is
#: 200,000 updates (see the cimle.sr_x8 description)
_SR_ROUND_DECAY: dict[str, Any] = {"lr_milestones": [1, 1, 1, 2], "lr_gamma": 0.5}

#: The papers' trainer settings: ``batch_size`` is the outer batch |S| of Algorithm 1.
TRAIN: dict[str, dict[str, Any]] = {
    # official lr, β and decay (paper η = 1e-5)
    "cimle.sr_x8": {"batch_size": 640, **_adam(1.5e-4), **_SR_ROUND_DECAY},
    "cimle.sr_x4_small": {"batch_size": 32, **_adam(5e-4)},
    # official: lr 1e-4, ×0.1 at round 6 (with the noise encoder re-initialised)
    "cimle.gta5_layout": {
        "batch_size": 400,
        **_adam(1e-4),
        "lr_milestones": [6],
        "lr_gamma": 0.1,
    },
    # pix2pixHD's optimiser and batch for the GAN counterpart
    "cimle.crn_gan": {"batch_size": 1, **_adam(2e-4, (0.5, 0.999))},
}

#: The official SR training in three stages (§5.1.1; niopeng/SRIM-pytorch ``train_srim.sh``):
#: name -> (changes to the ``cimle.sr_x8`` spec, trainer settings, what it is). Each stage
#: starts from the weights of the one before (load its exported generator's state dict; the
#: shapes are the same in every stage). The official networks end in ``tanh`` in stages 1
#: and 3 and ``sigmoid`` in stage 2; ours is ``tanh`` throughout (synth's output range).
SR_STAGES: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "pretrain": (
        {
            "injector": {"std": 0.0},
            "objective": {"num_codes": 1, "minibatch": 8, "inner_steps": 1, "perturb": 0.0},
        },
        {
            "batch_size": 8,
            "steps": 150000,
            **_adam(2e-4),
            "lr_milestones": [50000, 100000, 200000, 300000],
            "lr_gamma": 0.5,
        },
        "z = 0 (a deterministic regression with the SR distance), nearest upsampling, "
        "batch 8, lr 2e-4 halved at 50k/100k updates, 150k updates "
        "(train_vanilla_cicada_x8.json); one Trainer step = one update",
    ),
    "imle": (
        {},
        dict(TRAIN["cimle.sr_x8"]),
        "cIMLE with codes, nearest upsampling, lr 1.5e-4 (train_srim_cicada_x8.json, from "
        "the 150k pre-training): the cimle.sr_x8 recipe",
    ),
    "finetune": (
        {"generator": {"upsample": "bilinear"}},
        {"batch_size": 640, **_adam(1e-4), **_SR_ROUND_DECAY},
        "bilinear upsampling, lr 1e-4 (train_srim_cicada_fine_tune_x8.json, from the "
        "stage-2 weights after 480k updates)",
    ),
}

#: CPU size for the CRN recipes (see synth.demo): widths from ngf 16 up to 128, five levels
#: (4 px to 64 px), the noise encoder's hidden maps 32 (100); the explicit per-level widths go,
#: so that ngf and max_channels decide them.
_CRN_DEMO: dict[str, Any] = {
    "caps": {"ngf": 16, "max_channels": 128, "num_levels": 5, "hidden": 32, "ndf": 16},
    "unset": ["generator.channels"],
}
_IMLE_CAPS = {"num_codes": 8, "inner_steps": 4}  # m and L

#: ``synth demo`` settings per recipe: the small SR model is the multimodal demo of this plugin
#: alone (low-resolution photos in, several sharp ones out).
DEMO: dict[str, dict[str, Any]] = {
    "cimle.sr_x8": {"caps": {"nf": 16, "gc": 8, "nb": 1, **_IMLE_CAPS}},
    "cimle.sr_x4_small": {"caps": _IMLE_CAPS, "preference": 5},
    "cimle.gta5_layout": {**_CRN_DEMO, "caps": {**_CRN_DEMO["caps"], **_IMLE_CAPS}},
    "cimle.crn_gan": _CRN_DEMO,
}
