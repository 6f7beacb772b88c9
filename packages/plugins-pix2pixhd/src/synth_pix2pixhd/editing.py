"""Interactive editing of label maps and instances (pix2pixHD §4.3, Fig. 1b–c).

The generator re-renders an edited scene with the same instance features
(``latents.spatial``) everywhere the edit did not touch, so untouched objects keep their
appearance. All helpers return new objects; inputs are not modified.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from synth import Condition, Latents

__all__ = ["add_instance", "edit_labels", "remove_instance"]


def _mask(region: Tensor | None, like: Tensor) -> Tensor:
    """``region`` (``[H, W]`` or ``[B, H, W]``, bool or 0/1) broadcast to ``like [B, H, W]``."""
    if region is None:
        return torch.ones_like(like, dtype=torch.bool)
    r = region.to(like.device).bool()
    return r.expand_as(like) if r.dim() == 2 else r


def edit_labels(
    cond: Condition, from_class: int, to_class: int, region: Tensor | None = None
) -> Condition:
    """Change the pixels of class ``from_class`` (inside ``region``, if given) to ``to_class``.

    ``cond.label_map [B, H, W]``; ``region``: ``[H, W]`` or ``[B, H, W]`` mask. The instance
    map is unchanged (a relabelled object keeps its outline and its features). Raises
    ``ValueError`` for class ids outside ``[0, num_classes)``.
    """
    if cond.label_map is None:
        raise ValueError("edit_labels needs a Condition with a label_map")
    k = cond.num_classes
    for name, c in (("from_class", from_class), ("to_class", to_class)):
        if k is not None and not 0 <= c < k:
            raise ValueError(f"{name}={c} is outside [0, {k})")
    sel = (cond.label_map == from_class) & _mask(region, cond.label_map)
    labels = torch.where(sel, torch.full_like(cond.label_map, to_class), cond.label_map)
    return dataclasses.replace(cond, label_map=labels)


def add_instance(
    cond: Condition,
    latents: Latents | None,
    mask: Tensor,
    class_id: int,
    *,
    instance_id: int | None = None,
    features: Tensor | None = None,
) -> tuple[Condition, Latents | None]:
    """Paint a new object: ``mask`` pixels get class ``class_id`` and a new instance id.

    Args:
        cond: with ``label_map`` and ``instance_map`` ``[B, H, W]``.
        latents: the instance features ``spatial [B, C, H, W]`` of the scene (or None).
        mask: ``[H, W]`` or ``[B, H, W]`` where the object goes.
        instance_id: its id (default: one more than the largest id in the map).
        features: ``[C]`` its feature vector (default zeros), e.g. a cluster centre
            ``sampler.centers[class_id, j]`` of a fitted ``ClusterSampler``; every other
            pixel keeps its features.
    Returns:
        ``(cond, latents)`` edited.
    """
    if cond.label_map is None or cond.instance_map is None:
        raise ValueError("add_instance needs a Condition with label_map and instance_map")
    m = _mask(mask, cond.label_map)
    new_id = int(cond.instance_map.max()) + 1 if instance_id is None else instance_id
    labels = torch.where(m, torch.full_like(cond.label_map, class_id), cond.label_map)
    inst = torch.where(m, torch.full_like(cond.instance_map, new_id), cond.instance_map)
    out = dataclasses.replace(cond, label_map=labels, instance_map=inst)
    if latents is None or latents.spatial is None:
        return out, latents
    sp = latents.spatial
    vec = sp.new_zeros(sp.shape[1]) if features is None else features.to(sp)
    spatial = torch.where(m[:, None], vec[None, :, None, None], sp)
    return out, dataclasses.replace(latents, spatial=spatial)


def remove_instance(
    cond: Condition,
    latents: Latents | None,
    instance_id: int,
    fill_class: int,
    *,
    fill_instance: int | None = None,
) -> tuple[Condition, Latents | None]:
    """Remove object ``instance_id``: its pixels become class ``fill_class`` and instance
    ``fill_instance`` (default ``fill_class``, the Cityscapes convention for "stuff").

    Where ``fill_instance`` already occurs in a sample, the removed pixels take that
    instance's mean feature (so the filled road looks like the rest of the road); otherwise
    zeros. Every other pixel keeps its features. Returns ``(cond, latents)`` edited.
    """
    if cond.label_map is None or cond.instance_map is None:
        raise ValueError("remove_instance needs a Condition with label_map and instance_map")
    fill_id = fill_class if fill_instance is None else fill_instance
    region = cond.instance_map == instance_id  # [B, H, W]
    labels = torch.where(region, torch.full_like(cond.label_map, fill_class), cond.label_map)
    inst = torch.where(region, torch.full_like(cond.instance_map, fill_id), cond.instance_map)
    out = dataclasses.replace(cond, label_map=labels, instance_map=inst)
    if latents is None or latents.spatial is None:
        return out, latents
    sp = latents.spatial
    donor = ((cond.instance_map == fill_id) & ~region)[:, None].to(sp.dtype)  # [B, 1, H, W]
    count = donor.sum(dim=(2, 3), keepdim=True)
    mean = (sp * donor).sum(dim=(2, 3), keepdim=True) / count.clamp_min(1)
    spatial = torch.where(region[:, None], mean.expand_as(sp), sp)
    return out, dataclasses.replace(latents, spatial=spatial)
