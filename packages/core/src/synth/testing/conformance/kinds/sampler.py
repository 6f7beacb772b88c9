"""The harness of samplers."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ....outputs import SynthesisOutput
from ...inputs import make_condition
from ..constants import CHECKS
from ..harness import _Harness
from ..tensors import _flatten, _nonfinite


class _Sampler(_Harness):
    kind = "sampler"
    keys = frozenset({"model", "cond", "n", "kwargs", "output_batch"})
    applicable = frozenset(CHECKS) - {"compile"}
    na_reason = "samplers orchestrate modules in Python; compile the generator instead"

    def defaults(self, part, missing, g):
        from ..._tiny import TINY_NUM_CLASSES, tiny_model

        out: dict[str, Any] = {"n": 2, "kwargs": {}}
        if "model" in missing:
            out["model"] = tiny_model(self.s.seed)
        out["cond"] = make_condition(
            {"label_map"},
            batch_size=self.s.batch_size,
            size=self.size(part),
            num_classes=TINY_NUM_CLASSES,
            generator=g,
        )
        return out

    def inputs(self, part):
        inp = super().inputs(part)
        inp.setdefault("output_batch", inp["cond"].batch_size * int(inp["n"]))
        return inp

    def stochastic(self, part):
        return bool(getattr(type(part), "stochastic", True))

    def input_hint(self, part):
        return (
            "samplers are run as sample(model, cond, n=2, generator=g) on a tiny model (label "
            "map with 4 classes, injector with a z prior and a posterior); define "
            "example_inputs() returning 'kwargs' (extra sample() arguments), 'model', 'n' or "
            "'output_batch' if the sampler needs more"
        )

    def run(self, part, inp, seed):
        g = torch.Generator().manual_seed(seed)
        return part.sample(
            inp["model"], inp["cond"], int(inp["n"]), generator=g, **dict(inp.get("kwargs") or {})
        )

    def validate(self, part, inp, out):
        if not isinstance(out, SynthesisOutput):
            return [
                (
                    f"sample returned {type(out).__name__}, not synth.SynthesisOutput",
                    "return SynthesisOutput(image=..., latents=...)",
                )
            ]
        probs: list[tuple[str, str]] = []
        nb = int(inp["output_batch"])
        h, w = inp["cond"].size
        img = out.image
        if (
            not isinstance(img, Tensor)
            or img.dim() != 4
            or img.shape[0] != nb
            or tuple(img.shape[-2:]) != (h, w)
        ):
            got = tuple(img.shape) if isinstance(img, Tensor) else type(img).__name__
            probs.append(
                (
                    f"image is {got}, expected [{nb}, C, {h}, {w}] (B·n ordered (b n))",
                    "return n samples per input as image [B·n, C, H, W] (declare another "
                    "batch with 'output_batch' in example_inputs)",
                )
            )
        elif _nonfinite({"image": img}):
            probs.append(("image has NaN/Inf values", "check the sampler's arithmetic"))
        if out.latents is None:
            if inp["model"].injector is not None:
                probs.append(
                    (
                        "the output has no latents",
                        "return the latents used, so each sample can be re-made",
                    )
                )
        else:
            wrong = {
                k: tuple(t.shape)
                for k, t in _flatten(out.latents, "latents").items()
                if t.dim() > 0 and t.shape[0] != nb
            }
            if wrong:
                probs.append(
                    (
                        f"latents do not match the {nb} images: {wrong}",
                        "return the latents of each returned image, batch first",
                    )
                )
        return probs
