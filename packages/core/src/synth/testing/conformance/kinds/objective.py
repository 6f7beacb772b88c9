"""The harness of training objectives, with the kit's stand-in for the Trainer's updater."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from ...inputs import make_condition, make_image
from ..harness import _Harness
from ..tensors import _nonfinite


class _SGDUpdater:
    """The kit's stand-in for the Trainer's updater: plain SGD, no AMP, one process."""

    def __init__(self, model: nn.Module) -> None:
        self.model, self.step, self.d_steps = model, 0, 1
        self.updated: list[str] = []

    def autocast(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def update(self, network: str | tuple[str, ...], loss: Tensor) -> None:
        names = [network] if isinstance(network, str) else list(network)
        nets = {n: getattr(self.model, n, None) for n in names}
        params = [
            p
            for net in nets.values()
            if isinstance(net, nn.Module)
            for p in net.parameters()
            if p.requires_grad
        ]
        if not params:
            return
        for p in params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in params:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-1e-2)
        self.updated.extend(n for n, net in nets.items() if isinstance(net, nn.Module))


class _Objective(_Harness):
    kind = "objective"
    keys = frozenset({"model", "cond", "real"})
    applicable = frozenset({"build", "config_roundtrip", "forward", "determinism"})
    na_reason = "objectives are checked by one step on a tiny model (no own parameters)"

    def defaults(self, part, missing, g):
        from ..._tiny import TINY_NUM_CLASSES, tiny_gan_model

        b, size = self.s.batch_size, self.size(part)
        return {
            "model": tiny_gan_model(self.s.seed),
            "cond": make_condition(
                {"label_map"}, batch_size=b, size=size, generator=g, num_classes=TINY_NUM_CLASSES
            ),
            "real": make_image(b, size, generator=g),
        }

    def input_hint(self, part):
        return (
            "the default is a tiny GAN (generator, injector with posterior, discriminator, "
            "hinge + L1); define example_inputs() returning {'model', 'cond', 'real'} if the "
            "objective needs other parts"
        )

    def run(self, part, inp, seed):
        model = copy.deepcopy(inp["model"]).train()
        before = {k: v.detach().clone() for k, v in model.state_dict().items()}
        updater = _SGDUpdater(model)
        with torch.enable_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            logs = part.step(model, inp["cond"], inp["real"], updater)
        after = model.state_dict()
        changed = sorted({k.split(".")[0] for k in before if not torch.equal(before[k], after[k])})
        return {"logs": logs, "changed": changed, "updated": updater.updated}

    def validate(self, part, inp, out):
        probs: list[tuple[str, str]] = []
        logs = out["logs"]
        if not isinstance(logs, Mapping) or not logs:
            return [
                (
                    f"step() returned {type(logs).__name__} {logs!r:.60}, not a dict of scalars",
                    "return {'<phase>/<loss>': detached 0-d tensor, ...}",
                )
            ]
        bad = {
            k: type(v).__name__
            for k, v in logs.items()
            if not (isinstance(v, Tensor) and v.dim() == 0)
        }
        if bad:
            probs.append(
                (f"logged values {bad} are not 0-d tensors", "log value.detach() of each loss")
            )
        grads = [k for k, v in logs.items() if isinstance(v, Tensor) and v.requires_grad]
        if grads:
            probs.append(
                (f"logged values {grads} still require grad", "log value.detach(), not value")
            )
        nonfinite = _nonfinite({k: v for k, v in logs.items() if isinstance(v, Tensor)})
        if nonfinite:
            probs.append((f"NaN/Inf in logged values {nonfinite}", "check the losses"))
        if not out["updated"]:
            probs.append(
                (
                    "step() never called updater.update(...), so nothing trains",
                    "apply each network's loss with updater.update(network, loss)",
                )
            )
        elif not out["changed"]:
            probs.append(
                (
                    f"updater.update was called for {out['updated']} but no weight changed",
                    "the loss passed to update() must depend on that network's parameters",
                )
            )
        return probs
