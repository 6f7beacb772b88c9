"""`Latents`: what injectors produce and generators consume."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = ["LATENT_FIELDS", "Latents"]

#: Fields an injector can provide; capability checks speak in these names.
LATENT_FIELDS: tuple[str, ...] = ("z", "styles", "class_codes", "spatial", "kl")


@dataclass
class Latents:
    """Typed container of latent codes (DESIGN §3). Injectors document which fields they fill.

    Fields:
        z: ``[B, Z]`` global code.
        styles: one ``[B, S]`` per stage.
        class_codes: one ``[B, K, D]`` per stage (per class).
        spatial: ``[B, C, H, W]`` noise or instance features.
        kl: scalar KL term when the codes came from a posterior.
        extras: plugin-specific tensors (name them ``"<plugin>.<what>"``).
    """

    z: Tensor | None = None
    styles: list[Tensor] | None = None
    class_codes: list[Tensor] | None = None
    spatial: Tensor | None = None
    kl: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)

    def fields(self) -> frozenset[str]:
        """Names of the fields that are present (``extras`` by key)."""
        names = {n for n in LATENT_FIELDS if getattr(self, n) is not None}
        return frozenset(names | set(self.extras))

    def map(self, fn: Callable[[Tensor], Tensor], *, include_kl: bool = False) -> Latents:
        """Apply ``fn`` to every per-sample tensor (``kl`` is a scalar: kept unless asked)."""

        def f(v):
            if v is None:
                return None
            if isinstance(v, list):
                return [fn(t) for t in v]
            return fn(v)

        return Latents(
            z=f(self.z),
            styles=f(self.styles),
            class_codes=f(self.class_codes),
            spatial=f(self.spatial),
            kl=f(self.kl) if include_kl else self.kl,
            extras={k: fn(v) for k, v in self.extras.items()},
        )

    def to(self, *args, **kwargs) -> Latents:
        return self.map(lambda t: t.to(*args, **kwargs), include_kl=True)

    def detach(self) -> Latents:
        return self.map(Tensor.detach, include_kl=True)

    def repeat_interleave(self, n: int) -> Latents:
        """Each code ``n`` times in a row: ``[B] -> [B·n]`` ordered ``(b n)``."""
        return self.map(lambda t: t.repeat_interleave(n, dim=0))

    def __getitem__(self, index) -> Latents:
        """Index the batch dimension."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        return self.map(lambda t: t[index])

    @staticmethod
    def cat(items: list[Latents]) -> Latents:
        """Concatenate along the batch dimension (fields must agree; ``kl`` is averaged)."""
        first = items[0]

        def join(name: str):
            vals = [getattr(x, name) for x in items]
            if vals[0] is None:
                return None
            if isinstance(vals[0], list):
                return [torch.cat(ts) for ts in zip(*vals)]
            return torch.cat(vals)

        kls = [x.kl for x in items if x.kl is not None]
        return dataclasses.replace(
            first,
            z=join("z"),
            styles=join("styles"),
            class_codes=join("class_codes"),
            spatial=join("spatial"),
            kl=torch.stack(kls).mean() if kls else None,
            extras={k: torch.cat([x.extras[k] for x in items]) for k in first.extras},
        )
