"""Editing a real photo (collage §4, Fig. 5): project -> collage -> blend, in one call.

1. crop the region of interest and resize it to the generator's size;
2. manifold projection (:func:`synth_collage.projection.project`): ``z`` with ``G(z) ≈ crop``;
3. the collage: generate from ``z`` under an edited Condition (label collaging: a spatial
   class map, ``class_weights``) or through any callable (feature collaging with the
   ``collage.feature_blend`` sampler, several layers, ...);
4. resize back and Poisson-blend (:func:`synth_collage.blending.poisson_blend`) into the photo
   inside the blend mask.

Each stage is also callable alone: :func:`crop_region`, ``project``, :func:`render_edit`,
:func:`blend_back`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

import synth

from .blending import paste, poisson_blend
from .projection import Projection, eval_mode, project

__all__ = ["PhotoEdit", "blend_back", "crop_region", "edit_photo", "render_edit"]

#: ``edit(model, latents) -> image [B, 3, h, w]``: a collage as a callable.
EditFn = Callable[[Any, synth.Latents], Tensor]
Box = tuple[int, int, int, int]


@dataclass
class PhotoEdit:
    """What :func:`edit_photo` made.

    Attributes:
        image: ``[B, 3, H, W]`` the edited photo (blended).
        crop: ``[B, 3, h, w]`` the region at the generator's size (the projection's target).
        reconstruction: ``[B, 3, h, w]`` ``G(z)`` of the projected codes.
        edited: ``[B, 3, h, w]`` the collage before blending.
        projection: the :class:`~synth_collage.projection.Projection` (codes, losses).
    """

    image: Tensor
    crop: Tensor
    reconstruction: Tensor
    edited: Tensor
    projection: Projection


def _check_box(photo: Tensor, region: Box) -> Box:
    if len(region) != 4:
        raise ValueError(f"region={region}: give (top, left, height, width) in pixels")
    top, left, hh, ww = (int(v) for v in region)
    h, w = photo.shape[-2:]
    if hh < 2 or ww < 2 or top < 0 or left < 0 or top + hh > h or left + ww > w:
        raise ValueError(
            f"region (top, left, height, width) = {region} does not fit the {h}x{w} photo; "
            "give a box of at least 2x2 inside it"
        )
    return top, left, hh, ww


def _resize(image: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)


def crop_region(photo: Tensor, region: Box, size: tuple[int, int]) -> Tensor:
    """``photo [B, 3, H, W]`` -> the ``region = (top, left, h, w)`` resized to ``size``."""
    top, left, hh, ww = _check_box(photo, region)
    return _resize(photo[..., top : top + hh, left : left + ww], size)


def render_edit(model: Any, latents: synth.Latents, edit: synth.Condition | EditFn) -> Tensor:
    """The collage of the projected codes: ``[B, 3, h, w]``.

    ``edit`` is either a Condition (e.g. with ``class_weights``, a spatial class map: label
    collaging with sCBN) generated with ``latents``, or a callable ``edit(model, latents)``
    returning the image (e.g. feature collaging through ``collage.feature_blend``).
    """
    with torch.no_grad(), eval_mode(model):
        if isinstance(edit, synth.Condition):
            return model.generator(edit, latents).image
        if callable(edit):
            return edit(model, latents)
    raise TypeError(
        f"edit is a {type(edit).__name__}; give a synth.Condition (label collage, e.g. "
        "class_weights) or a callable edit(model, latents) -> image"
    )


def blend_back(photo: Tensor, edited: Tensor, region: Box, *, mask: Tensor | None = None) -> Tensor:
    """Resize ``edited [B, 3, h, w]`` to the region, paste it and Poisson-blend it in.

    ``mask``: ``[B, 1, rh, rw]`` or ``[rh, rw]`` at the region's size (nonzero = take the
    edit); default: the region without its outermost pixel ring, which stays the photo's
    and gives the boundary values.
    """
    top, left, hh, ww = _check_box(photo, region)
    crop = _resize(edited.to(photo.dtype), (hh, ww))
    if mask is None:
        mask = torch.zeros(hh, ww, device=photo.device)
        mask[1:-1, 1:-1] = 1
    if tuple(mask.shape[-2:]) != (hh, ww):
        raise ValueError(
            f"mask is {tuple(mask.shape[-2:])} but the region is {hh}x{ww}; give the blend "
            "mask at the region's size"
        )
    full = torch.zeros(photo.shape[0], 1, *photo.shape[-2:], device=photo.device)
    full[..., top : top + hh, left : left + ww] = mask.to(full.dtype).expand(
        photo.shape[0], 1, hh, ww
    )
    return poisson_blend(photo, paste(photo, crop, (top, left, hh, ww)), full)


def edit_photo(
    model: Any,
    photo: Tensor,
    region: Box,
    *,
    cond: synth.Condition,
    edit: synth.Condition | EditFn,
    mask: Tensor | None = None,
    steps: int = 200,
    **projection: Any,
) -> PhotoEdit:
    """Edit ``region`` of ``photo`` with ``model``: project -> collage -> blend (Fig. 5).

    Args:
        model: a composed model with a generator reading ``z`` and a discriminator (the
            feature space of the projection), e.g. ``collage.resnet_generator`` +
            ``collage.projection_discriminator``, optionally ``collage.resnet_encoder`` as its
            injector (the projection's start).
        photo: ``[B, 3, H, W]`` in [-1, 1].
        region: ``(top, left, height, width)`` of the crop to edit.
        cond: the crop's Condition for the projection (e.g. ``class_id`` of the object, and
            ``size`` = the generator's output size).
        edit: the collage: a Condition (label collage, ``class_weights``) or a callable
            ``edit(model, latents) -> image`` (feature collage); see :func:`render_edit`.
        mask: the blend mask at the region's size (see :func:`blend_back`).
        steps: Adam steps of the projection (200 as the paper).
        projection: more keywords of :func:`~synth_collage.projection.project` (``lr``,
            ``encoder``, ``auxiliary``, ``generator``, ``progress``, ...).
    """
    if cond.size is None:
        raise ValueError(
            "edit_photo: cond.size is None; give the generator's output size, e.g. "
            "Condition(class_id=..., num_classes=K, size=(128, 128))"
        )
    crop = crop_region(photo, region, cond.size)
    proj = project(model, crop, cond, steps=steps, **projection)
    edited = render_edit(model, proj.latents, edit)
    image = blend_back(photo, edited, region, mask=mask)
    return PhotoEdit(
        image=image, crop=crop, reconstruction=proj.image, edited=edited, projection=proj
    )
