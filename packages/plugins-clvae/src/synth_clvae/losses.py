"""CLVAE's KL regulariser (Endo & Kanamori 2021, eq. 18)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

import synth
from synth.parts.losses import gaussian_kl

from .encoders import class_layer_kl

__all__ = ["KL"]


class KL(synth.Loss):
    """Eq. 18: global KL plus the class codes' KL normalised by the number of classes present.

    Reads the posterior parameters the encoder leaves in ``batch.latents.extras``
    (``clvae.mu/logvar``, ``clvae.class_mu/class_logvar``, ``clvae.present``,
    ``clvae.num_present``; see :class:`~synth_clvae.encoders.ClassLayerEncoder`) and computes
    :func:`~synth_clvae.encoders.class_layer_kl` with ``normalize`` = ``"per_layer"`` (official
    code: per sample and layer, the mean over the classes present at that layer) or
    ``"image"`` (the paper's ``1/|C(M)|`` over all layers). With only the global posterior
    (``clvae.conv_encoder``) it is GauGAN's KLD. Use with ``weight: 0.05`` (λ_KL).
    """

    class Config(synth.LossConfig):
        normalize: Literal["per_layer", "image"] = "per_layer"

    roles: ClassVar[frozenset[str]] = frozenset({"encoder"})
    needs: ClassVar[frozenset[str]] = frozenset({"kl"})
    config: Config

    def example_inputs(
        self, *, batch_size: int, size: tuple[int, int], generator: torch.Generator
    ) -> dict[str, Any]:
        """A batch whose latents carry posterior extras (5 layers, 4 classes, D = 3)."""
        import synth.testing

        b, k, d = batch_size, 4, 3
        batch = synth.testing.make_loss_inputs(
            "encoder", {"kl"}, batch_size=b, size=size, generator=generator
        )

        def leaf(*shape: int) -> Tensor:
            return torch.randn(*shape, generator=generator).requires_grad_()

        batch.latents.extras = {
            "clvae.mu": leaf(b, 8),
            "clvae.logvar": leaf(b, 8),
            "clvae.class_mu": leaf(b, 5, k, d),
            "clvae.class_logvar": leaf(b, 5, k, d),
            "clvae.present": torch.rand(b, 5, k, generator=generator) > 0.3,
            "clvae.num_present": torch.full((b,), k),
        }
        return {"batch": batch}

    def forward(self, batch: synth.LossInputs) -> Tensor:
        lat = batch.latents
        ex = lat.extras if lat is not None else {}
        if "clvae.mu" not in ex:
            raise ValueError(
                "clvae.kl reads the posterior parameters in latents.extras ('clvae.mu', ...): "
                "the latents must come from clvae.class_layer_encoder or clvae.conv_encoder's "
                "posterior"
            )
        if "clvae.class_mu" not in ex:
            return gaussian_kl(ex["clvae.mu"], ex["clvae.logvar"], "sum")
        return class_layer_kl(
            ex["clvae.mu"],
            ex["clvae.logvar"],
            ex["clvae.class_mu"],
            ex["clvae.class_logvar"],
            ex["clvae.present"],
            normalize=self.config.normalize,
            num_present=ex.get("clvae.num_present"),
        )
