"""The harness of discriminators."""

from __future__ import annotations

from torch import Tensor

from ....outputs import DiscriminatorOutput
from ...inputs import make_condition, make_image
from ..harness import _Harness, _num_classes, _requirements
from ..tensors import _flatten, _nonfinite


class _Discriminator(_Harness):
    kind = "discriminator"
    keys = frozenset({"image", "cond"})

    def defaults(self, part, missing, g):
        reqs = _requirements(part)
        size = self.size(part)
        cond = make_condition(
            reqs,
            batch_size=self.s.batch_size,
            size=size,
            num_classes=_num_classes(part),
            generator=g,
        )
        image = make_image(
            self.s.batch_size,
            size,
            channels=type(part).image_channels,
            generator=g,
            requires_grad=True,
        )
        return {"image": image, "cond": cond}

    def run(self, part, inp, seed):
        return part(inp["image"], inp["cond"])

    def validate(self, part, inp, out):
        b = self.s.batch_size
        if not isinstance(out, DiscriminatorOutput):
            return [
                (
                    f"forward returned {type(out).__name__}, not synth.DiscriminatorOutput",
                    "return DiscriminatorOutput(logits=[...], features=[[...]])",
                )
            ]
        probs: list[tuple[str, str]] = []
        if not isinstance(out.logits, list) or not out.logits:
            probs.append(
                (
                    "logits is not a non-empty list (one per scale)",
                    "return logits=[per-scale logits]",
                )
            )
        else:
            for i, t in enumerate(out.logits):
                if not isinstance(t, Tensor) or t.dim() < 2 or t.shape[0] != b:
                    got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
                    probs.append(
                        (f"logits[{i}] is {got}", f"logits are [B, 1, h, w] or [B, 1] with B={b}")
                    )
        if not isinstance(out.features, list) or any(not isinstance(f, list) for f in out.features):
            probs.append(
                (
                    "features is not a list (per scale) of lists of tensors",
                    "return features=[[layer activations] per scale]",
                )
            )
        elif out.features and isinstance(out.logits, list) and len(out.features) != len(out.logits):
            probs.append(
                (
                    f"{len(out.features)} feature lists for {len(out.logits)} scales",
                    "give one feature list per scale (or none at all)",
                )
            )
        bad = _nonfinite(_flatten(out))
        if bad:
            probs.append((f"NaN/Inf in {bad}", "check the discriminator's arithmetic"))
        return probs

    def grad_leaves(self, inp):
        x = inp["image"]
        return {"image": x} if isinstance(x, Tensor) and x.requires_grad else {}

    def compile_cases(self, part):
        inp = self.inputs(part)
        return [
            (
                "forward(image, cond)",
                lambda image, cond: part(image, cond),
                lambda: (inp["image"], inp["cond"]),
                True,
            )
        ]
