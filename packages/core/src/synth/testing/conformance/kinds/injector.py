"""The harness of injectors."""

from __future__ import annotations

from typing import Any

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
        cfg, b = part.config, self.s.batch_size
        if not isinstance(lat, Latents):
            probs.append(
                (
                    f"{which} returned {type(lat).__name__}, not synth.Latents",
                    "return synth.Latents(...)",
                )
            )
            return
        provided = set(type(part).provided(cfg)) - {"kl"}
        missing = sorted(f for f in provided if f not in lat.fields())
        if missing:
            probs.append(
                (
                    f"{which} left {missing} empty although provided({type(cfg).__name__}) "
                    f"declares {sorted(provided)}",
                    "fill every provided field, or make `provided(config)` return only what is filled",
                )
            )

        def shape_ok(name, t, rank, extra=None):
            if not isinstance(t, Tensor) or t.dim() != rank or t.shape[0] != b:
                got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
                probs.append(
                    (
                        f"{which}: latents.{name} is {got}, expected rank {rank} with batch {b}",
                        f"see the Latents field docs for {name}'s shape",
                    )
                )
                return
            if extra is not None:
                dim, want = extra
                if t.shape[dim] != want:
                    probs.append(
                        (
                            f"{which}: latents.{name} is {tuple(t.shape)}, dim {dim} "
                            f"should be {want} (from the config)",
                            "size the codes from the runtime arguments in the config",
                        )
                    )

        z_dim = getattr(cfg, "z_dim", None)
        if lat.z is not None:
            shape_ok("z", lat.z, 2, (1, z_dim) if isinstance(z_dim, int) and z_dim > 0 else None)
        for name in ("styles", "class_codes"):
            codes = getattr(lat, name)
            if codes is None:
                continue
            if not isinstance(codes, list):
                probs.append(
                    (
                        f"{which}: latents.{name} is {type(codes).__name__}, not a list "
                        "(one tensor per stage)",
                        f"return {name} as a list per stage",
                    )
                )
                continue
            n = getattr(cfg, "num_stages", None)
            if isinstance(n, int) and len(codes) != n:
                probs.append(
                    (f"{which}: {len(codes)} {name} for num_stages={n}", "give one code per stage")
                )
            for i, t in enumerate(codes):
                if name == "styles":
                    sd = getattr(cfg, "style_dim", None)
                    shape_ok(
                        f"styles[{i}]", t, 2, (1, sd) if isinstance(sd, int) and sd > 0 else None
                    )
                else:
                    k = getattr(cfg, "num_classes", None)
                    shape_ok(f"class_codes[{i}]", t, 3, (1, k) if isinstance(k, int) else None)
        if lat.spatial is not None:
            shape_ok("spatial", lat.spatial, 4)
        bad = _nonfinite(_flatten(lat, which))
        if bad:
            probs.append((f"{which}: NaN/Inf in {bad}", "check the sampling / encoder math"))

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
