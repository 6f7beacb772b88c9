"""The harness of samplers."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor

from ....outputs import SynthesisOutput
from ....parts.base import Sampler
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
            "samplers are called as sampler(model, cond, n=2, generator=g) on a tiny model "
            "(label map with 4 classes, injector with a z prior and a posterior); define "
            "example_inputs() returning 'kwargs' (values for sample()'s own keywords), "
            "'model', 'n' or 'output_batch' if the sampler needs more"
        )

    def run(self, part, inp, seed):
        g = torch.Generator().manual_seed(seed)
        # called, not .sample(...): the keywords are bound against the signature as users' are
        return part(
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
        probs = _signature_problems(part)
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


_HEAD_FIX = (
    "def sample(self, model, cond, n, *, generator=None, <own keywords, typed>) -> "
    "SynthesisOutput, e.g. `target: Tensor | None = None` (DESIGN §3)"
)


def _signature_problems(part: Sampler) -> list[tuple[str, str]]:
    """The shared head, then explicit, typed, keyword-only parameters (no ``*args/**kwargs``)."""
    params = list(inspect.signature(type(part).sample).parameters.values())[1:]
    head = [p.name for p in params[: len(Sampler.HEAD)]]
    probs: list[tuple[str, str]] = []
    generator = next((p for p in params if p.name == "generator"), None)
    if head != list(Sampler.HEAD) or generator is None or generator.default is not None:
        shown = ", ".join(str(p) for p in params[: len(Sampler.HEAD)])
        probs.append(
            (f"sample's head is ({shown}), not (model, cond, n, *, generator=None)", _HEAD_FIX)
        )
    own = [p for p in params if p.name not in Sampler.HEAD]
    var = [str(p) for p in own if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if var:
        probs.append(
            (
                f"sample takes {', '.join(var)}: its keywords cannot be checked from the signature",
                "declare each keyword the sampler reads as its own parameter: " + _HEAD_FIX,
            )
        )
    loose = [p.name for p in own if p.kind is p.POSITIONAL_OR_KEYWORD]
    if loose:
        probs.append((f"sample's own parameters {loose} are not keyword-only", _HEAD_FIX))
    untyped = [p.name for p in own if p.kind is p.KEYWORD_ONLY and p.annotation is p.empty]
    if untyped:
        probs.append((f"sample's own parameters {untyped} have no type hint", _HEAD_FIX))
    return probs
