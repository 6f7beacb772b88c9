"""Registers the `clvae.*` parts and recipes with synth."""

from __future__ import annotations

from typing import Any

import synth

SYNTH_API = ">=1,<2"

_PARTS: dict[str, tuple[str, str]] = {
    "clvae.spade": ("conditioning", "synth_clvae.norms:SPADE"),
    "clvae.cse": ("conditioning", "synth_clvae.norms:CSE"),
    "clvae.spade_generator": ("generator", "synth_clvae.generators:SPADEGenerator"),
    "clvae.clvae_generator": ("generator", "synth_clvae.generators:CLVAEGenerator"),
    "clvae.multiscale_discriminator": (
        "discriminator",
        "synth_clvae.discriminators:MultiscaleDiscriminator",
    ),
    "clvae.conv_encoder": ("injector", "synth_clvae.encoders:ConvEncoder"),
    "clvae.class_layer_encoder": ("injector", "synth_clvae.encoders:ClassLayerEncoder"),
    "clvae.kl": ("loss", "synth_clvae.losses:KL"),
    "clvae.prior": ("sampler", "synth_clvae.samplers:Prior"),
    "clvae.style_guided": ("sampler", "synth_clvae.samplers:StyleGuided"),
    "clvae.object_edit": ("sampler", "synth_clvae.samplers:ObjectEdit"),
    "clvae.material_edit": ("sampler", "synth_clvae.samplers:MaterialEdit"),
}

#: GauGAN's losses (hinge averaged over the D scales, FM λ/num_D with λ = 10, VGG19 λ = 10).
_GAUGAN_LOSSES: dict[str, Any] = {
    "gan": {"type": "core.hinge", "reduce_scales": "mean"},
    "fm": {"type": "core.feature_matching", "weight": 10.0, "weighting": "spade"},
    "vgg": {"type": "core.perceptual", "weight": 10.0},
}
_TTUR = "Train with TTUR: Adam β=(0, 0.9), G/E lr {g}, D lr {d}."
#: The official SPADE/CLVAE code's choices that the papers do not state: every network
#: initialised by ``init_weights("xavier", 0.02)`` (synth.nn.init), and the discriminator step
#: scoring a fake regenerated after the generator's update from a new latent draw
#: (``pix2pix_model.py``'s ``compute_discriminator_loss``).
_INIT = {"init": "xavier"}
_OBJECTIVE = {"type": "core.gan", "d_fake": "regenerate"}
_OFFICIAL = " Init xavier-normal gain 0.02; D scores a fake regenerated after the G step."
#: CLVAE §4.2 states G/E 4e-4, D 1e-4 (and also "the same training parameters as in the
#: GauGAN paper", whose TTUR is G 1e-4, D 4e-4); the official code runs G/E 1e-4, D 4e-4 (TTUR
#: from lr 2e-4; its README's training commands keep it). The recipes keep §4.2's explicit
#: numbers, the paper being this project's spec (PAPERS.md); OFFICIAL_LRS gives the code's.
_CLVAE_LRS = (
    " These are §4.2's rates; the official code runs GauGAN's TTUR (G/E 1e-4, D 4e-4): "
    "train with synth_clvae.plugin.OFFICIAL_LRS for those."
)


def _gaugan_vae_ade20k(**init: Any) -> dict[str, Any]:
    """GauGAN-VAE's generator and encoder at the ADE20K settings (256², 151 classes, z 256)."""
    return {
        "generator": {
            "type": "clvae.spade_generator",
            "num_classes": 151,
            "z_dim": 256,
            "crop_size": 256,
            **init,
        },
        "injector": {"type": "clvae.conv_encoder", **init},
    }


def _clvae(num_classes: int, encoder: dict[str, Any] | None = None, **gen: Any) -> dict[str, Any]:
    return {
        "generator": {
            "type": "clvae.clvae_generator",
            "num_classes": num_classes,
            **gen,
            **_INIT,
        },
        "injector": {"type": "clvae.class_layer_encoder", **(encoder or {}), **_INIT},
        "discriminator": {"type": "clvae.multiscale_discriminator", **_INIT},
        "losses": {**_GAUGAN_LOSSES, "kl": {"type": "clvae.kl", "weight": 0.05}},
        "objective": dict(_OBJECTIVE),
        "sampler": {"type": "clvae.prior"},
    }


