"""What the Trainer hands an objective (:class:`synth.parts.base.Updater`): mixed precision
for the forwards, the DDP view of a network, and ``update(network, loss)``."""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import Tensor

from .config import TrainerConfig
from .distributed import Replicas
from .optimization import Optimization

__all__ = ["Updater"]


class Updater:
    """Applies a loss to named networks: zero the gradients, backward (scaled under fp16;
    DDP all-reduces the gradients of the synced forwards during it), unscale and clip,
    step the optimizers.

    ``step`` is the Trainer step being run and ``d_steps`` the discriminator steps per
    generator step (objectives read both).
    """

    def __init__(
        self,
        config: TrainerConfig,
        optim: Optimization,
        replicas: Replicas,
        device: torch.device,
    ) -> None:
        self.config, self.optim, self.replicas, self.device = config, optim, replicas, device
        self.step = 0
        self.d_steps = config.d_steps

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context manager for the forward passes (mixed precision when enabled)."""
        prec = self.config.precision
        if prec == "off":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if prec == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def synced(self, network: Any) -> Any:
        """``network`` as the forwards of a loss given to :meth:`update` must call it: its
        DDP view under torchrun, the network itself otherwise (see
        :mod:`synth.train.distributed`)."""
        return self.replicas.get(network)

    def update(self, network: str | tuple[str, ...], loss: Tensor) -> None:
        """Backward ``loss`` and step the optimizer(s) of ``network``; networks the model does
        not have (or that have nothing to train) are skipped."""
        names = [
            n
            for n in ((network,) if isinstance(network, str) else network)
            if n in self.optim.optimizers
        ]
        if not names:
            return
        for name in names:
            self.replicas.check_synced(name)
        params = [p for n in names for p in self.optim.params[n]]
        for p in params:
            p.grad = None
        scaler = self.optim.scaler("+".join(names))
        (scaler.scale(loss) if scaler is not None else loss).backward()
        optimizers = [self.optim.optimizers[n] for n in names]
        if self.config.grad_clip is not None:
            if scaler is not None:
                for opt in optimizers:
                    scaler.unscale_(opt)
            live = [p for p in params if p.requires_grad]
            torch.nn.utils.clip_grad_norm_(live, self.config.grad_clip)
        for opt in optimizers:
            if scaler is not None:
                scaler.step(opt)
            else:
                opt.step()
        if scaler is not None:
            scaler.update()
