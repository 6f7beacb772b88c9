"""The harness of metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ...inputs import make_condition, make_image
from ..harness import _Harness
from ..tensors import _flatten, _nonfinite


class _Metric(_Harness):
    kind = "metric"
    keys = frozenset({"updates"})
    applicable = frozenset({"build", "config_roundtrip", "forward", "determinism"})
    na_reason = "metrics accumulate under no_grad and are not compiled or cast"
    _IMAGE_ARGS = frozenset(
        {
            "fake",
            "real",
            "image",
            "images",
            "x",
            "y",
            "pred",
            "preds",
            "target",
            "targets",
            "reference",
            "generated",
        }
    )

    def defaults(self, part, missing, g):
        import inspect

        sig = inspect.signature(part.update)
        size = self.size(part)
        b = self.s.batch_size
        updates = []
        for _ in range(2):
            kwargs: dict[str, Any] = {}
            for name, prm in sig.parameters.items():
                if prm.kind in (prm.VAR_POSITIONAL, prm.VAR_KEYWORD):
                    continue
                if name in self._IMAGE_ARGS:
                    kwargs[name] = make_image(b, size, generator=g)
                elif name == "samples":
                    kwargs[name] = torch.tanh(torch.randn(b, 3, 3, *size, generator=g))
                elif name == "cond":
                    kwargs[name] = make_condition(
                        {"label_map"}, batch_size=b, size=size, generator=g
                    )
                elif prm.default is prm.empty:
                    raise ValueError(
                        f"cannot make an example for {type(part).__name__}.update argument "
                        f"{name!r}; define example_inputs() returning {{'updates': [...]}}"
                    )
            updates.append(kwargs)
        return {"updates": updates}

    def input_hint(self, part):
        return "define example_inputs() returning {'updates': [dict of update() arguments]}"

    def run(self, part, inp, seed):
        part.reset()
        for u in inp["updates"]:
            if isinstance(u, Mapping):
                part.update(**u)
            elif isinstance(u, tuple):
                part.update(*u)
            else:
                part.update(u)
        return part.compute()

    def validate(self, part, inp, out):
        if not isinstance(out, dict):
            return [
                (
                    f"compute() returned {type(out).__name__}, not a dict",
                    "return a dict of values plus a 'settings' entry",
                )
            ]
        probs: list[tuple[str, str]] = []
        if not isinstance(out.get("settings"), dict):
            probs.append(
                (
                    "compute() has no 'settings' dict",
                    "record the settings used (backbone, weights, resolution, n) under 'settings'",
                )
            )
        bad = _nonfinite(_flatten({k: v for k, v in out.items() if k != "settings"}))
        if bad:
            probs.append((f"NaN/Inf in {bad}", "check the metric's arithmetic"))
        return probs
