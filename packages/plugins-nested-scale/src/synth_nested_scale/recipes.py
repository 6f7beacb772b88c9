"""Recipes of the nested-scale plugin: the paper's CelebA tasks (§4.2–4.3, supplement A–B).

``nested_scale.celeba_outpaint``
    128×128 faces from the eyes and nose (``data: {type: celeba, task: outpainting}``): the
    pyramid decoder reads the occluded image and its mask, 6 levels 4→128, 512 channels.
``nested_scale.celeba_sr16``
    16→128 face super-resolution (``data: {type: celeba, task: super_resolution}``, bilinear
    LR): the decoder's super-resolution variant (levels 32, 64, 128 with encoder skips) and the
    disentanglement loss's LR term (the 32×32 level, pooled, must equal the input).

Both: one per-scale code per level from ``core.gaussian`` with ``shared_styles`` (the single
``Z0`` of §3.1 at every scale in training); losses weighted 1/1/1 (supplement A): eq. 4's log
loss (``core.nonsaturating``: the generator maximises ``log D``, the usual form of
``log(1 − D)``) summed over one discriminator per level, disentanglement (eq. 1) and
progressive NDiv (eq. 5, α = 0.8) over ``N = 4`` samples per input (``core.gan`` with
``samples_per_input: 4``); Adam 2e-4, β (0.5, 0.999), batch 24.

Choices where the paper is silent (for the plugin README):

- **Discriminator of each level**: the same 70×70 PatchGAN (pix2pix's: ``n_layers`` 3,
  ``ndf`` 64, instance norm) at every level, one copy per level. One receptive field for
  every level (as SinGAN, which the paper cites for its multi-scale adversarial loss, keeps
  one discriminator shape per scale) makes each level judged at its own scale: the 4–64 px
  levels, which carry the face's layout, are seen whole; the 128 px level, which adds the
  finest detail, by 70-px patches. Its padding (2 per conv) keeps a 4×4 logit map at the
  4×4 level. Each is conditional as eq. 4's ``D_i(·|c)``: it reads the occluded (or
  low-resolution) image and, for outpainting, the mask, resized to its level
  (``core.patch_discriminator``'s ``use_image`` / ``use_mask``), next to the scored image.
- **Steps**: the paper gives none; 200,000 iterations (≈ 29.5 epochs of CelebA's 162,770
  training faces at batch 24) at a constant learning rate (it names no schedule).
- **Super-resolution diversification**: "disentanglement and diversification at every other
  higher resolution scale" is read as "at each of the other, higher scales": NDiv on all
  three levels (32, 64, 128), as the disentanglement of supplement B covers all of them and
  Fig. 12 edits every one of them.
- **Outpainting input**: the encoder reads ``cat(image·mask, mask)`` (``use_mask``), so it
  knows which pixels are given; the known box is :data:`synth.data.CELEBA_FACE_BOX`.

Demo (``synth demo --recipe ...``, CPU): 64 px, 32 channels, ``ndf`` 16, five levels for
outpainting (4→64), the super-resolution variant at 8→64; ``samples_per_input`` 3, not 2:
with two samples each normalised distance row holds a single entry, which normalises to 1 on
both sides, so NDiv would be identically 0.

Cat↔dog translation (§4.4, supplement C) is not a recipe: it does not compose from synth's
kinds today. What is missing:

1. **Unpaired two-domain data**: items with a photo of each domain (cat, dog) that are not
   pairs, and the domain of each; ``synth.data`` has paired and single-folder sets only, and a
   batch has one ``real`` and one Condition.
2. **Two translators in one model**: MUNIT trains an auto-encoder per domain (content encoder
   ``E^c``, style encoder ``E^s``, decoder ``G``) and a discriminator per domain; a
   ``SynthesisModel`` holds one generator, one injector and one discriminator.
3. **A content encoder as a part of its own**: the translation ``x_ab = G_b(E^c_a(x_a),
   s_b)`` and the latent reconstruction ``E^c_b(x_ab) ≈ E^c_a(x_a)`` call the content encoder
   on a real image and on a generated one; synth's encoders live inside a generator (the
   decoder's Table 4 encoder) and cannot be called apart from it. The style encoder fits an
   injector's ``posterior``, but nothing calls it on a fake.
4. **An objective with within- and cross-domain reconstruction**: per step, for both
   directions, the within-domain reconstruction ``G_a(E^c_a(x_a), E^s_a(x_a)) ≈ x_a`` (λ_x =
   10), the translation with a prior style, its re-encoding for the style (λ_s = 1) and
   content (λ_c = 1) reconstruction terms, and the GAN terms in each domain; ``core.gan``
   draws prior codes and scores one fake against one real. ``LossInputs`` has no fields for
   reconstructions or recovered codes, and losses cannot call parts.
5. **MUNIT's decoder** (AdaIN residual blocks over the spatial content code, an MLP for the
   AdaIN parameters, an extra RGB output at 128) as a generator: the pyramid decoder reads a
   vector code; ``nested_scale.pyramid`` could add the per-level RGB heads and codes once a
   MUNIT decoder is a registered generator.

With 1–5 (an unpaired data set type, a content-encoder kind, a two-domain objective with
its loss fields, and MUNIT's networks), the recipe would be that objective + the pyramid
adapter + ``nested_scale.disentangle`` and ``nested_scale.ndiv``, Adam 1e-4 β (0.5, 0.999),
batch 2 (supplement C).
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["DEMO", "FLAGSHIP", "RECIPES", "TRAIN"]

#: The paper's width of the decoder at every scale (supplement A).
CHANNELS = 512

#: N samples per input of eq. 5 (supplement A: "we sample N = 4 random variables").
SAMPLES_PER_INPUT = 4


def _level_discriminator(condition: list[str]) -> dict[str, Any]:
    """One level's discriminator: pix2pix's 70×70 PatchGAN (see the module docstring),
    conditional on the input as eq. 4's ``D_i(·|c)``: it also reads the occluded (or
    low-resolution) image and the mask, resized to its level."""
    return {
        "type": "core.patch_discriminator",
        "ndf": 64,
        "n_layers": 3,
        "num_scales": 1,
        "use_image": "image" in condition,
        "use_mask": "mask" in condition,
    }


def _spec(generator: dict[str, Any], *, lr_term: bool, condition: list[str]) -> dict[str, Any]:
    """The decoder with the paper's injector, discriminators, losses and objective."""
    return {
        "generator": generator,
        "injector": {"type": "core.gaussian", "shared_styles": True},
        "discriminator": {
            "type": "nested_scale.pyramid_discriminator",
            "discriminator": _level_discriminator(condition),
        },
        "losses": {
            # eq. 4 sums the levels' terms (reduce_scales: sum, not SPADE's mean)
            "gan": {"type": "core.nonsaturating", "weight": 1.0, "reduce_scales": "sum"},
            "disentangle": {
                "type": "nested_scale.disentangle",
                "weight": 1.0,
                **({"include_input": True} if lr_term else {}),
            },
            "ndiv": {"type": "nested_scale.ndiv", "weight": 1.0, "alpha": 0.8},
        },
        "objective": {"type": "core.gan", "samples_per_input": SAMPLES_PER_INPUT},
        "sampler": {"type": "core.prior"},
        "condition": condition,
    }


