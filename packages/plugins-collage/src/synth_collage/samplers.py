"""Collage samplers: feature collaging (eq. 3) on any generator, label collaging at chosen
layers (eq. 2, §5.3).

``collage.feature_blend``
    Spatial feature blending (§3.2): at the chosen stages ``ℓ`` the target's feature map is
    replaced by ``F̃_0 = Σ_{i=0}^{R} M_i ⊙ U_i(F_i)`` (eq. 3), ``F_i`` reference ``i``'s own
    features, ``U_i`` an optional shift, ``M_0 = 1 - Σ_{i≥1} M_i`` the target's share. Works on
    every registered generator through its ``stages`` (DESIGN §3): forward hooks on
    ``generator.stages[ℓ]`` rewrite the stage's output, so the target's path carries the blend
    into every later stage while the references' paths stay their own. The target and all R
    references run in ONE batched forward (the official code runs one per reference).
``collage.label_collage``
    sCBN with a class map per layer (:func:`synth_collage.layer_class_maps`): the base images
    from the Condition's class, and a collage map acting on the chosen norm layers only, at a
    continuous intensity (Fig. 9, Fig. 12).

Both take their inputs as explicit, typed keywords after the shared head
``sample(model, cond, n, *, generator=None, ...)`` and return ``image [B·n, 3, H, W]`` ordered
``(b n)`` with the ``latents`` used. They do not change the grad mode or the train/eval mode:
run them in eval mode (``synth.load`` gives one), where batch norms use running statistics
and the rows of one batch are independent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

import synth
from synth.errors import CapabilityError
from synth.parts.samplers import prior_draw

from .norms import layer_class_maps, spatial_norms

if TYPE_CHECKING:
    from synth.model import SynthesisModel

__all__ = ["FeatureBlend", "LabelCollage", "blend_features", "shift_map"]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def shift_map(x: Tensor, dy: int, dx: int) -> Tensor:
    """``U``: translate ``x: [..., h, w]`` by ``(dy, dx)`` pixels (down, right), zero-filled."""
    if dy == 0 and dx == 0:
        return x
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[..., yd, xd] = x[..., ys, xs]
    return out


def _resize_weights(m: Tensor, size: tuple[int, int]) -> Tensor:
    """``[B, R, H, W]`` blend weights at a stage's size (area average when it divides)."""
    if tuple(m.shape[-2:]) == size:
        return m
    if m.shape[-2] % size[0] == 0 and m.shape[-1] % size[1] == 0:
        return F.adaptive_avg_pool2d(m, size)
    return F.interpolate(m, size=size, mode="bilinear", align_corners=False)


def blend_features(
    features: Tensor, masks: Tensor, shifts: Sequence[tuple[int, int]] | None = None
) -> Tensor:
    """Eq. 3 on one stage: ``F̃_0 = (1 - Σ_i M_i) ⊙ F_0 + Σ_{i≥1} M_i ⊙ U_i(F_i)``.

    Args:
        features: ``[M, R+1, C, h, w]``: the target's map (index 0) and the R references'.
        masks: ``[M, R, h, w]``: the references' weights at this size.
        shifts: R ``(dy, dx)`` in this stage's pixels (``None``: no shift).
    Returns ``[M, C, h, w]``.
    """
    refs = features[:, 1:]
    if shifts is not None:
        refs = torch.stack([shift_map(refs[:, i], dy, dx) for i, (dy, dx) in enumerate(shifts)], 1)
    m = rearrange(masks.to(features.dtype), "m r h w -> m r 1 h w")
    return features[:, 0] * (1 - m.sum(1)) + (m * refs).sum(1)


def _check_masks(masks: Tensor, b: int, who: str, what: str) -> Tensor:
    """``[B, R, H, W]`` (``[R, H, W]`` is shared by every input), non-negative, ``Σ ≤ 1``."""
    if masks.dim() == 3:
        masks = masks.unsqueeze(0).expand(b, -1, -1, -1)
    if masks.dim() != 4 or masks.shape[0] != b:
        raise ValueError(
            f"{who}: {what} has shape {tuple(masks.shape)}; give [B, R, H, W] = [{b}, R, H, W] "
            "(one weight map per reference) or [R, H, W]"
        )
    if bool((masks < 0).any()) or float(masks.sum(1).max()) > 1 + 1e-4:
        raise ValueError(
            f"{who}: {what} must be non-negative with Σ_i M_i ≤ 1 per pixel (the target keeps "
            f"1 - Σ_i M_i); got min {float(masks.min()):.3g}, max sum "
            f"{float(masks.sum(1).max()):.3g}: normalise them"
        )
    return masks


