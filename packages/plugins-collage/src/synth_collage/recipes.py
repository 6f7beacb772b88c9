"""Recipes of the collage plugin: the paper's SNGAN models (§5, Table 1, appendix A).

``collage.dogcat_256``
    The released dog+cat model: ``collage.resnet_generator`` at 256 px, ch 48, 143 classes
    (ImageNet's dog and cat classes), dim_z 128, sCBN in every block; the projection
    discriminator; hinge loss.
``collage.dogcat_128``
    The 128 px variant (the official ``resnet_small_scbn`` widths ch·{8,8,4,4,2,1}, ch 64) with
    the official ``snresnet_small`` discriminator (ch·{1,2,4,4,8,8}, ``c1`` at the input width).
``collage.tiny``
    A CPU-sized model (32 px, ch 8, 4 classes) for the demo, the examples and the tests. In
    ``synth demo`` it reads the demo's label maps as per-pixel class maps (see :data:`DEMO`).

Training (the official ``configs/*.yml``): hinge loss, ``n_dis`` 5 discriminator updates per
generator update, Adam 2e-4, β (0, 0.9), batch 16 (the dog+cat configs), 450k generator
iterations with the learning rate decayed linearly to 0 from 400k. synth's trainer counts
discriminator steps (``d_steps`` 5: the generator updates every 5th step), so 450k generator
iterations are 2.25M trainer steps and the decay starts at 2M.

Data: class-conditional image folders (``Condition.class_id``); the sCBN blocks read
``class_weights`` instead when a batch has them (label collages at sampling time).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch

import synth

if TYPE_CHECKING:
    from synth.model import SynthesisModel

__all__ = ["DEMO", "N_DIS", "RECIPES", "TINY_SPEC", "TRAIN", "tiny_collage_model"]

#: Discriminator updates per generator update (official ``n_dis``).
N_DIS = 5
#: Generator iterations of the official configs, and where the linear decay starts.
G_ITERATIONS, G_DECAY_START = 450_000, 400_000


def _spec(resolution: int, ch: int, num_classes: int, z_dim: int) -> dict[str, Any]:
    return {
        "condition": ["class_id"],
        "generator": {
            "type": "collage.resnet_generator",
            "num_classes": num_classes,
            "resolution": resolution,
            "ch": ch,
            "z_dim": z_dim,
            "norm": {"type": "collage.scbn"},
        },
        "injector": {"type": "core.gaussian"},
        "discriminator": {
            "type": "collage.projection_discriminator",
            "resolution": resolution,
            "ch": ch,
        },
        "losses": {"gan": {"type": "core.hinge", "weight": 1.0}},
        "objective": {"type": "core.gan"},
        "sampler": {"type": "core.prior"},
    }


def _with_small_discriminator(spec: dict[str, Any]) -> dict[str, Any]:
    """The official 128 px dog+cat discriminator (``dis_models/snresnet_small.py``): widths
    ch·{1,2,4,4,8,8}, and ``c1`` keeps each block's input width (``resblocks.Block``'s
    default ``hidden_channels``)."""
    spec["discriminator"].update(channel_multipliers=[1, 2, 4, 4, 8, 8], hidden="in")
    return spec


#: The CPU model: 32 px, ch 8, 4 classes, dim_z 16.
TINY_SPEC: dict[str, Any] = _spec(32, 8, 4, 16)

RECIPES: dict[str, tuple[dict[str, Any], str]] = {
    "collage.dogcat_256": (
        _spec(256, 48, 143, 128),
        "Suzuki et al.'s released dog+cat SNGAN: ResNet generator at 256 px (ch 48, widths "
        "ch·{16,16,8,8,4,2,1}), 143 classes, dim_z 128, sCBN in every block (a class id is "
        "CBN, a class map is label collaging); SN-ResNet projection discriminator; hinge loss. "
        "Train with n_dis 5, Adam 2e-4 β (0, 0.9), batch 16. Official weights: "
        "synth_collage.from_official(path).",
    ),
    "collage.dogcat_128": (
        _with_small_discriminator(_spec(128, 64, 143, 128)),
        "The 128 px SNGAN of the paper's code (resnet_small_scbn: widths ch·{8,8,4,4,2,1}, "
        "ch 64), 143 dog+cat classes, dim_z 128, sCBN; projection discriminator, hinge, n_dis "
        "5, Adam 2e-4 β (0, 0.9).",
    ),
    "collage.tiny": (
        copy.deepcopy(TINY_SPEC),
        "A CPU-sized collage SNGAN (32 px, ch 8, 4 classes, dim_z 16) for demos and tests.",
    ),
}

_PAPER_TRAIN: dict[str, Any] = {
    "batch_size": 16,
    "steps": G_ITERATIONS * N_DIS,
    "decay_start": G_DECAY_START * N_DIS,
    "d_steps": N_DIS,
    "optimizer": {"type": "adam", "lr": 2e-4, "betas": (0.0, 0.9)},
}

#: Trainer settings per recipe (``synth.train.TrainerConfig`` fields).
TRAIN: dict[str, dict[str, Any]] = {
    "collage.dogcat_256": copy.deepcopy(_PAPER_TRAIN),
    "collage.dogcat_128": copy.deepcopy(_PAPER_TRAIN),
    "collage.tiny": {
        **copy.deepcopy(_PAPER_TRAIN),
        "batch_size": 8,
        "steps": 200,
        "decay_start": None,
    },
}

#: ``synth demo`` settings. The demo photos come with label maps (colour classes, one per
#: pixel), not image classes, so the demo runs ``collage.tiny`` as a spatial class-conditional
#: SNGAN: every sCBN layer reads the label map as its class map (eq. 2 with the photo's
#: layout as W, the label collage of §3.1 painted by the data) and the projection
#: discriminator projects on the classes' area fractions. The paper-size recipes have none
#: (class-labelled image sets, days of training).
DEMO: dict[str, dict[str, Any]] = {name: {} for name in RECIPES}
DEMO["collage.tiny"] = {
    "size_fields": {"resolution": 32},  # generator and discriminator at the demo's side
    "set": {
        "condition": ["label_map"],
        "generator.norm.condition": "label_map",
        "discriminator.condition": "label_map",
    },
    # the official n_dis 5 leaves the generator a fifth of a minutes-long run
    "train": {"d_steps": 2, "batch_size": 8},
}


def tiny_collage_model(seed: int = 0) -> SynthesisModel:
    """``collage.tiny``'s generator and injector, composed under ``seed``, in eval mode."""
    spec = copy.deepcopy(TINY_SPEC)
    for key in ("discriminator", "losses", "objective"):
        spec.pop(key)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = synth.compose(spec)
    return model.eval()
