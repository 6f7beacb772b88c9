"""Manifold projection of photos onto a generator (Suzuki et al., §4 eq. 4, appendix B).

Find ``z`` with ``G(z) ≈ x``: start from the encoder's ``z = E(x)`` and "calibrate z by
back-propagating the loss" -- 200 Adam steps on

    L(G(z), x) = 1 - Ψ(G(z)) · Ψ(x)  +  0.2 · MSE(G(z), x)                         (eq. 4)

with ``Ψ`` the L2-normalised final feature map of the discriminator (the official
``feature_vector``: the last block's ReLU output, flattened) and the pixel term of the authors'
``optimization.py`` (``lmd_pixel = 0.2``; Adam ``alpha`` 0.075 on z, 0.015 on ζ). The official
code uses ``-cos`` (a constant away from eq. 4: same gradients).

Batched: the loss of a batch is the SUM of the per-photo losses (each MSE is the photo's own
mean), so photo ``i``'s code only gets photo ``i``'s gradient and Adam, being elementwise,
moves every code exactly as if it were projected alone. Networks run in eval mode (running BN
statistics, no spectral-norm power iteration), which keeps photos independent of each other.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import Tensor, nn

import synth

__all__ = [
    "Projection",
    "discriminator_features",
    "eval_mode",
    "project",
    "projection_loss",
    "starting_codes",
]

#: The official step sizes of ``optimization.py`` (Adam on z, and on ζ with the auxiliary nets).
LR_Z = 0.075
LR_ZETA = 0.015
PIXEL_WEIGHT = 0.2

#: ``features(image [B, 3, H, W], cond) -> [B, F]``: the feature space of eq. 4.
FeatureFn = Callable[[Tensor, synth.Condition], Tensor]


# --------------------------------------------------------------------------- the objective


def discriminator_features(
    discriminator: nn.Module, image: Tensor, cond: synth.Condition
) -> Tensor:
    """Ψ before normalisation: the discriminator's final feature map, flattened: ``[B, F]``.

    A discriminator with a ``feature_vector(image, cond)`` method (``collage.projection_
    discriminator``: the official ``feature_vector``, the ReLU of the last block's output
    before the global sum, spatial layout kept): its result. Any other: the last feature map
    of its finest scale, ``DiscriminatorOutput.features[0][-1]``.
    """
    if hasattr(discriminator, "feature_vector"):
        return rearrange(discriminator.feature_vector(image, cond), "b ... -> b (...)")
    out = discriminator(image, cond)
    if not out.features or not out.features[0]:
        raise ValueError(
            f"{type(discriminator).__name__} returns no features, but manifold projection "
            "compares discriminator features (eq. 4); use a discriminator that returns them "
            "(e.g. collage.projection_discriminator) or pass features=callable"
        )
    return rearrange(out.features[0][-1], "b ... -> b (...)")


def projection_loss(
    recon: Tensor,
    target: Tensor,
    recon_features: Tensor,
    target_features: Tensor,
    *,
    pixel_weight: float = PIXEL_WEIGHT,
) -> Tensor:
    """Eq. 4 plus the pixel term, per photo: ``[B]``.

    ``1 - cos(Ψ(recon), Ψ(target)) + pixel_weight · mean((recon - target)²)`` with
    ``recon, target: [B, 3, H, W]`` and features ``[B, F]``.
    """
    # at least fp32 (bf16/fp16 under autocast), float64 stays float64
    dtype = torch.promote_types(recon.dtype, torch.float32)
    cos = F.cosine_similarity(recon_features.to(dtype), target_features.to(dtype), dim=1, eps=1e-12)
    mse = reduce((recon.to(dtype) - target.to(dtype)) ** 2, "b ... -> b", "mean")
    return 1.0 - cos + pixel_weight * mse


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def eval_mode(*modules: nn.Module | None) -> Iterator[None]:
    """The given modules (and their submodules) in eval mode; training flags restored after."""
    flags = [(s, s.training) for m in modules if m is not None for s in m.modules()]
    for m in modules:
        if m is not None:
            m.eval()
    try:
        yield
    finally:
        for module, flag in flags:
            module.training = flag


def _check_photo(photo: Tensor, cond: synth.Condition) -> None:
    if photo.dim() != 4 or photo.shape[1] != 3:
        raise ValueError(
            f"photo has shape {tuple(photo.shape)}; give RGB photos [B, 3, H, W] in [-1, 1]"
        )
    if photo.shape[0] != cond.batch_size:
        raise ValueError(
            f"photo has {photo.shape[0]} images but the Condition has batch size "
            f"{cond.batch_size}; give one condition row per photo"
        )
    if cond.size is not None and tuple(photo.shape[-2:]) != tuple(cond.size):
        raise ValueError(
            f"photo is {tuple(photo.shape[-2:])} but the Condition's size is {cond.size}; "
            "resize the photo to the generator's size first (edit_photo does this for a region)"
        )


def _generate(model: Any, cond: synth.Condition, z: Tensor) -> Tensor:
    return model.generator(cond, synth.Latents(z=z)).image


def starting_codes(
    model: Any,
    photo: Tensor,
    cond: synth.Condition,
    *,
    encoder: nn.Module | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The projection's start ``z_0: [B, Z]``: ``E(photo)`` from ``encoder`` (or the model's
    injector when it has a posterior, e.g. ``collage.resnet_encoder``), else a prior draw
    seeded by ``generator`` (the official code's random start without an encoder)."""
    injector = getattr(model, "injector", None)
    if encoder is None and getattr(injector, "has_posterior", False):
        encoder = injector
    with torch.no_grad(), eval_mode(encoder):
        if encoder is not None:
            z = encoder.posterior(photo, cond).z
            if z is None:
                raise ValueError(f"{type(encoder).__name__}.posterior gave no z to project from")
            return z.detach()
        if getattr(model, "injector", None) is not None:
            z = model.injector.prior(cond, generator).z
            if z is not None:
                return z
    z_dim = getattr(model.generator.config, "z_dim", None)
    if not z_dim:
        raise ValueError(
            f"{type(model.generator).__name__} reads no z (z_dim={z_dim}); manifold projection "
            "optimises the global code z: use a generator with z_dim > 0"
        )
    return torch.randn(cond.batch_size, z_dim, generator=generator, device=photo.device)