def _stages(model: SynthesisModel, who: str) -> nn.ModuleList:
    stages = getattr(model.generator, "stages", None)
    if not isinstance(stages, nn.ModuleList):
        raise CapabilityError(
            f"{who} rewrites the generator's stage outputs, but {type(model.generator).__name__} "
            "keeps no `stages` ModuleList (DESIGN §3): register its stages there"
        )
    return stages


def _per_sample(lat: synth.Latents, b: int, n: int, who: str, what: str) -> synth.Latents:
    """Codes with batch ``B`` (shared by an input's n samples) or ``B·n``, as ``B·n``."""
    sizes = {int(v.shape[0]) for v in _tensors(lat)}
    if sizes == {b * n}:
        return lat
    if sizes == {b}:
        return lat.repeat_interleave(n)
    raise ValueError(
        f"{who}: {what} has batch size(s) {sorted(sizes)}; give one code per input ({b}) or per "
        f"sample ({b * n})"
    )


def _tensors(lat: synth.Latents) -> list[Tensor]:
    out = [v for v in (lat.z, lat.spatial) if v is not None]
    return [*out, *(lat.styles or []), *(lat.class_codes or []), *lat.extras.values()]


# ---------------------------------------------------------------------------------------------
# feature blending
# ---------------------------------------------------------------------------------------------


