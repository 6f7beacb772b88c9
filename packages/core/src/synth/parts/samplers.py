"""Core samplers (k-diffusion style: one signature, pure, seeded by a ``torch.Generator``).

Each sampler has ``sample(model, cond, n, *, generator=None, <its keywords>) -> SynthesisOutput``,
its own keywords explicit and typed (``Interpolate``: ``start``, ``end``; ``BestOfN``:
``target``); calling a sampler checks them against that signature. The multi-sample ones return ``image: [B·n, C, H, W]`` ordered ``(b n)`` (input ``b``'s samples are
rows ``b·n .. b·n + n - 1``, as ``cond.repeat_interleave(n)``) and the ``latents`` that made
them, so any sample can be re-made with ``model.generate(cond_n[i], latents[i])``.

The generator is run on ``B·n`` inputs at once, or ``batch_size`` at a time when set. Samplers
do not change the grad mode (except :class:`BestOfN`, a search): wrap inference in
``torch.no_grad()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import torch
from einops import rearrange
from pydantic import Field
from torch import Tensor

from ..condition import Condition
from ..config import PartConfig, PartSpec
from ..errors import CapabilityError
from ..latents import Latents
from ..nn import ops
from ..outputs import SynthesisOutput
from .base import Loss, Sampler, build_part

if TYPE_CHECKING:
    from ..model import SynthesisModel

__all__ = ["BestOfN", "Interpolate", "Prior", "generate_batched", "prior_draw"]


def prior_draw(
    model: SynthesisModel,
    cond: Condition,
    generator: torch.Generator | None,
    who: str,
    fix: str = "compose it with an injector (core.gaussian) or pass the codes explicitly",
) -> Latents:
    """One prior draw per input of ``cond`` from the model's injector, for the sampler named
    ``who``; a ``CapabilityError`` ending in ``fix`` when the model has no injector."""
    if model.injector is None:
        raise CapabilityError(
            f"{who} draws codes from the model's prior, but the model has no injector: {fix}"
        )
    return model.injector.prior(cond, generator)


def generate_batched(
    model: SynthesisModel,
    cond: Condition,
    latents: Latents | None,
    batch_size: int | None = None,
) -> SynthesisOutput:
    """Run the generator on every input of ``cond``, ``batch_size`` at a time (all if None).

    Returns the output with ``image [B, C, H, W]``, the ``pyramid`` levels and tensor
    ``extras`` of the chunks joined, and ``latents``: what a sampler hands back.
    """
    total = cond.batch_size
    step = total if batch_size is None else batch_size
    outs = []
    for start in range(0, total, step):
        sl = slice(start, min(start + step, total))
        chunk_cond = cond if step >= total else cond[sl]
        chunk_lat = None if latents is None else (latents if step >= total else latents[sl])
        outs.append(model.generator(chunk_cond, chunk_lat))
    if len(outs) == 1:
        out = outs[0]
        return SynthesisOutput(out.image, pyramid=out.pyramid, latents=latents, extras=out.extras)
    pyramid = None
    if outs[0].pyramid is not None:
        pyramid = [torch.cat(level) for level in zip(*(o.pyramid for o in outs), strict=True)]
    extras = {k: torch.cat([o.extras[k] for o in outs]) for k in outs[0].extras}
    image = torch.cat([o.image for o in outs])
    return SynthesisOutput(image, pyramid=pyramid, latents=latents, extras=extras)


def _prior_samples(
    model: SynthesisModel,
    cond: Condition,
    n: int,
    generator: torch.Generator | None,
    batch_size: int | None,
) -> tuple[Condition, SynthesisOutput]:
    """``(cond_n, output)``: ``B·n`` prior samples (image, pyramid, latents) of ``cond``."""
    cond_n = cond.repeat_interleave(n)
    latents = model.injector.prior(cond_n, generator) if model.injector is not None else None
    return cond_n, generate_batched(model, cond_n, latents, batch_size)


class Prior(Sampler):
    """Ancestral sampling from the prior: ``n`` independent codes per input.

    Draws ``latents = model.injector.prior(cond.repeat_interleave(n), generator)`` and runs the
    generator: ``image: [B·n, C, H, W]`` ordered ``(b n)``, ``latents`` with batch ``B·n``.
    A model without an injector has no randomness: its ``n`` samples are identical and
    ``latents`` is ``None``.
    """

    class Config(PartConfig):
        batch_size: int | None = Field(
            None, ge=1, description="generator forward passes of at most this many images"
        )

    config: Config

    def sample(
        self,
        model: SynthesisModel,
        cond: Condition,
        n: int,
        *,
        generator: torch.Generator | None = None,
    ) -> SynthesisOutput:
        """``n`` prior samples per input: ``image [B·n, C, H, W]`` ordered ``(b n)`` (with the
        generator's ``pyramid`` when it has one)."""
        return _prior_samples(model, cond, n, generator, self.config.batch_size)[1]


def _tensors(latents: Latents) -> list[Tensor]:
    """The per-sample tensors of ``latents`` (``kl`` excluded)."""
    out = [v for v in (latents.z, latents.spatial) if v is not None]
    out += [*(latents.styles or []), *(latents.class_codes or []), *latents.extras.values()]
    return out


def _interpolate_field(a: Tensor, b: Tensor, t: Tensor, mode: str) -> Tensor:
    """Interpolate each sample's code as one flat vector.

    ``a, b: [B·n, ...]`` (endpoints repeated), ``t: [B·n]`` -> ``[B·n, ...]``.
    """
    shape = a.shape
    a2 = rearrange(a, "b ... -> b (...)")
    b2 = rearrange(b.to(a.dtype), "b ... -> b (...)")
    t2 = rearrange(t.to(a.dtype), "b -> b 1")
    out = ops.slerp(a2, b2, t2) if mode == "slerp" else (1 - t2) * a2 + t2 * b2
    return out.reshape(shape)


class Interpolate(Sampler):
    """Walks between two codes per input: ``n`` images at ``t = linspace(0, 1, n)``.

    Every latent tensor field present in both endpoints (``z``, each of ``styles`` and
    ``class_codes``, ``spatial``, ``extras``) is interpolated per sample, its code flattened to
    one vector: spherical (``mode="slerp"``, Shoemake 1985; the natural path between Gaussian
    codes, White 2016 "Sampling Generative Networks") or linear (``mode="lerp"``). ``kl`` is
    dropped. Keyword arguments ``start`` and ``end`` (``Latents`` with batch ``B``) default to
    two prior draws (``start`` first). Output: ``image [B·n, C, H, W]`` ordered ``(b n)``, row
    ``b·n + j`` at ``t_j``, with the interpolated ``latents``; one generator call over all
    ``B·n`` codes (chunked by ``batch_size``).
    """

    class Config(PartConfig):
        mode: Literal["slerp", "lerp"] = "slerp"
        batch_size: int | None = Field(
            None, ge=1, description="generator forward passes of at most this many images"
        )

    config: Config

    def sample(
        self,
        model: SynthesisModel,
        cond: Condition,
        n: int,
        *,
        generator: torch.Generator | None = None,
        start: Latents | None = None,
        end: Latents | None = None,
    ) -> SynthesisOutput:
        """``n`` images per input from ``start`` (``t=0``) to ``end`` (``t=1``).

        ``start``, ``end``: one code per input (batch ``B``); each defaults to a prior draw
        from ``generator`` (``start`` first).
        """
        if (start is None or end is None) and model.injector is None:
            raise CapabilityError(
                "core.interpolate needs two codes per input: the model has no injector to draw "
                "them from, so pass start=synth.Latents(...) and end=synth.Latents(...)"
            )
        if start is None:
            start = model.injector.prior(cond, generator)
        if end is None:
            end = model.injector.prior(cond, generator)
        b = cond.batch_size
        for which, lat in (("start", start), ("end", end)):
            sizes = {int(v.shape[0]) for v in _tensors(lat)}
            if sizes - {b}:
                raise ValueError(
                    f"core.interpolate: {which} has batch size(s) {sorted(sizes)} but the "
                    f"condition has {b} inputs; give one code per input"
                )
        t = torch.linspace(0, 1, n, device=cond.device).repeat(b)  # [B·n], (b n) order
        a_n, b_n = start.repeat_interleave(n), end.repeat_interleave(n)

        def mix(name: str, x: Any, y: Any) -> Any:
            if x is None:
                return None
            if y is None:
                raise ValueError(
                    f"core.interpolate: start has latents.{name} but end does not; give both "
                    "endpoints the same fields"
                )
            if isinstance(x, list):
                return [_interpolate_field(u, v, t, self.config.mode) for u, v in zip(x, y)]
            return _interpolate_field(x, y, t, self.config.mode)

        latents = Latents(
            z=mix("z", a_n.z, b_n.z),
            styles=mix("styles", a_n.styles, b_n.styles),
            class_codes=mix("class_codes", a_n.class_codes, b_n.class_codes),
            spatial=mix("spatial", a_n.spatial, b_n.spatial),
            extras={k: mix(f"extras[{k!r}]", v, b_n.extras.get(k)) for k, v in a_n.extras.items()},
        )
        return generate_batched(model, cond.repeat_interleave(n), latents, self.config.batch_size)


class BestOfN(Sampler):
    """Best-of-n search: the prior sample closest to a target image, per input.

    Draws ``n`` prior samples per input (as :class:`Prior`), scores each against
    ``target: [B, 3, H, W]`` with the ``distance`` part's ``distance(x, y) -> [B]`` (an image
    distance loss: ``core.l1``, ``core.lpips``, ``core.perceptual``) and keeps the closest one.
    This is the "best of n" evaluation of multimodal synthesis (e.g. cIMLE, Li et al. 2020):
    whether some sample recovers the ground truth. Runs under ``torch.no_grad()``.

    Returns ``image: [B, C, H, W]`` (one winner per input, not ``B·n``), the winners'
    ``latents``, and ``extras``: ``"distance" [B]`` (the best), ``"distances" [B, n]`` (all) and
    ``"index" [B]`` (the winner's sample index in ``0..n-1``).
    """

    class Config(PartConfig):
        distance: PartSpec = Field(
            default_factory=lambda: {"type": "core.l1"},
            description="image distance loss used to rank samples",
        )
        batch_size: int | None = Field(
            None, ge=1, description="generator/distance passes of at most this many images"
        )

    config: Config

    def __init__(self, config: Config | dict | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._distance: Loss | None = None

    def example_inputs(
        self, *, batch_size: int, size: tuple[int, int], generator: torch.Generator
    ) -> dict[str, Any]:
        """Conformance-kit inputs: a target image per input; one winner per input comes back."""
        target = torch.rand(batch_size, 3, *size, generator=generator) * 2 - 1
        return {"kwargs": {"target": target}, "output_batch": batch_size}

    def distance_part(self, model: SynthesisModel | None = None) -> Loss:
        """The distance loss, built on first use (from ``model``'s registry) and kept."""
        if self._distance is None:
            registry = getattr(model, "_registry", None)
            spec = self.config.distance
            part = registry.build(spec) if registry is not None else build_part(spec)
            if not isinstance(part, Loss):
                raise TypeError(
                    f"core.best_of_n: distance {self.config.distance['type']!r} is a {part.kind}, "
                    "not a loss; use an image distance such as core.l1 or core.lpips"
                )
            self._distance = part.eval()
        return self._distance

    def sample(
        self,
        model: SynthesisModel,
        cond: Condition,
        n: int,
        *,
        generator: torch.Generator | None = None,
        target: Tensor | None = None,
    ) -> SynthesisOutput:
        """The closest of ``n`` prior samples to ``target [B, 3, H, W]`` (in ``[-1, 1]``, at
        the output size) per input: ``image [B, C, H, W]``."""
        b = cond.batch_size
        if target is None:
            raise ValueError(
                "core.best_of_n needs the images to get close to: call "
                "model.sample(cond, n, sampler='core.best_of_n', target=images) with "
                "images [B, 3, H, W] in [-1, 1]"
            )
        if target.dim() != 4 or target.shape[0] != b:
            raise ValueError(
                f"core.best_of_n: target has shape {tuple(target.shape)} but the condition has "
                f"batch {b}: give one target image per input, [B, 3, H, W] = [{b}, 3, H, W]"
            )
        dist = self.distance_part(model).to(target.device)
        bs = self.config.batch_size
        with torch.no_grad():
            _, drawn = _prior_samples(model, cond, n, generator, bs)
            latents, images = drawn.latents, drawn.image
            if tuple(images.shape[-2:]) != tuple(target.shape[-2:]):
                raise ValueError(
                    f"core.best_of_n: target is {tuple(target.shape[-2:])} but the samples are "
                    f"{tuple(images.shape[-2:])}; give targets at the output size"
                )
            target_n = target.repeat_interleave(n, dim=0)
            step = images.shape[0] if bs is None else bs
            d = torch.cat(
                [
                    dist.distance(images[i : i + step], target_n[i : i + step]).float()
                    for i in range(0, images.shape[0], step)
                ]
            )
            distances = rearrange(d, "(b n) -> b n", b=b, n=n)
            best, index = distances.min(dim=1)
            flat = torch.arange(b, device=index.device) * n + index
            image = images[flat]
            winners = latents[flat] if latents is not None else None
        return SynthesisOutput(
            image=image,
            latents=winners,
            extras={"distance": best, "distances": distances, "index": index},
        )
