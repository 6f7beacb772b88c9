"""The nested-scale losses (Zhang, Wang et al. 2020): disentanglement (eq. 1) and progressive
normalised diversification (eqs. 5-6, after Liu et al. 2019, "Normalized Diversification").

Both read RGB pyramids, coarsest level first, the last level being the output image
(:attr:`synth.SynthesisOutput.pyramid`): :class:`Disentangle` the generator's pyramid of the
batch, :class:`NDiv` the pyramid of the ``N`` samples per input that an objective with
``samples_per_input: N`` (``core.gan``) leaves in ``LossInputs.sample_output``.
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import Field
from torch import Tensor

import synth

__all__ = ["Disentangle", "NDiv", "ndiv", "pairwise_distances"]


# --------------------------------------------------------------------------- disentanglement


class Disentangle(synth.Loss):
    """Multi-scale disentanglement (eq. 1): ``Σ_i d(S(G_{i+1}), G_i)`` over the pyramid.

    Reads ``batch.fake.pyramid`` (``[B, 3, H_i, W_i]`` per level, coarsest first). Each finer
    level is average-pooled to the next coarser one's size and compared with it. ``S`` of the
    paper is 2×2 average pooling with stride 2; levels that differ by ``2^k`` (a pyramid adapter
    over a generator whose stage scales jump) are pooled by that integer factor in one step,
    which equals ``S`` applied ``k`` times (:func:`synth.nn.ops.pool_pyramid`).

    ``d`` (the paper's "pixel-wise Euclidean distance") is the mean squared difference per
    element (channels and pixels of every image in the batch); the levels' terms are summed, as
    the Σ of eq. 1. A mean, not a sum over pixels: the paper weighs this loss 1, like the GAN
    term (supplement), and only a per-element mean keeps that balance independent of the
    resolution, the batch size and the number of samples per input. Squared, not the L2 norm:
    the norm's gradient is undefined at zero, the state the loss drives to. Gradients reach both
    levels of each pair (neither side is detached): the finer level is pulled to agree with the
    coarser one and the coarser one with the finer's average, as eq. 1 is written.

    ``include_input`` (the super-resolution variant, supplement §2: "enforces the downsampled
    sample of the 32x32 images to be the same as the ground-truth 16x16 low-resolution image")
    adds ``d(S^k(G_j), cond.image)`` for the coarsest level ``G_j`` at least as large as the
    input, pooled by the integer factor to the input's size.
    """

    class Config(synth.LossConfig):
        include_input: bool = Field(
            False, description="also match the coarsest level, pooled, to Condition.image (SR)"
        )

    roles: ClassVar[frozenset[str]] = frozenset({"generator"})
    needs: ClassVar[frozenset[str]] = frozenset({"pyramid"})
    config: Config

    @classmethod
    def requirements(cls, config: synth.PartConfig | None = None) -> frozenset[str]:
        """``image`` (the low-resolution input) with ``include_input``."""
        return frozenset({"image"}) if getattr(config, "include_input", False) else frozenset()

    def forward(self, batch: synth.LossInputs) -> Tensor:
        levels = _pyramid(batch.fake, "nested_scale.disentangle", "batch.fake")
        total = levels[0].new_zeros((), dtype=torch.float32)
        for coarse, fine in itertools.pairwise(levels):
            pooled = synth.ops.pool_pyramid(fine, [tuple(coarse.shape[-2:])])[0]
            total = total + F.mse_loss(pooled.float(), coarse.float())
        if self.config.include_input:
            total = total + self._input_term(levels, batch.cond)
        return total

    def _input_term(self, levels: list[Tensor], cond: synth.Condition) -> Tensor:
        """``d(S^k(G_j), cond.image)`` for the coarsest level ``G_j`` at least the input's size."""
        low = cond.image
        if low is None:
            raise ValueError(
                "nested_scale.disentangle with include_input: true compares the pyramid with the "
                "low-resolution input Condition.image, which is missing; give the data an image "
                "or set include_input: false"
            )
        h, w = low.shape[-2:]
        level = next((t for t in levels if t.shape[-2] >= h and t.shape[-1] >= w), None)
        if level is None or level.shape[0] != low.shape[0]:
            sizes = [tuple(t.shape[-2:]) for t in levels]
            raise ValueError(
                f"nested_scale.disentangle: Condition.image is {tuple(low.shape)} but the "
                f"pyramid's levels are {sizes} with batch {levels[0].shape[0]}; the input must "
                "be no larger than the finest level, one per generated image"
            )
        pooled = synth.ops.pool_pyramid(level, [(h, w)])[0]
        return F.mse_loss(pooled.float(), low.float())


def _pyramid(out: synth.SynthesisOutput | None, who: str, where: str) -> list[Tensor]:
    if out is None or not out.pyramid:
        raise ValueError(
            f"{who} reads the RGB pyramid of {where}, which has none: use a generator with "
            "per-scale RGB heads (has_pyramid), e.g. wrap it in nested_scale.pyramid"
        )
    return list(out.pyramid)


# --------------------------------------------------------------------------- NDiv


def pairwise_distances(x: Tensor, eps: float = 1e-12) -> Tensor:
    """Row-normalised pairwise Euclidean distances (eq. 6), as the NDiv reference computes them.

    ``x: [B, N, D]`` -> ``[B, N, N]`` with ``D_ij = d(x_i, x_j) / (Σ_j d(x_i, x_j) + eps)``; the
    normaliser is detached (gradients flow through the distances only), as in the reference
    (B1ueber2y/NDiv ``compute_norm_pairwise_distance``). Distances are exact (no matrix-product
    shortcut, so ``d(x_i, x_i) = 0``).
    """
    d = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")
    return d / (d.sum(dim=-1, keepdim=True) + eps).detach()


def ndiv(z: Tensor, y: Tensor, alpha: float = 0.8, eps: float = 1e-12) -> Tensor:
    """Normalised diversification (eq. 5 at one scale; Liu et al. 2019), per input.

    Args:
        z: ``[B, N, Dz]`` the codes of ``N`` samples of each of ``B`` inputs.
        y: ``[B, N, Dy]`` the samples they made, flattened.
        alpha: the relaxation ``α`` (0.8 in both papers).
        eps: added to each row sum before dividing (the reference's 1e-12).
    Returns:
        ``[B]``: ``Σ_ij relu(α·Dz_ij − Dy_ij) / (N·(N−1))`` with ``Dz``, ``Dy`` the row-normalised
        distance matrices of :func:`pairwise_distances`.
    """
    if z.dim() != 3 or y.dim() != 3 or z.shape[:2] != y.shape[:2]:
        raise ValueError(
            f"ndiv expects z [B, N, Dz] and y [B, N, Dy] with the same B and N, got "
            f"{tuple(z.shape)} and {tuple(y.shape)}"
        )
    n = z.shape[1]
    if n < 2:
        raise ValueError(f"ndiv compares samples pairwise and needs N >= 2 per input, got N={n}")
    hinge = F.relu(alpha * pairwise_distances(z, eps) - pairwise_distances(y, eps))
    return hinge.sum(dim=(-2, -1)) / (n * (n - 1))


class NDiv(synth.Loss):
    """Progressive normalised diversification (eq. 5): :func:`ndiv` at every pyramid level.

    Reads the ``N`` samples per input of the generator step (``batch.samples: [B, N, C, H, W]``,
    ``batch.sample_latents`` and ``batch.sample_output`` with batch ``B·N`` ordered ``(b n)``,
    from e.g. ``core.gan`` with ``samples_per_input: 4``, the paper's N). At each level ``k``
    of ``sample_output.pyramid`` (or only the output image when the samples have no pyramid:
    the original, single-scale NDiv) the samples of each input, flattened, are ``y_k`` and their
    codes ``z_k``: the level's mapped code ``sample_output.extras["scale_code/{k}"]`` when the
    generator exposes it (the decoder's ``A_k(z)``), else ``sample_latents.styles[k]`` (one code
    per level), else ``sample_latents.z``, else every style code concatenated. The levels'
    terms are summed (eq. 5's Σ_k; ``scales`` picks a subset of levels — the recipes use
    every level, reading supplement B's "every other higher resolution scale" as each of the
    higher scales) and the per-input values averaged over the batch.

    Distances are taken in float32 (under autocast too): the row normalisation divides small
    numbers.
    """

    class Config(synth.LossConfig):
        alpha: float = Field(0.8, gt=0, description="relaxation α of eq. 5")
        scales: list[int] | None = Field(
            None, description="pyramid levels to diversify (0 = coarsest, -1 = finest); all"
        )
        eps: float = Field(1e-12, ge=0, description="added to each distance row's sum")

    roles: ClassVar[frozenset[str]] = frozenset({"generator"})
    needs: ClassVar[frozenset[str]] = frozenset({"samples"})
    config: Config

    def example_inputs(
        self, *, batch_size: int, size: tuple[int, int], generator: torch.Generator
    ) -> dict[str, Any]:
        """Three samples per input with a three-level pyramid and per-level codes; the first two
        samples of each input nearly coincide (a collapse the loss pushes apart)."""
        import synth.testing

        n, h, w = 3, *size
        batch = synth.testing.make_loss_inputs(
            "generator", (), batch_size=batch_size * n, size=size, generator=generator
        )
        pyramid = []
        for f in (4, 2, 1):
            x = torch.randn(batch_size, n, 3, h // f, w // f, generator=generator)
            x[:, 1] = x[:, 0] + 0.01 * x[:, 1]
            pyramid.append(rearrange(torch.tanh(x), "b n ... -> (b n) ...").requires_grad_())
        styles = [torch.randn(batch_size * n, 4, generator=generator) for _ in pyramid]
        batch.fake = synth.SynthesisOutput(pyramid[-1], pyramid=pyramid)
        batch.sample_output = batch.fake
        batch.sample_latents = synth.Latents(styles=styles)
        batch.samples = rearrange(pyramid[-1], "(b n) c h w -> b n c h w", n=n)
        return {"batch": batch}

    def forward(self, batch: synth.LossInputs) -> Tensor:
        if batch.samples is None:
            raise ValueError(
                "nested_scale.ndiv reads several samples per input (batch.samples), which are "
                "missing: train with an objective that draws them, e.g. core.gan with "
                "samples_per_input: 4"
            )
        n = int(batch.samples.shape[1])
        out = batch.sample_output
        if out is not None and out.pyramid:
            levels = list(out.pyramid)
        else:
            levels = [rearrange(batch.samples, "b n ... -> (b n) ...")]
        total = batch.samples.new_zeros((), dtype=torch.float32)
        for k in self._chosen(len(levels)):
            y = rearrange(levels[k].float(), "(b n) ... -> b n (...)", n=n)
            z = rearrange(self._code(batch, k, len(levels)).float(), "(b n) ... -> b n (...)", n=n)
            total = total + ndiv(z, y, self.config.alpha, self.config.eps).mean()
        return total

    def _chosen(self, num_levels: int) -> list[int]:
        scales = self.config.scales
        if scales is None:
            return list(range(num_levels))
        bad = [k for k in scales if not -num_levels <= k < num_levels]
        if bad:
            raise ValueError(
                f"nested_scale.ndiv: scales {bad} are not levels of the samples' "
                f"{num_levels}-level pyramid (0 = coarsest .. {num_levels - 1} = finest)"
            )
        return [k % num_levels for k in scales]

    def _code(self, batch: synth.LossInputs, k: int, num_levels: int) -> Tensor:
        """The codes ``[B·N, ...]`` that made level ``k`` of the samples (see the class doc)."""
        out, lat = batch.sample_output, batch.sample_latents
        extras = out.extras if out is not None else {}
        if f"scale_code/{k}" in extras:
            return extras[f"scale_code/{k}"]
        styles = lat.styles if lat is not None else None
        if styles and len(styles) == num_levels:
            return styles[k]
        if lat is not None and lat.z is not None:
            return lat.z
        if styles:
            return torch.cat([rearrange(s, "b ... -> b (...)") for s in styles], dim=1)
        raise ValueError(
            f"nested_scale.ndiv needs the codes of the samples at level {k}: "
            f"sample_output.extras['scale_code/{k}'], sample_latents.styles or sample_latents.z, "
            "and the samples have none of them; use an injector that draws codes (core.gaussian)"
        )
