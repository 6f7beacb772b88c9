"""``core.disentanglement_curve``: output variation when only scale k's code varies."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import torch
from pydantic import Field
from torch import Tensor

from ..condition import Condition
from ..config import PartConfig
from ..parts.base import Metric
from .diversity import DiversityNet, LPIPSDiversity

if TYPE_CHECKING:
    from ..model import SynthesisModel

__all__ = ["DisentanglementCurve", "per_scale_codes"]


def per_scale_codes(model: SynthesisModel, cond: Condition) -> int:
    """How many per-scale codes (``Latents.styles``) ``model``'s prior draws for ``cond``;
    0 when it draws none (no injector, or an injector without ``styles``). The global RNG is
    left alone (the probe draws from its own generator)."""
    if model.injector is None:
        return 0
    probe = torch.Generator(device=cond.device).manual_seed(0)
    styles = model.injector.prior(cond[:1], probe).styles
    return 0 if styles is None else len(styles)


class DisentanglementCurve(Metric):
    """Multi-scale disentanglement curve (nested-scale paper §4.5, Fig. 8).

    For each input: a centre code is drawn from the model's prior; then, for each scale ``k``
    (each entry of ``Latents.styles``, coarsest first), ``m`` images are made whose codes are the
    centre's everywhere except ``styles[k]``, which is redrawn for each image; the mean pairwise
    LPIPS among the ``m`` images is scale ``k``'s variation. ``compute()`` averages it over
    inputs: one value per scale and per model (``name``). A disentangled decoder gives a curve
    that falls monotonically with k (finer codes change less); the paper's Fig. 8 contrasts it
    with a plain decoder's non-monotone one.

    How ``styles[k]`` is redrawn (the paper: "sample 10 latent codes centered around z"; it
    gives no spread): by default (``sigma: null``) fresh draws from the model's own prior
    (``injector.prior`` on the repeated inputs, its ``styles[k]``), so every code is in
    distribution and the curve has no free parameter; with ``sigma: s``, ``centre + s·ε``,
    ``ε ~ N(0, I)``, a neighbourhood of the centre as the paper's wording suggests. Everything
    else (``z``, the other scales' codes, spatial noise) stays the centre's.

    Batched: one prior draw and one generator call on ``B·m`` inputs per (update, scale), no
    loop over samples; the LPIPS pairs are scored by :class:`LPIPSDiversity` (same weights
    policy: ``weights: none`` gives a random trunk, for tests).

    ``update(model, cond, *, name="model", generator=None)``; ``compute()`` returns
    ``{"curve": {name: [v_0 .. v_K-1]}, "std": {...}, "monotone": {name: bool},
    "num_inputs": {name: int}, "settings": {...}}``.
    """

    class Config(PartConfig):
        m: int = Field(10, ge=2, description="images per input and scale (the paper: 10)")
        sigma: float | None = Field(
            None, gt=0, description="redraw styles[k] as centre + sigma·eps (null: prior draws)"
        )
        net: DiversityNet = "alex"
        weights: str = "imagenet"
        version: str = Field("0.1", description="LPIPS linear-layer version")
        memory_budget_mb: float = Field(
            1024.0, gt=0, description="approximate memory one LPIPS forward may use"
        )

    config: Config
    _values: dict[str, list[Tensor]]  # model name -> per-input variation [B, K] of each update
    _scales: dict[str, list[int] | None]  # model name -> the generator's pyramid_scales
    _size: tuple[int, int] | None

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        c = self.config
        self.diversity = LPIPSDiversity(
            net=c.net, weights=c.weights, version=c.version, memory_budget_mb=c.memory_budget_mb
        )
        self.add_state("_values", {})
        self.add_state("_scales", {})
        self.add_state("_size", None)

    def to(self, device: torch.device | str) -> DisentanglementCurve:
        self.diversity.to(device)
        return self

    def example_inputs(
        self, *, batch_size: int, size: tuple[int, int], generator: torch.Generator
    ) -> dict[str, Any]:
        """Conformance-kit inputs: a tiny core model with per-stage AdaIN codes, two updates."""
        from ..compose import compose

        seed = int(torch.randint(2**31, (), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            gen = {"type": "core.simple_generator", "num_classes": 4, "ngf": 4, "num_stages": 2}
            gen.update(z_dim=0, style_dim=4, norm={"type": "core.adain"})
            model = compose({"generator": gen, "injector": {"type": "core.gaussian"}}).eval()
        labels = torch.randint(0, 4, (batch_size, *size), generator=generator)
        cond = Condition(label_map=labels, num_classes=4)
        g = [torch.Generator().manual_seed(seed + i) for i in range(2)]
        return {"updates": [{"model": model, "cond": cond, "generator": x} for x in g]}

    def _draw(self, model: SynthesisModel, cond_m: Condition, centre: Tensor, k: int, g: Any):
        """The ``m`` redrawn codes of scale ``k`` per input: ``[B·m, S]`` ordered ``(b m)``."""
        if self.config.sigma is None:
            return model.injector.prior(cond_m, g).styles[k]  # type: ignore[union-attr]
        eps = torch.randn(centre.shape, generator=g, device=centre.device, dtype=centre.dtype)
        return centre + self.config.sigma * eps

    @torch.no_grad()
    def per_input(
        self, model: SynthesisModel, cond: Condition, generator: torch.Generator | None = None
    ) -> Tensor:
        """Variation of each input at each scale: ``[B, K]`` (float32), nothing recorded."""
        who = "core.disentanglement_curve"
        model.check_condition(cond)
        centre = model.injector.prior(cond, generator) if model.injector is not None else None
        if centre is None or not centre.styles:
            raise ValueError(
                f"{who}: the model's latents have no per-scale codes (Latents.styles); the curve "
                "needs an injector that draws one code per scale (e.g. core.gaussian with "
                "style_dim > 0 offered by the generator)"
            )
        m = self.config.m
        cond_m, centre_m = cond.repeat_interleave(m), centre.repeat_interleave(m)
        values = []
        for k in range(len(centre.styles)):  # one generator call per scale, B·m images each
            styles = list(centre_m.styles or [])
            styles[k] = self._draw(model, cond_m, styles[k], k, generator)
            images = model.generator(cond_m, dataclasses.replace(centre_m, styles=styles)).image
            values.append(self.diversity.per_input(images, n=m))
        return torch.stack(values, dim=1)

    def update(
        self,
        model: SynthesisModel,
        cond: Condition,
        *,
        name: str = "model",
        generator: torch.Generator | None = None,
    ) -> None:
        """Add the inputs ``cond`` for model ``name`` (codes drawn from ``generator``)."""
        who = "core.disentanglement_curve"
        v = self.per_input(model, cond, generator)
        size = tuple(int(s) for s in cond.size or ())
        if self._size is not None and size != self._size:
            raise ValueError(
                f"{who}: inputs of size {size} after ones of size {self._size}; evaluate every "
                "model at one resolution"
            )
        done = self._values.get(name)
        if done and done[0].shape[1] != v.shape[1]:
            raise ValueError(
                f"{who}: {name!r} gave {v.shape[1]} scales after {done[0].shape[1]}; use "
                "another name for another model"
            )
        self._size = size  # type: ignore[assignment]
        self._values.setdefault(name, []).append(v.detach().double().cpu())
        scales = getattr(model.generator, "pyramid_scales", None)
        self._scales[name] = None if scales is None else [int(s) for s in scales]

    def compute(self) -> dict[str, Any]:
        """Per model: the curve (one value per scale, coarsest first), its std over inputs,
        whether it never rises, the number of inputs; and the settings."""
        if not self._values:
            raise ValueError(
                "core.disentanglement_curve: nothing to compute; call update(model, cond) first"
            )
        per = {k: torch.cat(v) for k, v in self._values.items()}  # name -> [I, K]
        curve = {k: v.mean(0) for k, v in per.items()}
        return {
            "curve": {k: c.tolist() for k, c in curve.items()},
            "std": {k: v.std(0, correction=0).tolist() for k, v in per.items()},
            "monotone": {k: bool((c[1:] <= c[:-1]).all()) for k, c in curve.items()},
            "num_inputs": {k: int(v.shape[0]) for k, v in per.items()},
            "settings": {
                "m": self.config.m,
                "codes": "prior draws" if self.config.sigma is None else "centre + sigma * eps",
                "sigma": self.config.sigma,
                **self.diversity.lpips_settings(),
                "resolution": list(self._size) if self._size else None,
                "pyramid_scales": dict(self._scales),
                "pairs_per_image_set": self.config.m * (self.config.m - 1) // 2,
            },
        }
