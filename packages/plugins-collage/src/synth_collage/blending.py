"""Poisson blending of an edited crop back into the photo (Pérez et al. 2003; collage §4).

Inside the mask Ω the result f solves the discrete Poisson equation with the source's
gradients as guidance and the photo as Dirichlet boundary:

    for p ∈ Ω:  |N_p| f_p - Σ_{q ∈ N_p ∩ Ω} f_q = Σ_{q ∈ N_p ∩ ∂Ω} photo_q + Σ_{q ∈ N_p} (g_p - g_q)

(4-neighbourhood N_p inside the image). With the grid Laplacian ``L`` (graph Laplacian of the
4-connected pixel grid, ``scipy.sparse``) this is ``L_ΩΩ f_Ω = (L g)_Ω - L_ΩΩ̄ photo_Ω̄``,
solved by ``scipy.sparse.linalg.splu`` (one factorisation for the three channels) -- the
route of the authors' blending code (parosky/poissonblending, a scipy sparse system). Pixels
outside Ω are the photo's, exactly.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from torch import Tensor

__all__ = ["grid_laplacian", "paste", "poisson_blend"]


def grid_laplacian(h: int, w: int) -> sp.csr_matrix:
    """The graph Laplacian of the 4-connected ``h x w`` grid, ``[h·w, h·w]`` (row-major pixels):
    ``L = I_h ⊗ L_w + L_h ⊗ I_w`` with ``L_n`` the path graph's Laplacian."""

    def path(n: int) -> sp.csr_matrix:
        if n == 1:
            return sp.csr_matrix((1, 1))
        d = np.full(n, 2.0)
        d[0] = d[-1] = 1.0
        return sp.diags([d, -np.ones(n - 1), -np.ones(n - 1)], [0, -1, 1], format="csr")

    return (sp.kron(sp.identity(h), path(w)) + sp.kron(path(h), sp.identity(w))).tocsr()


def _blend_one(photo: np.ndarray, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``photo, source: [C, h, w]`` float64, ``mask: [h, w]`` bool -> ``[C, h, w]``."""
    c, h, w = photo.shape
    inside = mask.reshape(-1)
    lap = grid_laplacian(h, w)
    a = lap[inside][:, inside].tocsc()
    coupling = lap[inside][:, ~inside]
    g = source.reshape(c, -1).T  # [h·w, C]
    f = photo.reshape(c, -1).T
    rhs = lap[inside] @ g - coupling @ f[~inside]
    solved = spla.splu(a).solve(np.ascontiguousarray(rhs))
    out = f.copy()
    out[inside] = solved
    return out.T.reshape(c, h, w)


def poisson_blend(photo: Tensor, source: Tensor, mask: Tensor) -> Tensor:
    """Blend ``source`` into ``photo`` inside ``mask`` (seamless cloning with the source's
    gradients).

    Args:
        photo: ``[B, C, H, W]`` (or ``[C, H, W]``) the destination.
        source: same shape, the edited image placed where it belongs (see :func:`paste`).
        mask: ``[B, 1, H, W]``, ``[B, H, W]`` or ``[H, W]``; nonzero = blend here. Every
            photo's mask must leave some pixel outside it (the boundary values).
    Returns:
        same shape and dtype as ``photo``; equal to ``photo`` outside the mask.

    The system is solved on the mask's bounding box plus a one-pixel margin (pixels farther
    away do not enter the equations). Runs in float64 on the CPU, one sparse solve per photo.
    """
    squeeze = photo.dim() == 3
    if squeeze:
        photo, source = photo[None], source[None]
    if photo.dim() != 4 or source.shape != photo.shape:
        raise ValueError(
            f"poisson_blend: photo {tuple(photo.shape)} and source {tuple(source.shape)} must "
            "both be [B, C, H, W] (or [C, H, W]) of the same shape; paste the edit into a "
            "photo-sized canvas first (synth_collage.blending.paste)"
        )
    b, _, h, w = photo.shape
    if mask.dim() == 4:
        mask = mask[:, 0]
    if mask.dim() == 2 and tuple(mask.shape) == (h, w):
        mask = mask.expand(b, h, w)
    if tuple(mask.shape) != (b, h, w):
        raise ValueError(
            f"poisson_blend: mask has shape {tuple(mask.shape)}; give [B, 1, {h}, {w}], "
            f"[B, {h}, {w}] or [{h}, {w}] for photos of shape {tuple(photo.shape)}"
        )
    masks = (mask != 0).cpu().numpy()
    full = masks.reshape(b, -1).all(1)
    if full.any():
        raise ValueError(
            f"poisson_blend: the mask of photo(s) {np.flatnonzero(full).tolist()} covers the "
            "whole image, so there is no boundary to blend against; leave a border of the photo "
            "outside the mask"
        )
    p64 = photo.detach().cpu().double().numpy()
    s64 = source.detach().cpu().double().numpy()
    out = p64.copy()
    # one sparse solve per photo: this is post-processing on the CPU, not a forward pass
    for i in range(b):
        rows, cols = np.nonzero(masks[i])
        if rows.size == 0:
            continue
        y0, y1 = max(rows.min() - 1, 0), min(rows.max() + 2, h)
        x0, x1 = max(cols.min() - 1, 0), min(cols.max() + 2, w)
        box = (slice(None), slice(y0, y1), slice(x0, x1))
        out[i][box] = _blend_one(p64[i][box], s64[i][box], masks[i, y0:y1, x0:x1])
    result = torch.from_numpy(out).to(device=photo.device, dtype=photo.dtype)
    return result[0] if squeeze else result


def paste(photo: Tensor, crop: Tensor, box: tuple[int, int, int, int]) -> Tensor:
    """``photo [B, C, H, W]`` with ``crop [B, C, h, w]`` written at ``box = (top, left, h, w)``
    (a copy; the naive copy-and-paste that Poisson blending then smooths)."""
    top, left, hh, ww = box
    if tuple(crop.shape[-2:]) != (hh, ww):
        raise ValueError(
            f"paste: crop is {tuple(crop.shape[-2:])} but the box is {hh}x{ww}; resize the crop "
            "to the box first"
        )
    out = photo.clone()
    out[..., top : top + hh, left : left + ww] = crop.to(out.dtype)
    return out
