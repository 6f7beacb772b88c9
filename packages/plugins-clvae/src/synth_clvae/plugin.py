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


def _gaugan_vae_ade20k() -> dict[str, Any]:
    """GauGAN-VAE's generator and encoder at the ADE20K settings (256², 151 classes, z 256)."""
    return {
        "generator": {
            "type": "clvae.spade_generator",
            "num_classes": 151,
            "z_dim": 256,
            "crop_size": 256,
        },
        "injector": {"type": "clvae.conv_encoder"},
    }


def _clvae(num_classes: int, **gen: Any) -> dict[str, Any]:
    return {
        "generator": {"type": "clvae.clvae_generator", "num_classes": num_classes, **gen},
        "injector": {"type": "clvae.class_layer_encoder"},
        "discriminator": {"type": "clvae.multiscale_discriminator"},
        "losses": {**_GAUGAN_LOSSES, "kl": {"type": "clvae.kl", "weight": 0.05}},
        "objective": {"type": "core.gan"},
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
                "use_instances": True,
            },
            "discriminator": {"type": "clvae.multiscale_discriminator", "use_instances": True},
            "condition": ["label_map", "instance_map"],
            "losses": dict(_GAUGAN_LOSSES),
            "objective": {"type": "core.gan"},
        },
        "GauGAN on Cityscapes (512x256, label_nc 35 + the instance-edge channel; the data must "
        "give label_map and instance_map). " + _TTUR.format(g="1e-4", d="4e-4"),
    ),
    "clvae.gaugan_vae_ade20k": (
        {
            **_gaugan_vae_ade20k(),
            "discriminator": {"type": "clvae.multiscale_discriminator"},
            "losses": {**_GAUGAN_LOSSES, "kl": {"type": "core.kl", "weight": 0.05}},
            "objective": {"type": "core.gan"},
        },
        "GauGAN-VAE on ADE20K (256x256, 151 classes, z 256, KL 0.05). "
        + _TTUR.format(g="1e-4", d="4e-4"),
    ),
    "clvae.ade20k": (
        _clvae(151, crop_size=256),
        "CLVAE on ADE20K (§4.2: 256x256, 151 classes, N = C = 151, N1 = 256); batch 4, "
        "100 + 100 decay epochs. " + _TTUR.format(g="4e-4", d="1e-4"),
    ),
    "clvae.deepfashion": (
        _clvae(16, ngf=160, upsampling="more", crop_size=256),
        "CLVAE on DeepFashion (§4.2: 256x256, 16 classes, ngf 160, 'more'); batch 4, "
        "60 + 40 decay epochs. " + _TTUR.format(g="4e-4", d="1e-4"),
    ),
    "clvae.gta5": (
        _clvae(20, upsampling="more", crop_size=512, aspect_ratio=2.0),
        "CLVAE on GTA-5 (§4.2: 512x256, 20 classes, 'more'); 20 epochs, batch 4; the paper "
        "also uses cIMLE's rarity rebalancing (not part of this recipe). "
        + _TTUR.format(g="4e-4", d="1e-4"),
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


@synth.hookimpl
def synth_register(registry: synth.Registry) -> None:
    for name, (kind, target) in _PARTS.items():
        registry.add(name, kind=kind, target=target)
    for name, (spec, description) in RECIPES.items():
        registry.add_recipe(name, spec, description=description)