RECIPES: dict[str, tuple[dict[str, Any], str]] = {
    "clvae.spade_cityscapes": (
        {
            "generator": {
                "type": "clvae.spade_generator",
                "num_classes": 35,
                "crop_size": 512,
                "aspect_ratio": 2.0,
                "upsampling": "more",
                "use_instances": True,
                **_INIT,
            },
            "discriminator": {
                "type": "clvae.multiscale_discriminator",
                "use_instances": True,
                **_INIT,
            },
            "condition": ["label_map", "instance_map"],
            "losses": dict(_GAUGAN_LOSSES),
            "objective": dict(_OBJECTIVE),
        },
        "GauGAN on Cityscapes (512x256, label_nc 35 + the instance-edge channel, 'more' "
        "upsampling as the official Cityscapes setting; the data must give label_map and "
        "instance_map). " + _TTUR.format(g="1e-4", d="4e-4") + _OFFICIAL,
    ),
    "clvae.gaugan_vae_ade20k": (
        {
            **_gaugan_vae_ade20k(**_INIT),
            "discriminator": {"type": "clvae.multiscale_discriminator", **_INIT},
            "losses": {**_GAUGAN_LOSSES, "kl": {"type": "core.kl", "weight": 0.05}},
            "objective": dict(_OBJECTIVE),
        },
        "GauGAN-VAE on ADE20K (256x256, 151 classes, z 256, KL 0.05). "
        + _TTUR.format(g="1e-4", d="4e-4")
        + _OFFICIAL,
    ),
    "clvae.ade20k": (
        _clvae(151, crop_size=256),
        "CLVAE on ADE20K (§4.2: 256x256, 151 classes, N = C = 151, N1 = 256); batch 4, "
        "100 + 100 decay epochs. " + _TTUR.format(g="4e-4", d="1e-4") + _CLVAE_LRS + _OFFICIAL,
    ),
    "clvae.deepfashion": (
        # the official encoder's width is ngf (encoder.py: ndf = opt.ngf), so its checkpoint fits
        _clvae(16, encoder={"ndf": 160}, ngf=160, upsampling="more", crop_size=256),
        "CLVAE on DeepFashion (§4.2: 256x256, 16 classes, ngf 160 and encoder ndf 160 as the "
        "official code, 'more'); batch 4, 60 + 40 decay epochs. "
        + _TTUR.format(g="4e-4", d="1e-4")
        + _CLVAE_LRS
        + _OFFICIAL,
    ),
    "clvae.gta5": (
        _clvae(20, upsampling="more", crop_size=512, aspect_ratio=2.0),
        "CLVAE on GTA-5 (§4.2: 512x256, 20 classes, 'more'); 20 epochs, batch 4; the paper "
        "also uses cIMLE's rarity rebalancing (not part of this recipe). "
        + _TTUR.format(g="4e-4", d="1e-4")
        + _CLVAE_LRS
        + _OFFICIAL,
    ),
    # ---- hybrids: parts of several papers, composed only from registered names
    "clvae.gaugan_composed": (
        {
            **_gaugan_vae_ade20k(),
            "discriminator": {"type": "pix2pixhd.multiscale_discriminator", "num_d": 2},
            "losses": {
                "gan": {"type": "core.hinge", "reduce_scales": "mean"},
                "fm": {"type": "pix2pixhd.feature_matching", "weight": 10.0},
                "vgg": {"type": "core.perceptual", "weight": 10.0},
                "kl": {"type": "core.kl", "weight": 0.05},
            },
            "objective": {"type": "core.gan"},
        },
        "Hybrid (needs synth-plugin-pix2pixhd): GauGAN as a composition: the SPADE generator "
        "with a global code from the GauGAN-VAE encoder (multimodal), pix2pixHD's multi-scale "
        "discriminator and feature matching, hinge + VGG losses, KL 0.05. "
        + _TTUR.format(g="1e-4", d="4e-4"),
    ),
    "clvae.imle": (
        {
            "generator": {"type": "clvae.clvae_generator", "num_classes": 151, "crop_size": 256},
            # Its prior N(0, I) over z_1 and every class code of every layer is where cIMLE
            # draws the m candidate codes per input; the encoder's weights are unused by IMLE
            # (no posterior in Algorithm 1).
            "injector": {"type": "clvae.class_layer_encoder"},
            "losses": {"imle": {"type": "cimle.distance", "preset": "layout"}},
            "objective": {
                "type": "cimle.imle",
                "num_codes": 10,
                "minibatch": 4,
                "inner_steps": 10000,
                "perturb": 0.0,
                "chunk_size": 10,
                "draw_block": 4,
            },
            "sampler": {"type": "clvae.prior"},
        },
        "Hybrid (needs synth-plugin-cimle): the CLVAE generator on ADE20K (256x256, 151 "
        "classes, N = C) trained by conditional IMLE instead of VAE-GAN: per input, m = 10 "
        "draws of z_1 and all class- and layer-wise codes from the class_layer_encoder's prior, "
        "the nearest under cIMLE's layout distance is fitted, so every class keeps its own "
        "diversity without a KL term or discriminator. cIMLE's layout schedule (§5.2.5: "
        "L = 10000) with |S̃| = 4 (CLVAE's batch); train with batch_size = |S| = 400, Adam "
        "lr 1e-5. The encoder is not trained (IMLE has no posterior).",
    ),
}


# --------------------------------------------------------------------------- trainer settings


def _adam(lr: float) -> dict[str, Any]:
    return {"type": "adam", "lr": lr, "betas": (0.0, 0.9)}


