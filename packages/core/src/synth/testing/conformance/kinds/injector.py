"""The harness of injectors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor

from ....latents import Latents
from ...inputs import make_condition, make_image
from ..harness import _Harness, _num_classes, _requirements
from ..tensors import _flatten, _nonfinite


class _Injector(_Harness):
    kind = "injector"
    keys = frozenset({"cond", "image"})

    def defaults(self, part, missing, g):
        reqs = _requirements(part)
        h, w = self.size(part)
        cond = make_condition(
            reqs,
            batch_size=self.s.batch_size,
            size=(h, w),
            num_classes=_num_classes(part),
            generator=g,
        )
        return {"cond": cond, "image": make_image(self.s.batch_size, (h, w), generator=g)}

    def stochastic(self, part):
        return bool(getattr(type(part), "stochastic", True))

    def run(self, part, inp, seed):
        out: dict[str, Any] = {
            "prior": part.prior(inp["cond"], torch.Generator().manual_seed(seed))
        }
        if type(part).has_posterior:
            # The posterior has no generator argument: it is reproducible under the global seed.
            torch.manual_seed(seed)
            out["posterior"] = part.posterior(inp["image"], inp["cond"])
        return out

    def _check_latents(self, part, which, lat, probs) -> None:
        if not isinstance(lat, Latents):
            probs.append(
                (
                    f"{which} returned {type(lat).__name__}, not synth.Latents",
                    "return synth.Latents(...)",
                )
            )
            return
        want = _Expected(part, which, self.s.batch_size)
        probs.extend(problem for check in _LATENT_CHECKS for problem in check(want, lat))

    def validate(self, part, inp, out):
        probs: list[tuple[str, str]] = []
        self._check_latents(part, "prior", out["prior"], probs)
        if "posterior" in out:
            post = out["posterior"]
            self._check_latents(part, "posterior", post, probs)
            kl = getattr(post, "kl", None)
            if not isinstance(kl, Tensor) or kl.dim() != 0:
                got = tuple(kl.shape) if isinstance(kl, Tensor) else repr(kl)
                probs.append(
                    (
                        f"posterior: latents.kl is {got}, expected a scalar tensor",
                        "set Latents.kl to the (batch-mean) KL divergence, a 0-dim tensor",
                    )
                )
        return probs

    def compile_cases(self, part):
        inp = self.inputs(part)
        # torch.Generator arguments are not traceable by dynamo: compile the global-RNG path
        # and compare shapes (values are random).
        cases = [
            (
                "prior(cond, None)",
                lambda cond: part.prior(cond, None),
                lambda: (inp["cond"],),
                False,
            )
        ]
        if type(part).has_posterior:
            cases.append(
                (
                    "posterior(image, cond)",
                    lambda image, cond: part.posterior(image, cond),
                    lambda: (inp["image"], inp["cond"]),
                    False,
                )
            )
        return cases


# --------------------------------------------------------------------------- latent checks

#: (what is wrong, how to fix it)
_Problem = tuple[str, str]


class _Expected(NamedTuple):
    """What latents drawn by ``part`` (its ``which``: "prior" or "posterior") must hold."""

    part: Any
    which: str
    b: int

    def size(self, field: str) -> int | None:
        """A code width set by the config (``z_dim``, ``style_dim``, ...), if it is one."""
        v = getattr(self.part.config, field, None)
        return v if isinstance(v, int) and v > 0 else None


def _check_shape(
    want: _Expected, name: str, t: Any, rank: int, dim: int = 1, size: int | None = None
) -> list[_Problem]:
    """``t`` is a tensor of ``rank`` with batch ``B`` (and ``size`` entries along ``dim``)."""
    if not isinstance(t, Tensor) or t.dim() != rank or t.shape[0] != want.b:
        got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
        return [
            (
                f"{want.which}: latents.{name} is {got}, expected rank {rank} with batch {want.b}",
                f"see the Latents field docs for {name}'s shape",
            )
        ]
    if size is not None and t.shape[dim] != size:
        return [
            (
                f"{want.which}: latents.{name} is {tuple(t.shape)}, dim {dim} "
                f"should be {size} (from the config)",
                "size the codes from the runtime arguments in the config",
            )
        ]
    return []


def _check_provided(want: _Expected, lat: Latents) -> list[_Problem]:
    """Every field ``provided(config)`` declares (but ``kl``) is filled."""
    cfg = want.part.config
    provided = set(type(want.part).provided(cfg)) - {"kl"}
    missing = sorted(f for f in provided if f not in lat.fields())
    if not missing:
        return []
    return [
        (
            f"{want.which} left {missing} empty although provided({type(cfg).__name__}) "
            f"declares {sorted(provided)}",
            "fill every provided field, or make `provided(config)` return only what is filled",
        )
    ]


def _check_z(want: _Expected, lat: Latents) -> list[_Problem]:
    """``z`` is ``[B, z_dim]``."""
    return [] if lat.z is None else _check_shape(want, "z", lat.z, 2, 1, want.size("z_dim"))


def _check_stage_codes(want: _Expected, lat: Latents) -> list[_Problem]:
    """``styles`` (``[B, style_dim]``) and ``class_codes`` (``[B, K, D]``): a list per stage."""
    probs: list[_Problem] = []
    for name, rank, width in (("styles", 2, "style_dim"), ("class_codes", 3, "num_classes")):
        codes = getattr(lat, name)
        if codes is None:
            continue
        if not isinstance(codes, list):
            probs.append(
                (
                    f"{want.which}: latents.{name} is {type(codes).__name__}, not a list "
                    "(one tensor per stage)",
                    f"return {name} as a list per stage",
                )
            )
            continue
        n = getattr(want.part.config, "num_stages", None)
        if isinstance(n, int) and len(codes) != n:
            probs.append(
                (f"{want.which}: {len(codes)} {name} for num_stages={n}", "give one code per stage")
            )
        for i, t in enumerate(codes):
            probs += _check_shape(want, f"{name}[{i}]", t, rank, 1, _width(want, width))
    return probs


def _width(want: _Expected, field: str) -> int | None:
    # num_classes may be 0 for a class-free config and still has to match (K = 0 codes)
    if field == "num_classes":
        k = getattr(want.part.config, field, None)
        return k if isinstance(k, int) else None
    return want.size(field)


def _check_spatial(want: _Expected, lat: Latents) -> list[_Problem]:
    """``spatial`` is ``[B, C, H, W]``."""
    return [] if lat.spatial is None else _check_shape(want, "spatial", lat.spatial, 4)


def _check_finite(want: _Expected, lat: Latents) -> list[_Problem]:
    bad = _nonfinite(_flatten(lat, want.which))
    return [(f"{want.which}: NaN/Inf in {bad}", "check the sampling / encoder math")] if bad else []


#: The checks of drawn latents, in the order their problems are reported.
_LATENT_CHECKS: tuple[Callable[[_Expected, Latents], list[_Problem]], ...] = (
    _check_provided,
    _check_z,
    _check_stage_codes,
    _check_spatial,
    _check_finite,
)