#: name -> (model spec, description)
RECIPES: dict[str, tuple[dict[str, Any], str]] = {
    "nested_scale.celeba_outpaint": (
        _spec(
            {
                "type": "nested_scale.pyramid_decoder",
                "input": "image",
                "use_mask": True,
                "resolution": 128,
                "num_scales": 6,
                "channels": CHANNELS,
            },
            lr_term=False,
            condition=["image", "mask"],
        ),
        "Nested scale-editing CelebA outpainting (§4.2): 128×128 faces from the eyes and nose "
        "(data: {type: celeba, task: outpainting}); pyramid decoder on the occluded image and "
        "its mask, 6 scales 4→128, 512 channels, one shared Z0 per scale; a 70×70 PatchGAN per "
        "scale conditioned on the occluded image and mask, with the log loss (eq. 4), disentanglement (eq. 1) and progressive NDiv (eq. 5, "
        "N = 4, α = 0.8), weights 1/1/1; Adam 2e-4 β (0.5, 0.999), batch 24.",
    ),
    "nested_scale.celeba_sr16": (
        _spec(
            {
                "type": "nested_scale.pyramid_decoder",
                "input": "image",
                "variant": "super_resolution",
                "scale": 8,
                "resolution": 128,
                "channels": CHANNELS,
            },
            lr_term=True,
            condition=["image"],
        ),
        "Nested scale-editing CelebA 16→128 super-resolution (§4.3, supplement B): bilinear "
        "16×16 input (data: {type: celeba, task: super_resolution}); the decoder's "
        "super-resolution variant (decodes 32, 64, 128 from the input resolution, encoder "
        "skips), the 32×32 output pooled must match the input (disentanglement's LR term), "
        "NDiv at every decoded scale; losses 1/1/1, Adam 2e-4 β (0.5, 0.999), batch 24.",
    ),
}

# --------------------------------------------------------------------------- the flagship

#: The hybrid of DESIGN.md: a SPADE generator trained with the nested-scale losses.
FLAGSHIP = "nested_scale.spade"