def _ttur(g: float, d: float, **schedule: Any) -> dict[str, Any]:
    """TTUR with Adam β = (0, 0.9): ``g`` for the generator and encoder, ``d`` for D."""
    return {"optimizer": _adam(g), "optimizers": {"discriminator": _adam(d)}, **schedule}


def _epochs(images: int, batch: int, epochs: int, decay_epochs: int = 0) -> dict[str, Any]:
    """``epochs`` at a constant lr, then ``decay_epochs`` of linear decay to 0, in steps."""
    per_epoch = images // batch  # the Trainer drops the last partial batch
    schedule: dict[str, Any] = {"batch_size": batch, "steps": (epochs + decay_epochs) * per_epoch}
    if decay_epochs:
        schedule["decay_start"] = epochs * per_epoch
    return schedule


#: The official code's learning rates (G/E 1e-4, D 4e-4: SPADE's TTUR from lr 2e-4), as a
#: run's ``train`` section (merged key by key over a recipe's settings); the CLVAE recipes keep
#: §4.2's G/E 4e-4, D 1e-4 (see ``_CLVAE_LRS``).
OFFICIAL_LRS: dict[str, Any] = {
    "optimizer": {"lr": 1e-4},
    "optimizers": {"discriminator": {"lr": 4e-4}},
}

# Training set sizes (CLVAE §4.1): ADE20K 20,210, DeepFashion 6,343, GTA-5 12,403 images.
# CLVAE §4.2: batch 4, G/E 4e-4, D 1e-4 (the official code: OFFICIAL_LRS); ADE20K 100 + 100
# decay epochs, DeepFashion 60 + 40, GTA-5 20. GauGAN-VAE was trained "with the same parameter
# settings" (batch 4, ADE20K's schedule) but keeps GauGAN's TTUR rates (G 1e-4, D 4e-4).
TRAIN: dict[str, dict[str, Any]] = {
    "clvae.spade_cityscapes": _ttur(1e-4, 4e-4),
    "clvae.gaugan_vae_ade20k": _ttur(1e-4, 4e-4, **_epochs(20_210, 4, 100, 100)),
    "clvae.ade20k": _ttur(4e-4, 1e-4, **_epochs(20_210, 4, 100, 100)),
    "clvae.deepfashion": _ttur(4e-4, 1e-4, **_epochs(6_343, 4, 60, 40)),
    "clvae.gta5": _ttur(4e-4, 1e-4, **_epochs(12_403, 4, 20)),
    "clvae.gaugan_composed": _ttur(1e-4, 4e-4, **_epochs(20_210, 4, 100, 100)),
    # cIMLE's layout settings: |S| = 400 per round, Adam lr 1e-5 with Adam's default β (the
    # paper names none)
    "clvae.imle": {
        "batch_size": 400,
        "optimizer": {"type": "adam", "lr": 1e-5, "betas": (0.9, 0.999)},
    },
}

# --------------------------------------------------------------------------- demo settings

#: CPU size for every recipe: widths 16 (G, D, encoder), SPADE/CSE hidden maps 32 (128), the
#: crop at the demo side, and the encoders' input at 64 px at least (they halve it six times).
_DEMO: dict[str, Any] = {
    "caps": {"ngf": 16, "ndf": 16, "hidden": 32},
    "size_fields": {"crop_size": 1, "input_size": 64},
}
_SQUARE = {"set": {"generator.aspect_ratio": 1.0}}  # the demo crops are square
_IMLE_DEMO_CAPS = {"num_codes": 8, "inner_steps": 4}  # cIMLE's m and L

#: ``synth demo`` settings (see synth.demo). GauGAN as a composition is the default demo: a
#: multimodal model from two plugins' parts that shows something after three CPU minutes.
DEMO: dict[str, dict[str, Any]] = {
    "clvae.spade_cityscapes": {**_DEMO, **_SQUARE},
    "clvae.gaugan_vae_ade20k": {**_DEMO, "preference": 8},
    "clvae.ade20k": {**_DEMO, "preference": 7},
    "clvae.deepfashion": _DEMO,
    "clvae.gta5": {**_DEMO, **_SQUARE},
    "clvae.gaugan_composed": {**_DEMO, "preference": 10},
    "clvae.imle": {**_DEMO, "caps": {**_DEMO["caps"], **_IMLE_DEMO_CAPS}},
}


@synth.hookimpl
def synth_register(registry: synth.Registry) -> None:
    for name, (kind, target) in _PARTS.items():
        registry.add(name, kind=kind, target=target)
    for name, (spec, description) in RECIPES.items():
        registry.add_recipe(name, spec, description=description, train=TRAIN[name], demo=DEMO[name])


@synth.hookimpl
def synth_demo_pictures(
    model: Any,
    cond: synth.Condition,
    shown: synth.Condition,
    real: Any,
    palette: Any,
    num_samples: int,
    generator: Any,
) -> list[Any]:
    """The per-class resampling grid (:mod:`synth_clvae.pictures`)."""
    from .pictures import demo_pictures

    return demo_pictures(model, cond, shown, real, palette, num_samples, generator)
