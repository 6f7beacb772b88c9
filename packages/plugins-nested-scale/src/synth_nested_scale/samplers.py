"""Scale-specific editing (Fig. 1, Fig. 7, supplement Figs. 11-14): change the code of chosen
pyramid levels and keep every other one.

A nested-scale generator takes one code per pyramid level, ``Latents.styles[k]`` (coarsest
first); replacing ``styles[k]`` leaves every coarser level unchanged (eqs. 2-3), so these
samplers edit the image from level ``k`` on. Both take their inputs as explicit, typed keywords
after the shared head ``sample(model, cond, n, *, generator=None, ...)`` and run the generator
once on all ``B·n`` codes; they return ``image [B·n, 3, H, W]`` ordered ``(b n)``, its
``pyramid`` and the ``latents`` that made it. They do not change the grad mode: wrap inference
in ``torch.no_grad()``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import torch
from einops import rearrange
from torch import Tensor

import synth
from synth.errors import CapabilityError
from synth.parts.samplers import generate_batched, prior_draw

if TYPE_CHECKING:
    from synth.model import SynthesisModel

__all__ = ["ScaleEdit", "ScaleInterpolate", "tiny_nested_model"]

#: A small decoder for checks: 4-class label maps at 32×32, four levels (4×4 .. 32×32).
TINY_DECODER: dict[str, Any] = {
    "type": "nested_scale.pyramid_decoder",
    "input": "label_map",
    "num_classes": 4,
    "resolution": 32,
    "num_scales": 4,
    "channels": 8,
    "encoder_channels": [8, 8, 8, 8, 8],
    "style_dim": 4,
    "mapping_layers": 2,
}


def tiny_nested_model(seed: int = 0) -> SynthesisModel:
    """A composed tiny pyramid decoder with ``core.gaussian`` (shared styles), in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = synth.compose(
            {
                "generator": TINY_DECODER,
                "injector": {"type": "core.gaussian", "shared_styles": True},
            }
        )
    return model.eval()


#: What a scale sampler without an injector needs.
_NO_PRIOR = "compose it with one that draws per-scale styles (core.gaussian)"


def _styles(latents: synth.Latents, batch: int, who: str, which: str) -> list[Tensor]:
    """``latents.styles`` (one ``[B, S]`` per level), checked against the batch size."""
    if not latents.styles:
        raise CapabilityError(
            f"{who} edits the per-scale codes Latents.styles, which {which} lacks: use a "
            "nested-scale generator (nested_scale.pyramid_decoder, or nested_scale.pyramid "
            "around any generator) with an injector that draws styles (core.gaussian)"
        )
    sizes = {int(s.shape[0]) for s in latents.styles}
    if sizes != {batch}:
        raise ValueError(
            f"{who}: {which} has batch size(s) {sorted(sizes)} but the condition has {batch} "
            "inputs; give one code per input"
        )
    return list(latents.styles)


def _check_levels(levels: Sequence[int], count: int, who: str) -> list[int]:
    """``levels`` as indices in ``0..count-1`` (negative ones count from the finest)."""
    bad = [k for k in levels if not -count <= int(k) < count]
    if bad or not levels:
        raise ValueError(
            f"{who}: scales {list(levels)} are not levels of the model's {count} per-scale "
            f"codes (0 = coarsest .. {count - 1} = finest); name at least one"
        )
    return sorted({int(k) % count for k in levels})


class _Base(synth.Sampler):
    def example_inputs(
        self, *, batch_size: int, size: tuple[int, int], generator: torch.Generator
    ) -> dict[str, Any]:
        """A tiny pyramid decoder (:func:`tiny_nested_model`), 4-class label maps at 32×32,
        three samples per input and the sampler's keywords."""
        import synth.testing

        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        cond = synth.testing.make_condition(
            {"label_map"}, batch_size=batch_size, size=32, num_classes=4, generator=generator
        )
        kwargs = self._example_keywords()
        return {"model": tiny_nested_model(seed), "cond": cond, "n": 3, "kwargs": kwargs}

    def _example_keywords(self) -> dict[str, Any]:
        return {}


