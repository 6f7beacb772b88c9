"""Auxiliary networks A: z -> ζ and B: ζ -> z for faster manifold projection (appendix B.1).

A 5-layer MLP ``z -> 1000 -> 10000 (ζ) -> 1000 -> z`` split at ζ: the projection optimises the
10,000-d ζ and generates from ``B(ζ)``. Layer order from the authors' Chainer code
(``gen_models/resnet_*_auxab.py``): ``A = PReLU(lA2(relu(lA1(z))))``,
``B = PReLU(lB2(relu(lB1(ζ))))``, PReLU slopes per unit initialised 0.25, Glorot-uniform
weights. Module names here -> official keys: ``a1`` lA1, ``a2`` lA2, ``a_prelu.weight``
preluMiddleW, ``b1`` lB1, ``b2`` lB2, ``b_prelu.weight`` preluW.

Training (eq. 6), per photo x with ``z = E(x)``:

    ζ_0 = A(z),   ζ_{j+1} = ζ_j - α_j ∇_ζ L(G(B(ζ_j)), x)                               (eq. 5)
    L_AB = Σ_{j=0}^{N_iter} w_j L(G(B(ζ_j)), x) + λ ‖B(A(z)) - z‖²                       (eq. 6)

N_iter 2, w = (20, 2, 1), λ 100; the inner steps are AdaGrad steps (B.2: "AdaGrad ... because
Adam causes numerical instability in double backpropagation"), differentiated through
(double backprop) so A and B learn a landscape that is quick to descend. L is the projection
loss (:func:`synth_collage.projection.projection_loss`). The outer optimiser follows the
official config: Adam 5e-5, β (0, 0.9), weight decay 1e-4, gradient clipping at norm 100.
Where the official code differs from the paper (it scales the λ term by 1/dim_z and adds the
pixel term only at the last round) this module follows the paper.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from einops import reduce
from torch import Tensor, nn

import synth

from .projection import (
    PIXEL_WEIGHT,
    FeatureFn,
    discriminator_features,
    eval_mode,
    projection_loss,
    starting_codes,
)

__all__ = ["AuxiliaryLoss", "AuxiliaryNetworks", "auxiliary_loss", "train_auxiliary"]

#: Appendix B.1's constants.
N_ITER = 2
ROUND_WEIGHTS = (20.0, 2.0, 1.0)
LAMBDA = 100.0
#: The official AdaGrad ``eps`` (its accumulator starts at eps) and initial step size
#: (``initial_fast_alpha``; the official code also learns a per-unit step, not done here).
ADAGRAD_EPS = 1e-8
INNER_LR = 2e-4


# --------------------------------------------------------------------------- the networks


class AuxiliaryNetworks(nn.Module):
    """A: ``z [B, Z] -> ζ [B, zeta_dim]`` and B: ``ζ -> z`` (appendix B.1, Fig. 14).

    Widths default to the paper's (1000, 10000, 1000); small ones suit tests.
    """

    def __init__(
        self, z_dim: int = 128, hidden_a: int = 1000, zeta_dim: int = 10000, hidden_b: int = 1000
    ) -> None:
        super().__init__()
        for name, value in dict(
            z_dim=z_dim, hidden_a=hidden_a, zeta_dim=zeta_dim, hidden_b=hidden_b
        ).items():
            if value < 1:
                raise ValueError(f"AuxiliaryNetworks: {name}={value}; widths must be >= 1")
        self.z_dim, self.zeta_dim = z_dim, zeta_dim
        self.a1 = nn.Linear(z_dim, hidden_a)
        self.a2 = nn.Linear(hidden_a, zeta_dim)
        self.a_prelu = nn.PReLU(zeta_dim, init=0.25)
        self.b1 = nn.Linear(zeta_dim, hidden_b)
        self.b2 = nn.Linear(hidden_b, z_dim)
        self.b_prelu = nn.PReLU(z_dim, init=0.25)
        for lin in (self.a1, self.a2, self.b1, self.b2):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def embed(self, z: Tensor) -> Tensor:
        """A: ``z [B, Z] -> ζ [B, zeta_dim]``."""
        return self.a_prelu(self.a2(F.relu(self.a1(z))))

    def project(self, zeta: Tensor) -> Tensor:
        """B: ``ζ [B, zeta_dim] -> z [B, Z]``."""
        return self.b_prelu(self.b2(F.relu(self.b1(zeta))))

    def forward(self, z: Tensor) -> Tensor:
        """``B(A(z))``: ``[B, Z] -> [B, Z]``."""
        return self.project(self.embed(z))


# --------------------------------------------------------------------------- L_AB (eq. 6)


@dataclass
class AuxiliaryLoss:
    """One evaluation of eq. 6.

    Attributes:
        loss: scalar, the batch mean of the per-photo L_AB.
        per_photo: ``[B]`` L_AB of each photo.
        rounds: ``[N_iter + 1, B]`` ``L(G(B(ζ_j)), x)`` per round (detached).
        reconstruction: ``[B]`` ``‖B(A(z)) - z‖²`` (detached).
    """

    loss: Tensor
    per_photo: Tensor
    rounds: Tensor
    reconstruction: Tensor


def auxiliary_loss(
    aux: AuxiliaryNetworks,
    render: Callable[[Tensor], Tensor],
    features: Callable[[Tensor], Tensor],
    z: Tensor,
    photo: Tensor,
    *,
    n_iter: int = N_ITER,
    weights: Sequence[float] = ROUND_WEIGHTS,
    lam: float = LAMBDA,
    inner_lr: float = INNER_LR,
    pixel_weight: float = PIXEL_WEIGHT,
) -> AuxiliaryLoss:
    """L_AB (eq. 6) with the inner AdaGrad steps of eq. 5 kept in the graph (double backprop).

    Args:
        aux: the networks A and B.
        render: ``z [B, Z] -> image [B, 3, H, W]``, the generator at the photos' condition.
        features: ``image -> [B, F]``, the discriminator features of eq. 4.
        z: ``[B, Z]`` the encoder's codes ``E(x)``.
        photo: ``[B, 3, H, W]`` the targets x.
        n_iter, weights, lam: N_iter, ``w_0..w_N`` and λ (appendix B.1: 2, (20, 2, 1), 100).
        inner_lr: AdaGrad's step α of eq. 5 (``ζ -= α g / sqrt(eps + Σ g²)``).
    """
    if len(weights) != n_iter + 1:
        raise ValueError(
            f"weights has {len(weights)} entries but n_iter={n_iter} needs n_iter + 1 = "
            f"{n_iter + 1} (w_0 .. w_N), e.g. (20, 2, 1) for n_iter=2"
        )
    with torch.no_grad():
        target = features(photo).detach()

    def round_loss(zeta: Tensor) -> Tensor:
        image = render(aux.project(zeta))
        return projection_loss(image, photo, features(image), target, pixel_weight=pixel_weight)

    # the inner steps differentiate w.r.t. ζ, so grad mode is on even under torch.no_grad()
    with torch.enable_grad():
        zeta = aux.embed(z)
        if not zeta.requires_grad:  # frozen A: ζ_0 is still the variable of eq. 5
            zeta = zeta.detach().requires_grad_(True)
        accum = torch.full_like(zeta, ADAGRAD_EPS)
        rounds = []
        total = zeta.new_zeros(z.shape[0])
        for j in range(n_iter + 1):
            per = round_loss(zeta)
            rounds.append(per)
            total = total + weights[j] * per
            if j == n_iter:
                break
            # eq. 5: the sum over photos gives each ζ_i its own photo's gradient
            (grad,) = torch.autograd.grad(per.sum(), [zeta], create_graph=True)
            accum = accum + grad * grad
            zeta = zeta - inner_lr * grad / accum.sqrt()
        recon = reduce((aux(z) - z) ** 2, "b z -> b", "sum")
    per_photo = total + lam * recon
    return AuxiliaryLoss(
        loss=per_photo.mean(),
        per_photo=per_photo,
        rounds=torch.stack(rounds).detach(),
        reconstruction=recon.detach(),
    )


# --------------------------------------------------------------------------- training


def train_auxiliary(
    model: Any,
    aux: AuxiliaryNetworks,
    batches: Iterable[tuple[Tensor, synth.Condition]],
    *,
    steps: int,
    encoder: nn.Module | None = None,
    lr: float = 5e-5,
    betas: tuple[float, float] = (0.0, 0.9),
    weight_decay: float = 1e-4,
    grad_clip: float = 100.0,
    features: FeatureFn | None = None,
    log: Callable[[int, AuxiliaryLoss], None] | None = None,
    **loss_options: Any,
) -> list[float]:
    """Train A and B on photos with G, D and E fixed (appendix B.2); returns the loss per step.

    ``batches`` yields ``(photo [B, 3, H, W], cond)`` pairs (cycled until ``steps``); the codes
    are ``E(photo)`` (``encoder`` or the model's posterior injector; a prior draw without one).
    Adam(``lr``, ``betas``) with L2 ``weight_decay`` and gradient-norm clipping as the
    official config; ``loss_options`` go to :func:`auxiliary_loss` (``n_iter``, ``weights``,
    ``lam``, ``inner_lr``, ``pixel_weight``). ``log(step, AuxiliaryLoss)`` is called each step.
    """
    if steps < 1:
        raise ValueError(f"steps={steps}: give the number of training steps (>= 1)")
    disc = getattr(model, "discriminator", None)
    if features is None and disc is None:
        raise ValueError(
            "training the auxiliary networks needs discriminator features (eq. 4) but the model "
            "has no discriminator; compose it with one or pass features=callable"
        )
    opt = torch.optim.Adam(aux.parameters(), lr=lr, betas=betas, weight_decay=weight_decay)
    frozen = [p for p in model.parameters() if p.requires_grad]
    history: list[float] = []
    aux.train()
    try:
        for p in frozen:
            p.requires_grad_(False)
        with eval_mode(model):
            step = 0
            while step < steps:
                seen = False
                for photo, cond in batches:
                    seen = True
                    z = starting_codes(model, photo, cond, encoder=encoder)

                    def feats(image: Tensor, cond: synth.Condition = cond) -> Tensor:
                        if features is not None:
                            return features(image, cond)
                        return discriminator_features(disc, image, cond)

                    def render(code: Tensor, cond: synth.Condition = cond) -> Tensor:
                        return model.generator(cond, synth.Latents(z=code)).image

                    out = auxiliary_loss(aux, render, feats, z, photo, **loss_options)
                    opt.zero_grad(set_to_none=True)
                    out.loss.backward()
                    nn.utils.clip_grad_norm_(aux.parameters(), grad_clip)
                    opt.step()
                    history.append(float(out.loss.detach()))
                    if log is not None:
                        log(step, out)
                    step += 1
                    if step >= steps:
                        break
                if not seen:
                    raise ValueError("batches yielded nothing; give (photo, cond) pairs")
    finally:
        for p in frozen:
            p.requires_grad_(True)
    return history