def _flagship() -> dict[str, Any]:
    """SPADE (clvae.spade_generator, label-map input, ADE20K's 151 classes at 256²) in the
    pyramid adapter, per-scale codes, one SPADE PatchGAN per level, SPADE's hinge, feature
    matching and VGG losses (its defaults, λ 10 each), pixel L1 on each input's closest sample
    (best of many), disentanglement and progressive NDiv over N = 4 samples per input."""
    return {
        "generator": {
            "type": "nested_scale.pyramid",
            "style_dim": 64,
            "generator": {
                "type": "clvae.spade_generator",
                "num_classes": 151,
                "ngf": 64,
                "crop_size": 256,
            },
        },
        "injector": {"type": "core.gaussian", "shared_styles": True},
        "discriminator": {
            "type": "nested_scale.pyramid_discriminator",
            "discriminator": {"type": "clvae.multiscale_discriminator", "num_d": 1},
        },
        "losses": {
            # SPADE's GANLoss averages over its discriminators (eq. 4 sums: a weight of 1/6)
            "gan": {"type": "core.hinge", "weight": 1.0, "reduce_scales": "mean"},
            "fm": {"type": "core.feature_matching", "weight": 10.0, "weighting": "spade"},
            "vgg": {"type": "core.perceptual", "weight": 10.0},
            # best of many: pixel L1 on each input's closest sample only (the fidelity GauGAN
            # gets from reconstructing its encoder's code, without pulling all N together);
            # λ 60 beat 30, 120 and N = 4 on the demo's expected best of 6 (bench/results/
            # 2026-11-26-cpu-flagship-seeds-3.md), and its samples were more diverse than at 30
            "l1": {"type": "core.l1", "weight": 60.0, "samples": "closest"},
            "disentangle": {"type": "nested_scale.disentangle", "weight": 1.0},
            # beside SPADE's λ 10 terms, weight 3 (not the paper's 1) keeps samples apart
            "ndiv": {"type": "nested_scale.ndiv", "weight": 3.0, "alpha": 0.8},
        },
        "objective": {"type": "core.gan", "samples_per_input": SAMPLES_PER_INPUT},
        "sampler": {"type": "core.prior"},
    }


RECIPES[FLAGSHIP] = (
    _flagship(),
    "Hybrid (needs synth-plugin-clvae): the flagship, a SPADE generator trained with the "
    "nested-scale losses: clvae.spade_generator (label maps, ADE20K's 151 classes, 256×256, "
    "ngf 64) in nested_scale.pyramid (an RGB head and a per-scale code at each of its 6 "
    "scales, one shared Z0 in training), one SPADE PatchGAN per scale (spectral instance "
    "norm, conditional on the label map), hinge averaged over the scales as SPADE's GAN loss "
    "does, SPADE's feature matching and VGG losses (λ 10 each), pixel L1 on the closest of "
    "each input's samples (best of many, λ 60), disentanglement (eq. 1, λ 1) and progressive "
    "NDiv (eq. 5, λ 3, N = 4 samples per input, α = 0.8). Train with TTUR: "
    "Adam β=(0, 0.9), G lr 1e-4, D lr 4e-4, batch 4.",
)

#: The paper's trainer settings (supplement A, the same for B): one Adam for every network,
#: lr 2e-4, β (0.5, 0.999), batch 24. Steps: the paper gives none (module docstring).
TRAIN: dict[str, dict[str, Any]] = {
    name: {
        "batch_size": 24,
        "steps": 200_000,
        "optimizer": {"type": "adam", "lr": 2e-4, "betas": (0.5, 0.999)},
    }
    for name in RECIPES
    if name != FLAGSHIP
}

#: CPU size (see synth.demo): the demo side (64 px by default), 32 channels (the encoder
#: widths follow), ndf 16, three samples per input (two would make NDiv vanish: module
#: docstring), and Table 4's encoder without its 5th and 6th layers, so that no layer's map
#: shrinks to 1×1 at 32–64 px.
_DEMO: dict[str, Any] = {
    "caps": {"channels": 16, "ndf": 16},
    "size_fields": {"resolution": 32},
    "set": {
        "objective.samples_per_input": 3,
        "generator.encoder_channels": [64, 128, 256, 512, 128],
    },
}

#: ``synth demo`` settings per recipe; outpainting keeps five levels (4→64 at 64 px).
DEMO: dict[str, dict[str, Any]] = {
    "nested_scale.celeba_outpaint": {
        **copy.deepcopy(_DEMO),
        "caps": {**_DEMO["caps"], "num_scales": 5},
    },
    "nested_scale.celeba_sr16": copy.deepcopy(_DEMO),
}

# --------------------------------------------------------------------------- flagship settings


def _ttur(g: float, d: float) -> dict[str, Any]:
    """SPADE's two time-scale update rule: Adam β (0, 0.9), ``g`` for G, ``d`` for D."""
    adam = {"type": "adam", "betas": (0.0, 0.9)}
    return {"optimizer": {**adam, "lr": g}, "optimizers": {"discriminator": {**adam, "lr": d}}}


#: ADE20K's 20,210 training images at batch 4, 100 epochs then 100 of linear decay (SPADE's
#: ADE20K schedule, as the GauGAN composition it is compared with).
_ADE20K_STEPS_PER_EPOCH = 20_210 // 4

TRAIN[FLAGSHIP] = {
    **_ttur(1e-4, 4e-4),
    "batch_size": 4,
    "steps": 200 * _ADE20K_STEPS_PER_EPOCH,
    "decay_start": 100 * _ADE20K_STEPS_PER_EPOCH,
}

DEMO[FLAGSHIP] = {
    "preference": 20,
    "caps": {"ngf": 16, "ndf": 16, "hidden": 32},
    "size_fields": {"crop_size": 1},
    "set": {"objective.samples_per_input": 3},
    "compare": ["clvae.gaugan_composed", "pix2pixhd.imle"],
}