class FeatureBlend(synth.Sampler):
    """Feature collaging (eq. 3) on any generator, all references in one batched forward.

    Keywords:
        masks: ``[B, R, H, W]`` (or ``[R, H, W]`` for every input) weights of the R references
            at the output size, non-negative with ``Σ_i M_i ≤ 1`` per pixel (the target keeps
            ``1 - Σ_i M_i``); resized to each stage (area average). Or a mapping
            ``{stage: [B, R, h, w]}``: the maps ``M^(ℓ)`` per layer (any size), naming the
            layers (§5.3, Fig. 13).
        references: R codes (one ``synth.Latents`` per reference, batch ``B`` or ``B·n``);
            default: R prior draws per sample.
        target: the codes of the images edited (batch ``B`` or ``B·n``); default: prior draws.
        layers: stage indices to blend at (default: every stage, as the official code: after
            ``l1`` and after every block); negative indices count from the end.
        shifts: R ``(dy, dx)`` offsets in output pixels (``U_i``: reference ``i``'s features
            move by ``(dy, dx) / stage_scale``), default none.

    Returns ``image [B·n, 3, H, W]`` (the blends, ordered ``(b n)``), ``latents`` (the
    targets'), and ``extras["references"]: [B·n, R, 3, H, W]`` (the references' own images).
    """

    class Config(synth.PartConfig):
        pass

    stochastic = True

    def example_inputs(
        self, *, batch_size: int, size: tuple[int, int], generator: torch.Generator
    ) -> dict[str, Any]:
        """Conformance inputs: two references, each owning a half of the image."""
        h, w = size
        masks = torch.zeros(batch_size, 2, h, w)
        masks[:, 0, : h // 2] = 0.5
        masks[:, 1, h // 2 :, : w // 2] = 1.0
        return {"kwargs": {"masks": masks}}

    def sample(
        self,
        model: SynthesisModel,
        cond: synth.Condition,
        n: int,
        *,
        generator: torch.Generator | None = None,
        masks: Tensor | Mapping[int, Tensor],
        references: Sequence[synth.Latents] | None = None,
        target: synth.Latents | None = None,
        layers: Sequence[int] | None = None,
        shifts: Sequence[tuple[int, int]] | None = None,
    ) -> synth.SynthesisOutput:
        """``n`` blends per input (see the class docstring): ``image [B·n, 3, H, W]``."""
        who = "collage.feature_blend"
        stages = _stages(model, who)
        gen = model.generator
        b = cond.batch_size
        num = len(stages)
        if isinstance(masks, Mapping):
            if layers is not None and sorted(layers) != sorted(masks):
                raise ValueError(
                    f"{who}: masks is given per layer {sorted(masks)} and layers={list(layers)}; "
                    "give one of them (per-layer masks name their layers)"
                )
            per_layer = {int(k): _check_masks(v, b, who, f"masks[{k}]") for k, v in masks.items()}
        else:
            full = _check_masks(masks, b, who, "masks")
            per_layer = {i: full for i in (range(num) if layers is None else layers)}
        per_layer = {(i + num) % num if -num <= i < num else i: v for i, v in per_layer.items()}
        bad = sorted(i for i in per_layer if not 0 <= i < num)
        if bad:
            raise ValueError(f"{who}: layers {bad} do not exist; the generator has {num} stages")
        rs = {int(v.shape[1]) for v in per_layer.values()}
        if len(rs) != 1:
            raise ValueError(f"{who}: the per-layer masks disagree on R (maps per layer: {rs})")
        r = rs.pop()
        if references is not None and len(references) != r:
            raise ValueError(
                f"{who}: {len(references)} references but masks has {r} maps; give one mask "
                "per reference"
            )
        if shifts is not None and len(shifts) != r:
            raise ValueError(
                f"{who}: {len(shifts)} shifts for {r} references; give one (dy, dx) each"
            )
        scales = list(getattr(gen, "stage_scales", [1] * num))

        cond_n = cond.repeat_interleave(n)
        m = b * n
        tgt = (
            prior_draw(model, cond_n, generator, who)
            if target is None
            else _per_sample(target, b, n, who, "target")
        )
        refs = [
            prior_draw(model, cond_n, generator, who)
            if references is None
            else _per_sample(ref, b, n, who, f"references[{i}]")
            for i, ref in enumerate(references if references is not None else [None] * r)
        ]
        # one batch ordered (m r): row m·(R+1) is sample m's target, the next R its references
        order = torch.arange(m * (r + 1)).view(r + 1, m).t().flatten()
        latents = synth.Latents.cat([tgt, *refs])[order.to(cond.device)]
        cond_all = cond_n.repeat_interleave(r + 1)

        def hook_for(stage: int):
            masks_n = per_layer[stage].repeat_interleave(n, dim=0).float()
            scale = scales[stage]
            stage_shifts = None
            if shifts is not None:
                stage_shifts = [(round(dy / scale), round(dx / scale)) for dy, dx in shifts]

            def hook(module: nn.Module, args: Any, out: Any) -> Tensor:
                if not isinstance(out, Tensor):
                    raise CapabilityError(
                        f"{who}: stage {stage} of {type(gen).__name__} returns "
                        f"{type(out).__name__}, not a feature map; blend at other layers"
                    )
                feats = rearrange(out, "(m r) c h w -> m r c h w", r=r + 1)  # a view
                mk = _resize_weights(masks_n.to(out.device), tuple(out.shape[-2:]))
                blended = blend_features(feats, mk, stage_shifts)
                if torch.is_grad_enabled() and out.requires_grad:
                    # autograd may have saved `out` (e.g. a final ReLU's result): a new tensor
                    joined = torch.cat([blended.unsqueeze(1), feats[:, 1:]], dim=1)
                    return rearrange(joined, "m r c h w -> (m r) c h w")
                # inference: overwrite the targets' rows only, no copy of the R reference paths
                # (memory; on CPU the copy was a few % of the time, the convs dominate)
                feats[:, 0] = blended
                return out

            return hook

        handles = [stages[i].register_forward_hook(hook_for(i)) for i in sorted(per_layer)]
        try:
            out = gen(cond_all, latents)
        finally:
            for h in handles:
                h.remove()
        images = rearrange(out.image, "(m r) c h w -> m r c h w", r=r + 1)
        pyramid = None
        if out.pyramid is not None:
            pyramid = [lvl[:: r + 1] for lvl in out.pyramid]
        return synth.SynthesisOutput(
            image=images[:, 0],
            pyramid=pyramid,
            latents=tgt,
            extras={"references": images[:, 1:]},
        )


# ---------------------------------------------------------------------------------------------
# label collaging at chosen layers
# ---------------------------------------------------------------------------------------------


class LabelCollage(synth.Sampler):
    """Label collaging (eq. 2) with a class map on chosen norm layers only (§5.3).

    Keywords:
        class_weights: ``[B, K, H, W]`` the collage map (e.g. :func:`synth_collage.collage_map`).
        layers: indices of the spatial-norm layers (:func:`synth_collage.spatial_norms`, in
            forward order; for ``collage.resnet_generator`` two per block) that read it;
            default: all. The other layers read the Condition (its class id or class map).
        intensity: α: chosen layers read ``(1 - α)·W_cond + α·class_weights`` (Fig. 9).
        latents: the base images' codes (batch ``B`` or ``B·n``); default prior draws.

    Returns ``image [B·n, 3, H, W]`` ordered ``(b n)`` and the ``latents`` used; the same
    ``latents`` with the plain Condition give the images before the collage.
    """

    class Config(synth.PartConfig):
        pass

    stochastic = True

    def example_inputs(
        self, *, batch_size: int, size: tuple[int, int], generator: torch.Generator
    ) -> dict[str, Any]:
        """Conformance inputs: a class-conditional tiny ResNet model, class 1 painted on top."""
        from .recipes import tiny_collage_model

        model = tiny_collage_model()
        k, res = model.generator.config.num_classes, model.generator.config.resolution
        ids = torch.randint(0, k, (batch_size,), generator=generator)
        w = torch.zeros(batch_size, k, res, res)
        w[:, 1, : res // 2] = 1
        w[:, :, res // 2 :] = F.one_hot(ids, k).float()[:, :, None, None]
        cond = synth.Condition(class_id=ids, num_classes=k, size=(res, res))
        return {"model": model, "cond": cond, "kwargs": {"class_weights": w, "layers": [0, 1]}}

    def sample(
        self,
        model: SynthesisModel,
        cond: synth.Condition,
        n: int,
        *,
        generator: torch.Generator | None = None,
        class_weights: Tensor,
        layers: Sequence[int] | None = None,
        intensity: float = 1.0,
        latents: synth.Latents | None = None,
    ) -> synth.SynthesisOutput:
        """``n`` collaged samples per input: ``image [B·n, 3, H, W]``."""
        who = "collage.label_collage"
        norms = spatial_norms(model.generator)
        if not norms:
            raise CapabilityError(
                f"{who} needs a generator whose norm slot holds collage.scbn or "
                "collage.spatial_adain; compose it with norm: {type: collage.scbn}"
            )
        if not 0.0 <= intensity <= 1.0:
            raise ValueError(f"{who}: intensity={intensity} must lie in [0, 1]")
        b = cond.batch_size
        k = norms[0].config.num_classes
        if class_weights.dim() != 4 or class_weights.shape[:2] != (b, k):
            raise ValueError(
                f"{who}: class_weights has shape {tuple(class_weights.shape)}; give "
                f"[B, K, H, W] = [{b}, {k}, H, W]"
            )
        chosen = list(range(len(norms))) if layers is None else [int(i) for i in layers]
        cond_n = cond.repeat_interleave(n)
        lat = (
            prior_draw(model, cond_n, generator, who)
            if latents is None
            else _per_sample(latents, b, n, who, "latents")
        )
        w = class_weights.float().repeat_interleave(n, dim=0)
        if intensity < 1.0:
            if cond_n.class_weights is not None:
                base = F.interpolate(
                    cond_n.class_weights.float(), size=w.shape[-2:], mode="bilinear"
                )
            elif cond_n.label_map is not None:  # the per-pixel classes, nearest-resized
                labels = F.interpolate(
                    cond_n.label_map[:, None].float(), size=w.shape[-2:], mode="nearest"
                )
                base = rearrange(F.one_hot(labels[:, 0].long(), k).float(), "b h w k -> b k h w")
            elif cond_n.class_id is not None:
                base = F.one_hot(cond_n.class_id, k).float()[:, :, None, None].expand_as(w)
            else:
                raise ValueError(
                    f"{who}: intensity < 1 mixes with the Condition's classes, but it has no "
                    "class_weights, label_map or class_id; give one, or intensity=1"
                )
            w = (1 - intensity) * base + intensity * w
        with layer_class_maps(model.generator, {i: w for i in chosen}):
            out = model.generator(cond_n, lat)
        return synth.SynthesisOutput(image=out.image, pyramid=out.pyramid, latents=lat)
