"""Recipes (named model specs) of the cIMLE plugin.

Trainer settings that are not part of a model spec (the outer batch S is the Trainer's
``batch_size``; Adam lr) are each recipe's :data:`TRAIN` entry (and stated in its
description); :data:`DEMO` holds the CPU-sized ``synth demo`` settings. ``cimle.crn_gan`` is a
hybrid naming ``pix2pixhd.*`` parts as strings: composing it needs synth-plugin-pix2pixhd
installed (this plugin never imports it).
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEMO", "RECIPES", "TRAIN"]


def _gta5_crn() -> dict[str, Any]:
    """The GTA-5 layout generator and noise encoder (§5.2.5), a fresh copy per recipe."""
    return {
        "generator": {
            "type": "cimle.crn_generator",
            "num_classes": 20,
            "num_levels": 7,
            "channels": [1024, 1024, 1024, 1024, 1024, 512, 256],
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
                "nb": 23,
                "gc": 32,
                "code_channels": 5,
            },
            "injector": {"type": "cimle.spatial_code"},
            "losses": {"imle": {"type": "cimle.distance", "preset": "sr"}},
            "objective": {
                "type": "cimle.imle",
                "num_codes": 100,
                "minibatch": 4,
                "inner_steps": 1600,
                "perturb": 0.1,
                "chunk_size": 50,
            },
            "sampler": {"type": "core.prior"},
        },
        "SRIM ×8 (§5.1.4): RRDB (nf 64, nb 23, gc 32), 5 code channels at 32×32, m = 100, "
        "|S̃| = 4, pixel L1×1e-2 + VGG19 conv5_4 L1. Train with batch_size = |S| = 640 and "
        "lr 1.5e-4 (official; paper η = 1e-5); 1600 inner steps = 10 passes over S per round.",
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
            },
            "sampler": {"type": "core.prior"},
        },
        "GTA-5 layouts at 256×512 (§5.2.5): CRN from 4×8 (7 levels) + noise encoder (100 "
        "hidden, 10 channels), layout distance; |S| = 400 (batch_size), m = 10, L = 10000, "
        "|S̃| = 1, η = 1e-5. Rebalancing: wrap the data set in synth_cimle.RebalancedDataset "
        "and set the distance's `rarity` to the file of synth_cimle.rarity_scores.",
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


#: The papers' trainer settings: ``batch_size`` is the outer batch |S| of Algorithm 1.
TRAIN: dict[str, dict[str, Any]] = {
    "cimle.sr_x8": {"batch_size": 640, **_adam(1.5e-4)},  # official lr (paper η = 1e-5)
    "cimle.sr_x4_small": {"batch_size": 32, **_adam(5e-4)},
    "cimle.gta5_layout": {"batch_size": 400, **_adam(1e-5)},
    # pix2pixHD's optimiser and batch for the GAN counterpart
    "cimle.crn_gan": {"batch_size": 1, **_adam(2e-4, (0.5, 0.999))},
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
