"""Label collaging: spatial conditional normalisation (§3.1, eq. 2).

``collage.scbn``
    Spatial conditional batch normalisation: batch norm (no affine, eps 2e-5 as Chainer's
    ``BatchNormalization``; running statistics in eval) followed by per-pixel
    ``γ̃ · x̂ + β̃`` with ``γ̃_{k,h,w} = Σ_c W_{h,w}(c) · γ_k(c)`` (eq. 2) and the same for β.
    ``γ(c), β(c)`` are class embeddings (``[K, C]``, initialised 1 and 0, the official keys
    ``gammas/W`` and ``betas/W``). A class id acts as a uniform one-hot map, which is plain
    CBN (eq. 1), so a CBN checkpoint runs unchanged in the sCBN model.
``collage.spatial_adain``
    The same mixing for AdaIN-style norms (the paper treats StyleGAN's AdaIN as a CBN, §5):
    instance norm, then ``x̂ · (1 + γ̃) + β̃`` where ``γ(c) = A_γ s + E_γ(c)`` (the stage's style
    ``s`` through a linear map, as ``core.adain``, plus a class embedding), mixed per pixel by
    ``W``. Fits core's AdaIN slots (runtime arguments ``channels``, ``stage``, ``style_dim``,
    ``num_classes``).

Which map each layer reads: ``Condition.class_weights`` (``[B, K, H, W]``, area-averaged to
the layer's size by :meth:`synth.Context.class_weights`), else the one-hot ``label_map`` (in
label-map generators), else ``Condition.class_id`` as a uniform map. Per-layer maps (DESIGN §3, the layer study of §5.3) are given with
:func:`layer_class_maps`, which rewrites the context each chosen layer sees, so any generator
whose norm slot holds these blocks can be collaged at chosen layers without code of its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal

import torch
from einops import einsum, rearrange
from pydantic import Field
from torch import Tensor, nn

import synth
from synth.nn.norms import batch_normalize, instance_normalize

__all__ = [
    "SpatialAdaIN",
    "SpatialCBN",
    "SpatialNorm",
    "class_map",
    "collage_map",
    "layer_class_maps",
    "mix_classes",
    "spatial_norms",
]

#: Chainer's ``BatchNormalization`` default eps, used by the official generators.
CHAINER_BN_EPS = 2e-5


# ---------------------------------------------------------------------------------------------
# class maps
# ---------------------------------------------------------------------------------------------


def class_map(ctx: synth.Context, size: tuple[int, int], num_classes: int, who: str) -> Tensor:
    """The class-weight map ``W: [B, K, h, w]`` a layer of size ``size`` reads.

    ``Condition.class_weights`` (area-averaged to ``size``) when given, else the one-hot
    ``label_map`` (nearest-resized), else ``class_id`` as a uniform one-hot map; a ``ValueError`` naming the fields when neither is there or ``K``
    disagrees with the layer's ``num_classes``.
    """
    cond = ctx.cond
    if cond.class_weights is not None:
        if cond.class_weights.shape[1] != num_classes:
            raise ValueError(
                f"{who} has num_classes={num_classes} but Condition.class_weights has "
                f"{cond.class_weights.shape[1]} channels: give one map per class, "
                f"[B, {num_classes}, H, W]"
            )
        return ctx.class_weights(size)
    if cond.label_map is not None:
        return ctx.one_hot(size).float()
    if cond.class_id is not None:
        one_hot = torch.nn.functional.one_hot(cond.class_id, num_classes).float()
        return rearrange(one_hot, "b k -> b k 1 1").expand(-1, -1, *size)
    raise ValueError(
        f"{who} reads the class of each pixel from Condition.class_weights ([B, K, H, W]), "
        "label_map ([B, H, W]) or class_id ([B]); the batch has none: give "
        "Condition(class_id=..., num_classes=K) or Condition(class_weights=..., num_classes=K)"
    )


def mix_classes(ctx: synth.Context, size: tuple[int, int], table: Tensor, who: str) -> Tensor:
    """Eq. 2: ``Σ_c W_{h,w}(c) · table[c]`` per pixel, ``table: [K, C]`` -> ``[B, C, h, w]``.

    With only ``class_id`` (a uniform map) this is the row lookup ``table[class_id]``,
    ``[B, C, 1, 1]`` (broadcasts): the same numbers without a ``[B, K, h, w]`` map.
    """
    cond = ctx.cond
    if cond.class_weights is None and cond.label_map is None and cond.class_id is not None:
        # ids were checked against cond.num_classes at the boundary (no data-dependent branch
        # here: the forward compiles without graph breaks)
        if cond.num_classes is not None and cond.num_classes > table.shape[0]:
            raise ValueError(
                f"{who} has num_classes={table.shape[0]} but the Condition has num_classes="
                f"{cond.num_classes}: build the model for {cond.num_classes} classes"
            )
        return rearrange(table.float()[cond.class_id], "b c -> b c 1 1")
    weights = class_map(ctx, size, table.shape[0], who).float()
    return einsum(weights, table.float(), "b k h w, k c -> b c h w")


def collage_map(
    base: Tensor,
    target: Tensor | int,
    region: Tensor,
    num_classes: int,
    intensity: float = 1.0,
) -> Tensor:
    """A label collage: class ``target`` painted into ``region`` over the ``base`` class.

    Args:
        base: ``LongTensor[B]`` class of each image outside the region.
        target: the class painted into the region (int or ``LongTensor[B]``).
        region: ``[B, 1, H, W]`` in ``[0, 1]`` (1 = inside; soft edges allowed).
        num_classes: K.
        intensity: α in ``[0, 1]``: inside the region ``W = (1-α)·onehot(base) + α·onehot(target)``
            (Fig. 9's continuous intensity).

    Returns ``W: [B, K, H, W]``, summing to 1 at every pixel.
    """
    if not 0.0 <= intensity <= 1.0:
        raise ValueError(f"collage_map: intensity={intensity} must lie in [0, 1]")
    b = base.shape[0]
    target_t = torch.as_tensor(target, device=base.device).expand(b)
    one = torch.nn.functional.one_hot
    src = rearrange(one(base, num_classes).float(), "b k -> b k 1 1")
    dst = rearrange(one(target_t, num_classes).float(), "b k -> b k 1 1")
    alpha = region.float() * intensity
    return src * (1 - alpha) + dst * alpha


# ---------------------------------------------------------------------------------------------
# blocks
# ---------------------------------------------------------------------------------------------


class SpatialNorm(synth.ConditioningBlock):
    """Base of the spatial class-conditional norms: what :func:`layer_class_maps` looks for."""

    class Config(synth.PartConfig):
        channels: int = Field(ge=1, description="C (runtime argument, set by the host)")
        num_classes: int = Field(ge=1, description="K (runtime argument, set by the host)")
        condition: Literal["class_id", "class_weights", "label_map", "any"] = Field(
            "class_id",
            description="the Condition field the compose-time check asks for ('any': none, so "
            "a model takes Condition(class_id=...) as well as Condition(class_weights=...), "
            "checked at run time); at run time the block reads class_weights when given, else "
            "label_map (one-hot), else class_id",
        )

    config: Any

    @classmethod
    def requirements(cls, config: synth.PartConfig | None = None) -> frozenset[str]:
        field = getattr(config, "condition", "class_id") if config is not None else "class_id"
        return cls.requires if field == "any" else cls.requires | {field}

    def example_inputs(
        self, *, batch_size: int, size: tuple[int, int], generator: torch.Generator
    ) -> dict[str, Any]:
        """Conformance inputs: a soft class map (the spatial case) at half the size."""
        k, c = self.config.num_classes, self.config.channels
        h, w = size[0] // 2, size[1] // 2
        weights = torch.randn(batch_size, k, h, w, generator=generator).softmax(1)
        x = torch.randn(batch_size, c, h, w, generator=generator).requires_grad_(True)
        cond = synth.Condition(class_weights=weights, num_classes=k)
        return {"x": x, "cond": cond}


class SpatialCBN(SpatialNorm):
    """Spatial conditional batch norm (eq. 2): ``x: [B, C, H, W] -> [B, C, H, W]``.

    ``x̂ = BN(x)`` without affine (batch statistics in training, running ones in eval; fp32),
    then ``γ̃ ⊙ x̂ + β̃`` with ``γ̃ = Σ_c W(c) γ(c)``, ``β̃ = Σ_c W(c) β(c)`` per pixel, ``W`` from
    :func:`class_map`. ``gammas.weight``/``betas.weight``: ``[K, C]``, initialised 1 and 0.
    """

    class Config(SpatialNorm.Config):
        eps: float = Field(CHAINER_BN_EPS, gt=0, description="Chainer's BN eps (2e-5)")
        momentum: float = Field(0.1, ge=0, le=1, description="Chainer's decay 0.9")

    requires: ClassVar[frozenset[str]] = frozenset()
    config: Config

    def __init__(self, config: Config | dict | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        cfg = self.config
        self.bn = nn.BatchNorm2d(cfg.channels, eps=cfg.eps, momentum=cfg.momentum, affine=False)
        self.gammas = nn.Embedding(cfg.num_classes, cfg.channels)
        self.betas = nn.Embedding(cfg.num_classes, cfg.channels)
        nn.init.ones_(self.gammas.weight)
        nn.init.zeros_(self.betas.weight)

    def forward(self, x: Tensor, ctx: synth.Context) -> Tensor:
        """``x: [B, C, H, W]`` -> ``γ̃ ⊙ BN(x) + β̃`` (eq. 2), same shape and dtype."""
        normed = batch_normalize(x, self.bn)  # fp32
        size = tuple(x.shape[-2:])
        gamma = mix_classes(ctx, size, self.gammas.weight, "collage.scbn")
        beta = mix_classes(ctx, size, self.betas.weight, "collage.scbn")
        return (normed * gamma + beta).to(x.dtype)


class SpatialAdaIN(SpatialNorm):
    """Spatial class-conditional AdaIN: ``x: [B, C, H, W] -> [B, C, H, W]``.

    ``x̂ = IN(x)`` (fp32), styles ``s = latents.styles[stage]: [B, S]``;
    ``γ(c) = A_γ s + E_γ(c)``, ``β(c) = A_β s + E_β(c)`` (``E``: ``[K, C]`` embeddings, init 0),
    mixed per pixel as eq. 2; output ``x̂ ⊙ (1 + γ̃) + β̃`` (``core.adain``'s form). Since
    ``Σ_c W(c) = 1``, ``γ̃ = A_γ s + Σ_c W(c) E_γ(c)``.
    """

    class Config(SpatialNorm.Config):
        stage: int = Field(ge=0, description="stage index (runtime argument)")
        style_dim: int = Field(description="S, size of each style code (runtime argument)")
        eps: float = Field(1e-5, gt=0)

    requires: ClassVar[frozenset[str]] = frozenset({"styles"})
    config: Config

    def __init__(self, config: Config | dict | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        cfg = self.config
        if cfg.style_dim < 1:
            raise ValueError(
                "collage.spatial_adain needs style_dim > 0: set style_dim on the generator that "
                f"hosts it (got style_dim={cfg.style_dim})"
            )
        self.affine = nn.Linear(cfg.style_dim, 2 * cfg.channels)
        self.class_gamma = nn.Embedding(cfg.num_classes, cfg.channels)
        self.class_beta = nn.Embedding(cfg.num_classes, cfg.channels)
        # small random init (not 0): classes differ from the first step, and every parameter
        # gets a gradient (the conformance kit checks it)
        nn.init.normal_(self.class_gamma.weight, std=0.02)
        nn.init.normal_(self.class_beta.weight, std=0.02)

    def example_inputs(
        self, *, batch_size: int, size: tuple[int, int], generator: torch.Generator
    ) -> dict[str, Any]:
        out = super().example_inputs(batch_size=batch_size, size=size, generator=generator)
        s = self.config.style_dim
        styles = [
            torch.randn(batch_size, s, generator=generator) for _ in range(self.config.stage + 1)
        ]
        out["latents"] = synth.Latents(styles=styles)
        return out

    def forward(self, x: Tensor, ctx: synth.Context) -> Tensor:
        """``x: [B, C, H, W]`` -> ``IN(x) ⊙ (1 + γ̃) + β̃``, same shape and dtype."""
        styles = ctx.latents.styles
        if styles is None or ctx.stage >= len(styles):
            have = 0 if styles is None else len(styles)
            raise ValueError(
                f"collage.spatial_adain at stage {ctx.stage} reads latents.styles[{ctx.stage}] "
                f"but {have} style code(s) were given: compose with an injector that provides "
                "'styles' (core.gaussian) or pass one [B, style_dim] code per stage"
            )
        size = tuple(x.shape[-2:])
        gamma_s, beta_s = rearrange(
            self.affine(styles[ctx.stage]).float(), "b (two c) -> two b c 1 1", two=2
        )
        who = "collage.spatial_adain"
        gamma = gamma_s + mix_classes(ctx, size, self.class_gamma.weight, who)
        beta = beta_s + mix_classes(ctx, size, self.class_beta.weight, who)
        return (instance_normalize(x, self.config.eps) * (1 + gamma) + beta).to(x.dtype)


# ---------------------------------------------------------------------------------------------
# per-layer class maps
# ---------------------------------------------------------------------------------------------


def spatial_norms(module: nn.Module) -> list[SpatialNorm]:
    """The spatial norms of ``module`` in forward (registration) order: layer 0, 1, ...

    For ``collage.resnet_generator`` these are block 1's ``b1``, ``b2``, block 2's ``b1``, ...
    (the official generator's CBN layers, two per block).
    """
    return [m for m in module.modules() if isinstance(m, SpatialNorm)]


@contextlib.contextmanager
def layer_class_maps(
    module: nn.Module, maps: Mapping[int, Tensor] | Sequence[Tensor | None]
) -> Iterator[list[SpatialNorm]]:
    """Give chosen spatial-norm layers their own class map for the forwards inside the block.

    ``maps``: layer index (see :func:`spatial_norms`) -> ``[B, K, H, W]`` class weights (any
    size; area-averaged or resized to the layer's size), or a sequence with one entry per layer
    (``None`` keeps the Condition's map). Layers not named read the Condition as usual, so a
    collage acts on the chosen layers only (§5.3, Fig. 12). A map with one row per input also
    serves a forward over several rows per input ordered input-major (a sampler's ``(b n)``
    samples, ``collage.feature_blend``'s target and reference paths): it is repeated.
    """
    norms = spatial_norms(module)
    items = dict(enumerate(maps)) if not isinstance(maps, Mapping) else dict(maps)
    bad = sorted(i for i in items if not 0 <= i < len(norms))
    if bad:
        raise ValueError(
            f"layer_class_maps: layers {bad} do not exist; the module has {len(norms)} spatial "
            f"norm layers (0..{len(norms) - 1})"
        )
    handles = []

    def hook_for(weights: Tensor):
        def hook(block: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
            x, ctx = args[0], args[1]
            w = weights.to(x.device)
            if w.shape[0] != x.shape[0] and x.shape[0] % w.shape[0] == 0:
                # the samplers run input-major rows (an input's n samples, its blend paths):
                # each input's map is shared by its rows
                w = w.repeat_interleave(x.shape[0] // w.shape[0], dim=0)
            cond = dataclasses.replace(ctx.cond, class_weights=w, check=False)
            return (x, synth.Context(cond, ctx.latents, ctx.stage), *args[2:])

        return hook

    try:
        for i, weights in items.items():
            if weights is None:
                continue
            k = norms[i].config.num_classes
            if weights.dim() != 4 or weights.shape[1] != k:
                raise ValueError(
                    f"layer_class_maps: the map of layer {i} has shape {tuple(weights.shape)}; "
                    f"expected [B, {k}, H, W]"
                )
            handles.append(norms[i].register_forward_pre_hook(hook_for(weights)))
        yield norms
    finally:
        for h in handles:
            h.remove()
