"""The exponential moving average of the generator's weights (``TrainerConfig.ema``), and a
view of the model that uses it in place of the trained generator."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..model import SynthesisModel

__all__ = ["GeneratorEMA", "with_generator"]


class GeneratorEMA:
    """``W_ema <- decay · W_ema + (1 - decay) · W`` after every step, through
    :class:`torch.optim.swa_utils.AveragedModel` with :func:`get_ema_multi_avg_fn`
    (``W_ema = W`` at the first update); buffers (norm statistics, spectral-norm vectors)
    are copied from the generator, not averaged.

    ``module`` is the EMA generator: the sample grids and the exported model use it directly.
    """

    def __init__(self, generator: nn.Module, decay: float) -> None:
        self.averaged = AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(decay))
        self.averaged.eval().requires_grad_(False)

    @property
    def module(self) -> nn.Module:
        return self.averaged.module

    @torch.no_grad()
    def update(self, generator: nn.Module) -> None:
        self.averaged.update_parameters(generator)
        for mine, live in zip(self.module.buffers(), generator.buffers(), strict=True):
            mine.copy_(live)

    @torch.no_grad()
    def recalibrate(self, inputs: Iterable[tuple[Any, Any]]) -> int:
        """Recompute the EMA generator's batch-norm running statistics on its own activations,
        from ``inputs``: ``(cond, latents)`` pairs it is called on in train mode (the recipe of
        :func:`torch.optim.swa_utils.update_bn`: statistics reset, then cumulative averages).
        The live generator's statistics, copied at each update, belong to other weights: an
        averaged network normalised by them drifts off (SPADE's batch norm in eval mode).
        Returns the number of batch-norm layers (0: nothing to do, ``inputs`` not read)."""
        norms = [m for m in self.module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms:
            return 0
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches
        self.module.train()
        try:
            for cond, latents in inputs:
                self.module(cond, latents)
        finally:
            for m, momentum in zip(norms, momenta, strict=True):
                m.momentum = momentum
            self.module.eval()
        return len(norms)

    def state_dict(self) -> dict[str, Any]:
        """``{"weights": <generator state dict>, "n_averaged": <updates so far>}``."""
        return {"weights": self.module.state_dict(), "n_averaged": self.averaged.n_averaged}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["weights"])
        n: Tensor = torch.as_tensor(state["n_averaged"])
        self.averaged.n_averaged.copy_(n)


def with_generator(model: SynthesisModel, generator: nn.Module) -> SynthesisModel:
    """A model that shares every part of ``model`` but has ``generator`` as its generator:
    sampling and ``save_pretrained`` work on it as on ``model``, and ``model`` is untouched.

    A shallow copy with its own table of submodules (the parts themselves are shared).
    """
    view = copy.copy(model)
    view._modules = {**model._modules, "generator": generator}
    return view
