"""The harness of conditioning blocks."""

from __future__ import annotations

import torch
from torch import Tensor

from ....context import Context
from ...inputs import config_value, make_condition, make_latents
from ..harness import _Harness, _num_classes, _requirements
from ..tensors import _nonfinite


class _Conditioning(_Harness):
    kind = "conditioning"
    keys = frozenset({"x", "cond", "latents", "stage"})

    def defaults(self, part, missing, g):
        cfg = part.config
        c = int(config_value(cfg, "channels", 8))
        stage = int(config_value(cfg, "stage", 0))
        reqs = _requirements(part)
        h, w = self.size(part)
        cond = make_condition(
            reqs,
            batch_size=self.s.batch_size,
            size=(h, w),
            num_classes=_num_classes(part),
            generator=g,
        )
        latents = make_latents(
            reqs,
            batch_size=self.s.batch_size,
            size=(h, w),
            z_dim=int(config_value(cfg, "z_dim", 8)),
            style_dim=int(config_value(cfg, "style_dim", 8)),
            num_stages=max(int(config_value(cfg, "num_stages", 1)), stage + 1),
            num_classes=_num_classes(part),
            code_dim=int(config_value(cfg, "code_dim", 8)),
            channels=c,
            generator=g,
        )
        x = torch.randn(self.s.batch_size, c, max(h // 2, 1), max(w // 2, 1), generator=g)
        return {"x": x.requires_grad_(), "cond": cond, "latents": latents, "stage": stage}

    def run(self, part, inp, seed):
        return part(inp["x"], Context(inp["cond"], inp.get("latents"), inp.get("stage", 0)))

    def validate(self, part, inp, out):
        x = inp["x"]
        if not isinstance(out, Tensor):
            return [
                (
                    f"forward returned {type(out).__name__}, not a Tensor",
                    "return the modulated features x: [B, C, H, W]",
                )
            ]
        probs = []
        if out.shape != x.shape:
            probs.append(
                (
                    f"output shape {tuple(out.shape)} != input shape {tuple(x.shape)}",
                    "a conditioning block maps x: [B, C, H, W] to the same shape; change channels "
                    "or resolution outside the block",
                )
            )
        if out.dtype != x.dtype:
            probs.append(
                (
                    f"output dtype {out.dtype} != input dtype {x.dtype}",
                    "cast the result back with .to(x.dtype)",
                )
            )
        if _nonfinite({"out": out}):
            probs.append(("output has NaN/Inf values", "check divisions, logs and eps"))
        return probs

    def grad_leaves(self, inp):
        x = inp["x"]
        return {"x": x} if isinstance(x, Tensor) and x.requires_grad else {}

    def compile_cases(self, part):
        inp = self.inputs(part)

        def make_args():
            return (inp["x"], Context(inp["cond"], inp.get("latents"), inp.get("stage", 0)))

        return [("forward(x, ctx)", lambda x, ctx: part(x, ctx), make_args, True)]
