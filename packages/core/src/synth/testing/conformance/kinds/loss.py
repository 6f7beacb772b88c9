"""The harness of losses."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor

from ....outputs import LossInputs
from ....parts.base import Loss, Part
from ...inputs import make_loss_inputs
from ..constants import PHASES
from ..harness import _Harness, _num_classes, _requirements
from ..tensors import _flatten, _nonfinite


def _overrides_distance(part: Part) -> bool:
    return type(part).distance is not Loss.distance


class _Loss(_Harness):
    kind = "loss"
    keys = frozenset({"batch"})

    def defaults(self, part, missing, g):
        cls = type(part)
        batch = make_loss_inputs(
            "generator",
            cls.needs,
            requires=_requirements(part),
            batch_size=self.s.batch_size,
            size=self.size(part),
            num_classes=_num_classes(part),
            with_disc="discriminator" in cls.roles,
            generator=g,
        )
        return {"batch": batch}

    def input_hint(self, part):
        return (
            "the default LossInputs carry real, fake and what `needs` declares "
            f"({sorted(type(part).needs)}; disc outputs also for the discriminator role): "
            "declare every input forward reads in `needs`, or define example_inputs() "
            "returning {'batch': LossInputs(...)}"
        )

    @staticmethod
    def phases(part) -> list[str]:
        return sorted(type(part).roles)

    def run(self, part, inp, seed):
        batch: LossInputs = inp["batch"]
        out: dict[str, Any] = {
            p: part(dataclasses.replace(batch, phase=p)) for p in self.phases(part)
        }
        if _overrides_distance(part):
            out["distance"] = part.distance(batch.fake.image, batch.real)
        return out

    def validate(self, part, inp, out):
        probs: list[tuple[str, str]] = []
        bad_roles = sorted(set(type(part).roles) - PHASES)
        if bad_roles or not type(part).roles:
            probs.append(
                (
                    f"roles = {sorted(type(part).roles)}",
                    f"roles is a non-empty subset of {sorted(PHASES)}",
                )
            )
        for p in self.phases(part):
            v = out.get(p)
            if not isinstance(v, Tensor) or v.dim() != 0 or not v.is_floating_point():
                got = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
                probs.append(
                    (
                        f"phase {p!r}: returned {got}, expected a float scalar tensor",
                        "reduce the loss to a scalar (e.g. .mean())",
                    )
                )
            elif not bool(torch.isfinite(v.detach())):
                probs.append(
                    (f"phase {p!r}: loss is {float(v)}", "check logs/divisions for zero arguments")
                )
        if "distance" in out:
            d, b = out["distance"], self.s.batch_size
            if not isinstance(d, Tensor) or tuple(d.shape) != (b,):
                got = tuple(d.shape) if isinstance(d, Tensor) else type(d).__name__
                probs.append(
                    (
                        f"distance(x, y) is {got}, expected [B] = ({b},)",
                        "return one distance per sample",
                    )
                )
            elif _nonfinite({"d": d}):
                probs.append(("distance(x, y) has NaN/Inf values", "check the distance math"))
            else:
                real = inp["batch"].real
                with torch.no_grad():
                    same = part.distance(real, real)
                if float(same.detach().abs().max()) > 1e-4:
                    probs.append(
                        (
                            f"distance(x, x) = {same.detach().tolist()}, not 0",
                            "a distance between identical images is 0",
                        )
                    )
        return probs

    def extra_grad_problems(self, part):
        """Per phase, the loss must backpropagate into the inputs that require grad."""
        probs: list[tuple[str, str]] = []
        for p in self.phases(part):
            batch = dataclasses.replace(self.inputs(part)["batch"], phase=p)
            leaves = {
                k: t
                for k, t in _flatten(batch, "batch").items()
                if t.is_floating_point() and t.requires_grad and t.is_leaf
            }
            v = part(batch)
            if not isinstance(v, Tensor) or not v.requires_grad:
                probs.append(
                    (
                        f"phase {p!r}: the loss does not require grad",
                        "compute it from the inputs without .detach() or torch.no_grad()",
                    )
                )
                continue
            v.backward()
            got = [k for k, t in leaves.items() if t.grad is not None and bool((t.grad != 0).any())]
            if leaves and not got:
                probs.append(
                    (
                        f"phase {p!r}: no gradient reaches any input ({sorted(leaves)})",
                        "the loss must depend differentiably on what it trains "
                        "(fake image, discriminator outputs, ...)",
                    )
                )
        return probs

    def compile_cases(self, part):
        inp = self.inputs(part)
        cases = []
        for p in self.phases(part):
            batch = dataclasses.replace(inp["batch"], phase=p)
            cases.append(
                (
                    f"forward(batch[phase={p!r}])",
                    lambda b: part(b),
                    lambda batch=batch: (batch,),
                    True,
                )
            )
        if _overrides_distance(part):
            b = inp["batch"]
            cases.append(
                (
                    "distance(x, y)",
                    lambda x, y: part.distance(x, y),
                    lambda: (b.fake.image, b.real),
                    True,
                )
            )
        return cases
