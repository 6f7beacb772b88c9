"""pix2pixHD recipes (paper §4 and the official training scripts) and the coarse-to-fine
training schedule as a :class:`synth.train.TrainerConfig`.

Every recipe is the paper's full objective (eq. 5: Σ_k L_GAN(G, D_k) + λ Σ_k L_FM(G, D_k),
λ = 10) plus the VGG term of §4: LSGAN (D loss ×0.5), feature matching ×10 with the official
``4/(n_layers_D+1)·1/num_D`` weights, VGG19 perceptual loss ×10 (relu1_1…relu5_1, weights
1/32…1), objective ``core.gan`` with the generator step's fake reused by the discriminator
step; weights initialised N(0, 0.02) (``init: normal``); Adam lr 2e-4, β = (0.5, 0.999),
constant then linear decay to 0 (:func:`training_config`).

``pix2pixhd.imle`` is a hybrid: G1 with a noise input trained by cIMLE instead (it names
``core.spatial_noise`` and the ``cimle.*`` parts as strings; composing it needs
synth-plugin-cimle installed, this plugin never imports it).
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

__all__ = ["DEMO", "RECIPES", "TRAIN", "recipe", "training_config"]

_LOSSES: dict[str, Any] = {
    "gan": {"type": "core.lsgan", "weight": 1.0},
    "feat": {"type": "pix2pixhd.feature_matching", "weight": 10.0},
    "vgg": {"type": "core.perceptual", "weight": 10.0},
}


def _g1_ade20k(**extra: Any) -> dict[str, Any]:
    """G1 at the ADE20K settings (151 classes, no instance maps)."""
    return {
        "type": "pix2pixhd.global_generator",
        "num_classes": 151,
        "ngf": 64,
        "n_downsampling": 4,
        "n_blocks": 9,
        "use_instances": False,
        **extra,
    }


def _spec(generator: dict[str, Any], num_d: int, use_instances: bool) -> dict[str, Any]:
    """A paper recipe: the official ``weights_init`` (``init: normal``, N(0, 0.02) conv weights;
    paper appendix: "initialized from a Gaussian distribution with mean 0 and standard
    deviation 0.02") on G and D, and the discriminator step scoring the generator step's fake
    (``d_fake: reuse``, official ``pix2pixHD_model.py``: one generator forward per iteration)."""
    return {
        "generator": {**generator, "init": "normal"},
        "discriminator": {
            "type": "pix2pixhd.multiscale_discriminator",
            "num_d": num_d,
            "ndf": 64,
            "n_layers": 3,
            "use_instances": use_instances,
            "init": "normal",
        },
        "losses": copy.deepcopy(_LOSSES),
        "objective": {"type": "core.gan", "d_fake": "reuse"},
    }


#: name -> (model spec, description)
RECIPES: dict[str, tuple[dict[str, Any], str]] = {
    "pix2pixhd.cityscapes_512": (
        _spec(
            {
                "type": "pix2pixhd.global_generator",
                "num_classes": 35,
                "ngf": 64,
                "n_downsampling": 4,
                "n_blocks": 9,
                "use_instances": True,
            },
            num_d=2,
            use_instances=True,
        ),
        "pix2pixHD Cityscapes 1024×512: global generator G1, 2-scale D, instance edges; weights N(0, 0.02) (appendix A, official weights_init)",
    ),
    "pix2pixhd.cityscapes_1024": (
        _spec(
            {
                "type": "pix2pixhd.local_enhancer",
                "num_classes": 35,
                "ngf": 32,
                "n_downsample_global": 4,
                "n_blocks_global": 9,
                "n_local_enhancers": 1,
                "n_blocks_local": 3,
                "use_instances": True,
            },
            num_d=3,
            use_instances=True,
        ),
        "pix2pixHD Cityscapes 2048×1024: G1 + one local enhancer (ngf 32), 3-scale D; weights N(0, 0.02) (appendix A, official weights_init)",
    ),
    "pix2pixhd.ade20k": (
        _spec(_g1_ade20k(), num_d=2, use_instances=False),
        "pix2pixHD ADE20K (150 classes + 'other', no instance maps): G1, 2-scale D; weights N(0, 0.02) (appendix A, official weights_init)",
    ),
    # ---- hybrids: parts of several papers, composed only from registered names
    "pix2pixhd.imle": (
        {
            # The noise map enters where pix2pixHD's instance features do (§3.4): extra input
            # channels after the one-hot map, read from latents.spatial.
            "generator": _g1_ade20k(feat_num=10),
            # One 10-channel Gaussian code per bottleneck cell (scale = 2**n_downsampling):
            # nearest-upsampled to full size, each code steers one 16x16 region instead of
            # being averaged away like per-pixel i.i.d. noise would be by the strided convs.
            "injector": {"type": "core.spatial_noise", "scale": 16},
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
        "Hybrid (needs synth-plugin-cimle): pix2pixHD's global generator G1 on ADE20K (256x256, "
        "151 classes) with a 10-channel core.spatial_noise code at 1/16 resolution as its "
        "extra input channels (feat_num), trained by conditional IMLE instead of a GAN, so "
        "every real image is near some code (no mode collapse): cIMLE's layout distance and "
        "schedule (§5.2.5: m = 10, L = 10000, |S̃| = 1 as pix2pixHD's batch 1); train with "
        "batch_size = |S| = 400, Adam lr 1e-5. No discriminator.",
    ),
}


def recipe(name: str, **generator: Any) -> dict[str, Any]:
    """A copy of recipe ``name``'s model spec with generator fields overridden.

    ``name`` is ``"pix2pixhd.cityscapes_512"`` or its short form ``"cityscapes_512"``.
    """
    key = name if name.startswith("pix2pixhd.") else f"pix2pixhd.{name}"
    spec = copy.deepcopy(RECIPES[key][0])
    spec["generator"].update(generator)
    return spec


def training_config(
    *,
    steps: int,
    decay_start: int | None = None,
    freeze_global_until: int | None = None,
    fixed_stages: int | None = None,
    global_stages: int | None = None,
    lr: float = 2e-4,
    **overrides: Any,
) -> dict[str, Any]:
    """The pix2pixHD training settings as a ``synth.train.TrainerConfig`` dict.

    Adam ``lr`` (2e-4) with β = (0.5, 0.999) for every network; constant until
    ``decay_start`` (default: half of ``steps``, the official 100 + 100 epochs), then linear
    decay to 0. With ``freeze_global_until`` (the official ``niter_fix_global``, in steps) and
    ``fixed_stages`` (``LocalEnhancer.fixed_stages``), the generator's first ``fixed_stages``
    stages (``generator.stages.0 … generator.stages.{fixed_stages-1}``) get no updates until
    that step, so only the outermost enhancer (and the RGB head, and the other networks)
    trains first and then everything jointly (paper §3.2). ``fixed_stages`` is the global
    generator *and every inner enhancer*, as the official code, which puts only the
    parameters named ``model{n_local_enhancers}*`` in the optimizer during that phase.

    ``global_stages`` is the former name of ``fixed_stages`` (deprecated: the value is
    used as given, so ``LocalEnhancer.global_stages`` with ``n_local_enhancers > 1`` also trains
    the inner enhancers, unlike the official code).

    ``overrides`` are other TrainerConfig fields (``batch_size``, ``run_dir``, ...).
    """
    cfg: dict[str, Any] = {
        "steps": steps,
        "optimizer": {"type": "adam", "lr": lr, "betas": (0.5, 0.999)},
        "decay_start": steps // 2 if decay_start is None else decay_start,
    }
    if global_stages is not None:
        if fixed_stages is not None:
            raise ValueError("give fixed_stages only (global_stages is its deprecated name)")
        warnings.warn(
            "training_config(global_stages=...) is deprecated: pass fixed_stages="
            "model.generator.fixed_stages (the global generator and the inner enhancers, "
            "which the official niter_fix_global phase also keeps fixed)",
            DeprecationWarning,
            stacklevel=2,
        )
        fixed_stages = global_stages
    if freeze_global_until:
        if fixed_stages is None:
            raise ValueError(
                "freeze_global_until needs fixed_stages (LocalEnhancer.fixed_stages): the "
                "number of leading stages kept fixed -- the global generator and every "
                "enhancer but the outermost"
            )
        cfg["freeze"] = [
            {"pattern": f"generator.stages.{i}.*", "until": freeze_global_until}
            for i in range(fixed_stages)
        ]
    cfg.update(overrides)
    return cfg


def _epochs(images: int, epochs: int = 200) -> dict[str, Any]:
    """The paper's schedule at batch 1 (official ``batchSize``): ``epochs`` over ``images``
    training images, lr constant for the first half, then linear decay to 0."""
    return training_config(steps=epochs * images, batch_size=1)


#: The paper's trainer settings (§A: Adam lr 2e-4, β = (0.5, 0.999); 100 epochs, then 100 of
#: linear decay to 0), per recipe; Cityscapes has 2,975 training images, ADE20K 20,210. The
#: 1024 recipe starts from the 512 model's weights (copy them into its first
#: ``global_stages`` stages) and may freeze them first: ``training_config(freeze_global_until
#: =..., fixed_stages=...)``.
TRAIN: dict[str, dict[str, Any]] = {
    "pix2pixhd.cityscapes_512": _epochs(2_975),
    "pix2pixhd.cityscapes_1024": _epochs(2_975),
    "pix2pixhd.ade20k": _epochs(20_210),
    # cIMLE's layout settings: |S| = 400 per round, Adam lr 1e-5 with Adam's default β (the
    # paper names none)
    "pix2pixhd.imle": {
        "batch_size": 400,
        "optimizer": {"type": "adam", "lr": 1e-5, "betas": (0.9, 0.999)},
    },
}

#: CPU size (see synth.demo): widths 16, three residual blocks, and an encoder depth of two
#: halvings, so 64 px keeps the 16x16 bottleneck G1 has at 256 px (four halvings of 64 px
#: leave 4x4, through which the label map's layout does not get across).
_DEMO_CAPS: dict[str, int] = {
    "ngf": 16,
    "ndf": 16,
    "n_blocks": 3,
    "n_downsampling": 2,
    "n_downsample_global": 2,
}

#: ``synth demo`` settings per recipe: pix2pixHD alone is unimodal (one output per label
#: map), so none is preferred as the default demo.
DEMO: dict[str, dict[str, Any]] = {
    "pix2pixhd.cityscapes_512": {"caps": _DEMO_CAPS},
    "pix2pixhd.cityscapes_1024": {"caps": _DEMO_CAPS},
    "pix2pixhd.ade20k": {"caps": _DEMO_CAPS},
    # cIMLE's m and L at CPU size
    "pix2pixhd.imle": {"caps": {**_DEMO_CAPS, "num_codes": 8, "inner_steps": 4}},
}