# --------------------------------------------------------------------------- projection


@dataclass
class Projection:
    """What :func:`project` found.

    Attributes:
        z: ``[B, Z]`` the calibrated codes (``B(ζ)`` with the auxiliary networks).
        image: ``[B, 3, H, W]`` ``G(z)``.
        losses: ``[steps + 1, B]`` the loss of each photo before each step and at the end.
        zeta: ``[B, ζ]`` the calibrated extended codes (with the auxiliary networks), else None.
    """

    z: Tensor
    image: Tensor
    losses: Tensor
    zeta: Tensor | None = None

    @property
    def latents(self) -> synth.Latents:
        return synth.Latents(z=self.z)


def project(
    model: Any,
    photo: Tensor,
    cond: synth.Condition,
    *,
    steps: int = 200,
    lr: float | None = None,
    betas: tuple[float, float] = (0.9, 0.999),
    pixel_weight: float = PIXEL_WEIGHT,
    z: Tensor | None = None,
    encoder: nn.Module | None = None,
    auxiliary: nn.Module | None = None,
    features: FeatureFn | None = None,
    generator: torch.Generator | None = None,
    progress: bool | None = None,
) -> Projection:
    """Project ``photo [B, 3, H, W]`` (in [-1, 1], at ``cond.size``) onto ``model.generator``.

    Starts from ``z`` if given, else :func:`starting_codes` (the encoder's ``E(x)``), then runs
    ``steps`` Adam steps (``lr`` default 0.075; Chainer's Adam defaults ``betas`` (0.9, 0.999),
    eps 1e-8) on the sum over photos of :func:`projection_loss`. With ``auxiliary``
    (:class:`synth_collage.auxiliary.AuxiliaryNetworks`) it optimises ``ζ`` from ``ζ_0 = A(z_0)``
    and generates from ``B(ζ)`` (appendix B; ``lr`` default 0.015). ``features`` replaces the
    discriminator's (default :func:`discriminator_features` of ``model.discriminator``).
    ``progress``: a tqdm bar (default: when stderr is a terminal and ``steps >= 50``).
    Only the codes get gradients; the networks run in eval mode and are left unchanged.
    """
    _check_photo(photo, cond)
    if steps < 0:
        raise ValueError(f"steps={steps}: give the number of Adam steps (>= 0), e.g. 200")
    if features is None:
        disc = getattr(model, "discriminator", None)
        if disc is None:
            raise ValueError(
                "manifold projection compares discriminator features (eq. 4) but the model has "
                "no discriminator; compose it with one or pass features=callable"
            )

        def features(image: Tensor, c: synth.Condition) -> Tensor:
            return discriminator_features(disc, image, c)

    with eval_mode(model.generator, getattr(model, "discriminator", None), auxiliary):
        if z is None:
            z = starting_codes(model, photo, cond, encoder=encoder, generator=generator)
        z = z.detach().to(photo.device, torch.float32)
        with torch.no_grad():
            target_features = features(photo, cond).detach()
            start = auxiliary.embed(z) if auxiliary is not None else z
        var = start.detach().clone().requires_grad_(True)
        if lr is None:
            lr = LR_ZETA if auxiliary is not None else LR_Z
        opt = torch.optim.Adam([var], lr=lr, betas=betas, eps=1e-8)

        def loss_of(v: Tensor) -> tuple[Tensor, Tensor]:
            code = auxiliary.project(v) if auxiliary is not None else v
            image = _generate(model, cond, code)
            per = projection_loss(
                image, photo, features(image, cond), target_features, pixel_weight=pixel_weight
            )
            return per, image

        losses = []
        for _ in _progress(range(steps), progress, steps):
            per, _ = loss_of(var)
            # only the codes: parameters' .grad stay untouched
            (grad,) = torch.autograd.grad(per.sum(), [var])
            var.grad = grad
            opt.step()
            losses.append(per.detach())
        with torch.no_grad():
            per, image = loss_of(var)
            losses.append(per)
            code = auxiliary.project(var) if auxiliary is not None else var
    return Projection(
        z=code.detach(),
        image=image.detach(),
        losses=torch.stack(losses),
        zeta=var.detach() if auxiliary is not None else None,
    )


def _progress(it: range, progress: bool | None, steps: int):
    if progress is None:
        progress = steps >= 50 and sys.stderr.isatty()
    if not progress:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, desc="manifold projection", unit="step", leave=False)