class ScaleEdit(_Base):
    """Resample the codes of chosen scales, keep the rest (Fig. 1; the paper's Fig. 7 protocol).

    Keywords: ``scales`` (required: pyramid levels whose code ``styles[k]`` is redrawn, 0 =
    coarsest, -1 = finest) and ``reference`` (``Latents`` with batch ``B``: the codes kept; a
    prior draw from ``generator`` when not given). Each of the ``n`` samples per input takes the
    chosen levels' codes from one fresh prior draw (with ``core.gaussian``'s ``shared_styles``
    every chosen level gets that draw's single code) and every other field from the reference
    (the other levels' codes, ``z``, extras). Levels coarser than the coarsest chosen one are
    therefore the reference's exactly. Draw order: the reference (when drawn), then the codes.
    """

    def _example_keywords(self) -> dict[str, Any]:
        return {"scales": [1]}

    def sample(
        self,
        model: SynthesisModel,
        cond: synth.Condition,
        n: int,
        *,
        generator: torch.Generator | None = None,
        scales: Sequence[int],
        reference: synth.Latents | None = None,
    ) -> synth.SynthesisOutput:
        """``image [B·n, 3, H, W]``: the reference with the chosen scales' codes redrawn."""
        who, b = "nested_scale.scale_edit", cond.batch_size
        if reference is None:
            reference = prior_draw(model, cond, generator, who, _NO_PRIOR)
        kept = _styles(reference, b, who, "the reference")
        chosen = _check_levels(scales, len(kept), who)
        cond_n = cond.repeat_interleave(n)
        fresh = _styles(
            prior_draw(model, cond_n, generator, who, _NO_PRIOR), b * n, who, "the prior's draw"
        )
        ref_n = reference.repeat_interleave(n)
        styles = [
            fresh[k] if k in chosen else s.repeat_interleave(n, dim=0) for k, s in enumerate(kept)
        ]
        latents = dataclasses.replace(ref_n, styles=styles, kl=None)
        return generate_batched(model, cond_n, latents)


class ScaleInterpolate(_Base):
    """Walk one scale's code from ``start`` to ``end`` in ``n`` steps, the others fixed.

    Keywords: ``scale`` (required: the level, 0 = coarsest, -1 = finest), ``start``
    (``Latents`` with batch ``B``; a prior draw when not given), ``end`` (``[B, S]``: the
    level's code at the end of the walk; another prior draw's ``styles[scale]`` when not given)
    and ``mode``: ``"slerp"`` (spherical, the natural path between Gaussian codes; core's
    :func:`synth.nn.ops.slerp`) or ``"lerp"``. Sample ``j`` of each input has that level's code
    at ``t_j = j / (n − 1)`` (``t = 0`` for ``n = 1``) and every other field of ``start``.
    Draw order: ``start``, then ``end``.
    """

    def _example_keywords(self) -> dict[str, Any]:
        return {"scale": -1}

    def sample(
        self,
        model: SynthesisModel,
        cond: synth.Condition,
        n: int,
        *,
        generator: torch.Generator | None = None,
        scale: int,
        start: synth.Latents | None = None,
        end: Tensor | None = None,
        mode: Literal["slerp", "lerp"] = "slerp",
    ) -> synth.SynthesisOutput:
        """``image [B·n, 3, H, W]``: row ``b·n + j`` at ``t_j``, ordered ``(b n)``."""
        who, b = "nested_scale.scale_interpolate", cond.batch_size
        if mode not in ("slerp", "lerp"):
            raise ValueError(f"{who}: mode must be 'slerp' or 'lerp', got {mode!r}")
        if start is None:
            start = prior_draw(model, cond, generator, who, _NO_PRIOR)
        kept = _styles(start, b, who, "start")
        k = _check_levels([scale], len(kept), who)[0]
        if end is None:
            end = _styles(
                prior_draw(model, cond, generator, who, _NO_PRIOR), b, who, "the prior's draw"
            )[k]
        if tuple(end.shape) != tuple(kept[k].shape):
            raise ValueError(
                f"{who}: end is {tuple(end.shape)} but level {k}'s code is "
                f"{tuple(kept[k].shape)}; give one code per input, [B, S]"
            )
        t = torch.linspace(0, 1, n, device=kept[k].device).repeat(b)  # [B·n], (b n) order
        a = kept[k].repeat_interleave(n, dim=0)
        z = end.to(a).repeat_interleave(n, dim=0)
        t2 = rearrange(t.to(a.dtype), "m -> m 1")
        walk = synth.ops.slerp(a, z, t2) if mode == "slerp" else torch.lerp(a, z, t2)
        styles = [walk if i == k else s.repeat_interleave(n, dim=0) for i, s in enumerate(kept)]
        latents = dataclasses.replace(start.repeat_interleave(n), styles=styles, kl=None)
        return generate_batched(model, cond.repeat_interleave(n), latents)
