"""The multi-scale conditional GAN's discriminator (eq. 4): one discriminator per pyramid level."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import Field
from torch import Tensor, nn

import synth
from synth.errors import RegistryError
from synth.parts.base import build_part

__all__ = ["PyramidDiscriminator"]


def _inner_spec() -> dict[str, Any]:
    return {"type": "core.patch_discriminator", "num_scales": 1}


class PyramidDiscriminator(synth.Discriminator):
    """Eq. 4: ``D_i`` scores level ``i`` of the pyramid, ``S^{n−i}(x)`` for a real ``x``.

    ``discriminator`` is a slot: each level gets its own copy of any registered discriminator
    (default ``core.patch_discriminator`` with ``num_scales: 1``), built with the runtime
    arguments this part received (``num_classes``); a conditional one resizes the condition to
    its level as usual. ``pyramid_levels`` is the generator's number of pyramid levels (a runtime
    argument) and ``scales`` an optional subset of them (0 = coarsest, -1 = finest).

    ``forward(image [B, 3, H, W], cond, *, pyramid=None)``: ``pyramid`` lists the levels
    coarsest first (the last is ``image``), as ``core.gan`` passes them: the generator's own
    for fakes, ``synth.nn.ops.pool_pyramid(real, sizes)`` for reals. Without it the levels are
    ``image`` average-pooled by ``2^(n−1−i)`` (``S`` = 2×2 average pooling, stride 2, applied
    ``n−1−i`` times). Each level's discriminator runs once on the whole batch (a loop over the
    levels only, which differ in size). Returns one ``DiscriminatorOutput`` whose ``logits``
    and ``features`` hold the levels' outputs, finest level first as every synth
    discriminator's scales (a level whose discriminator is itself multi-scale contributes each
    of its scales in turn), so core's GAN losses sum eq. 4 over levels (hinge, LSGAN or the
    paper's log loss as ``core.non_saturating``) and feature matching reads every level.

    State-dict keys: ``levels.<i>.<the inner discriminator's keys>`` with ``i`` the level index.
    """

    class Config(synth.PartConfig):
        discriminator: synth.PartSpec = Field(
            default_factory=_inner_spec, description="the discriminator of each level"
        )
        pyramid_levels: int | None = Field(
            None, ge=1, description="levels of the generator's pyramid (runtime argument)"
        )
        scales: list[int] | None = Field(
            None, description="levels to discriminate (0 = coarsest, -1 = finest); all"
        )
        num_classes: int | None = Field(
            None, ge=1, description="runtime argument, offered to each level's discriminator"
        )

    reads_pyramid: ClassVar[bool] = True
    config: Config

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        c = self.config
        if c.pyramid_levels is None:
            raise ValueError(
                "nested_scale.pyramid_discriminator needs pyramid_levels, the number of pyramid "
                "levels: compose it with a generator that has a pyramid (which offers it), e.g. "
                "one wrapped in nested_scale.pyramid, or pass pyramid_levels when building it alone"
            )
        self.num_scales = int(c.pyramid_levels)
        self.chosen = _levels(c.scales, self.num_scales)
        offered = {"num_classes": c.num_classes} if c.num_classes is not None else {}
        self.levels = nn.ModuleDict({str(i): self._level(offered) for i in self.chosen})

    def _level(self, offered: dict[str, Any]) -> synth.Discriminator:
        part = build_part(self.config.discriminator, **offered)
        if not isinstance(part, synth.Discriminator) or getattr(part, "reads_pyramid", False):
            raise TypeError(
                f"nested_scale.pyramid_discriminator: {self.config.discriminator['type']!r} "
                "cannot score one pyramid level; give a discriminator of single images, e.g. "
                "core.patch_discriminator"
            )
        return part

    @classmethod
    def requirements(cls, config: synth.PartConfig | None = None) -> frozenset[str]:
        """What each level's discriminator reads (e.g. ``label_map``), from its spec."""
        if config is None:
            return cls.requires
        spec = dict(config.discriminator)
        try:
            inner = synth.get_registry().resolve(spec.pop("type"))
        except RegistryError:  # the composer reports the unknown name, with the pip line
            return cls.requires
        k = getattr(config, "num_classes", None)
        if k is not None and "num_classes" in inner.Config.model_fields:
            spec["num_classes"] = k
        return frozenset(inner.requirements(inner.coerce_config(spec)))

    def pyramid_levels(self, image: Tensor) -> list[Tensor]:
        """``image [B, C, H, W]`` pooled by ``2^(n−1−i)`` for each level ``i`` (coarsest first)."""
        h, w = image.shape[-2:]
        n = self.num_scales
        sizes = [(h // 2 ** (n - 1 - i), w // 2 ** (n - 1 - i)) for i in range(n)]
        return synth.ops.pool_pyramid(image, sizes)

    def forward(
        self, image: Tensor, cond: synth.Condition, *, pyramid: Sequence[Tensor] | None = None
    ) -> synth.DiscriminatorOutput:
        """Per level (finest first): the level discriminator's logits and features."""
        levels = self.pyramid_levels(image) if pyramid is None else list(pyramid)
        if len(levels) != self.num_scales:
            raise ValueError(
                f"nested_scale.pyramid_discriminator was built for {self.num_scales} pyramid "
                f"levels but got {len(levels)}; build it with the generator it scores"
            )
        logits: list[Tensor] = []
        features: list[list[Tensor]] = []
        for i in reversed(self.chosen):
            out = self.levels[str(i)](levels[i], cond)
            logits += out.logits
            features += out.features or [[] for _ in out.logits]
        return synth.DiscriminatorOutput(logits=logits, features=features)


def _levels(scales: Sequence[int] | None, num_scales: int) -> list[int]:
    """The chosen level indices, coarsest first, each once."""
    if scales is None:
        return list(range(num_scales))
    bad = [k for k in scales if not -num_scales <= k < num_scales]
    if bad:
        raise ValueError(
            f"nested_scale.pyramid_discriminator: scales {bad} are not levels of a "
            f"{num_scales}-level pyramid (0 = coarsest .. {num_scales - 1} = finest)"
        )
    return sorted({k % num_scales for k in scales})
