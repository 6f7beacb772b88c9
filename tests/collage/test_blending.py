"""Poisson blending (Pérez et al. 2003) through a scipy sparse solve, checked against an
independent statement of the equations: outside the mask the photo, inside the mask the
5-point Laplacian of the result equals the source's."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from synth_collage.blending import paste, poisson_blend

STENCIL = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]], dtype=torch.float64)


def _laplacian(x: torch.Tensor) -> torch.Tensor:
    """5-point Laplacian with replicated borders (a missing neighbour adds no difference:
    the image edge is a Neumann border), per channel. ``[B, C, H, W]``."""
    c = x.shape[1]
    k = STENCIL.to(x.dtype).expand(c, 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k, groups=c)


def _mask(b, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = torch.zeros(b, 1, h, w)
    m[:, :, 3:9, 2:10] = 1
    m[:, :, 5:12, 6:8] = 1  # an L-shape reaching the bottom edge (h = 12)
    m[1:, :, 0:2, 0:3] = 1  # a second blob touching the image corner in photo 1
    m[torch.rand(m.shape, generator=g) < 0.05] = 0  # holes
    return m


def test_outside_kept_inside_solves_the_poisson_equation():
    g = torch.Generator().manual_seed(1)
    photo = torch.rand(2, 3, 12, 14, generator=g, dtype=torch.float64) * 2 - 1
    source = torch.rand(2, 3, 12, 14, generator=g, dtype=torch.float64) * 2 - 1
    mask = _mask(2, 12, 14)
    out = poisson_blend(photo, source, mask)
    inside = mask.bool().expand_as(photo)
    assert torch.equal(out[~inside], photo[~inside])
    residual = (_laplacian(out) - _laplacian(source))[inside]
    assert residual.abs().max() < 1e-9
    assert not torch.allclose(out[inside], photo[inside])


def test_a_source_offset_by_a_constant_gives_the_photo_back():
    # only the source's gradients enter: photo + c has the photo's gradients
    photo = torch.rand(1, 3, 10, 10, dtype=torch.float64)
    mask = torch.zeros(10, 10)
    mask[2:8, 3:7] = 1
    out = poisson_blend(photo, photo + 0.7, mask)
    torch.testing.assert_close(out, photo, rtol=0, atol=1e-10)


def test_dtypes_shapes_and_errors():
    photo = torch.rand(3, 8, 8)  # unbatched, float32
    mask = torch.zeros(1, 8, 8)
    mask[0, 2:6, 2:6] = 1
    out = poisson_blend(photo, torch.zeros(3, 8, 8), mask[0])
    assert out.shape == (3, 8, 8) and out.dtype == torch.float32
    with pytest.raises(ValueError, match="whole image"):
        poisson_blend(photo, photo, torch.ones(8, 8))
    with pytest.raises(ValueError, match="same shape"):
        poisson_blend(photo, torch.zeros(3, 8, 9), mask[0])
    with pytest.raises(ValueError, match="mask has shape"):
        poisson_blend(photo, photo, torch.ones(4, 4))


def test_paste():
    photo = torch.zeros(1, 3, 6, 6)
    out = paste(photo, torch.ones(1, 3, 2, 3), (1, 2, 2, 3))
    assert out.sum() == 18 and out[0, :, 1:3, 2:5].eq(1).all() and photo.sum() == 0
    with pytest.raises(ValueError, match="resize the crop"):
        paste(photo, torch.ones(1, 3, 2, 2), (1, 2, 2, 3))
