"""Per-network optimizers (TTUR), their LR schedules (:mod:`torch.optim.lr_scheduler`),
GradScalers for fp16, and freeze rules."""

from __future__ import annotations

import difflib
import fnmatch
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, MultiStepLR

from ..errors import ConfigError
from .config import FreezeRule, OptimizerConfig, TrainerConfig

__all__ = [
    "Optimization",
    "check_optimizer_names",
    "linear_decay",
    "make_optimizer",
    "schedule_factor",
]


def make_optimizer(params: list[nn.Parameter], oc: OptimizerConfig) -> torch.optim.Optimizer:
    """Adam or AdamW over ``params`` with the settings of ``oc``."""
    cls = torch.optim.Adam if oc.type == "adam" else torch.optim.AdamW
    return cls(params, lr=oc.lr, betas=oc.betas, weight_decay=oc.weight_decay, eps=oc.eps)


def linear_decay(step: int, decay_start: int | None, steps: int) -> float:
    """The LR factor of ``step``: 1 until ``decay_start``, then linear to 0 at ``steps``
    (pix2pixHD/SPADE schedule); always 1 when ``decay_start`` is None."""
    if decay_start is None or step < decay_start:
        return 1.0
    return max(0.0, 1.0 - (step - decay_start) / max(1, steps - decay_start))


def schedule_factor(step: int, config: TrainerConfig) -> float:
    """The LR factor of ``step`` under ``config``: :func:`linear_decay` (``decay_start``) or
    ``lr_gamma ** (number of lr_milestones <= step)`` (what :class:`MultiStepLR` computes)."""
    if config.lr_milestones:
        return config.lr_gamma ** bisect_right(sorted(config.lr_milestones), step)
    return linear_decay(step, config.decay_start, config.steps)


def check_optimizer_names(config: TrainerConfig, known: Sequence[str]) -> None:
    """Raise a :class:`ConfigError` when ``train.optimizers`` names a network the objective
    does not train (a typo would otherwise leave that network on the default ``optimizer``):
    every unknown name at once, each with its close matches among ``known``."""
    unknown = [n for n in config.optimizers if n not in known]
    if not unknown:
        return
    lines = []
    for name in unknown:
        close = difflib.get_close_matches(name, list(known), n=2, cutoff=0.4)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        lines.append(f"  - train.optimizers.{name}: no network {name!r}{hint}")
    raise ConfigError(
        f"train.optimizers has settings for {unknown}, which the objective does not train:\n"
        + "\n".join(lines)
        + f"\nits networks are {', '.join(map(repr, known))}"
    )


class Optimization:
    """What updates the trained networks: an optimizer and a scheduler per network (a
    :class:`LambdaLR` for ``decay_start``, a :class:`MultiStepLR` for ``lr_milestones``), a
    GradScaler per update group (fp16), and the freeze rules.

    The schedulers step once per Trainer step, so at step ``s`` every lr is
    ``lr · schedule_factor(s)``; their state is in checkpoints.
    """

    def __init__(
        self,
        model: nn.Module,
        networks: dict[str, nn.Module],
        config: TrainerConfig,
        *,
        known: tuple[str, ...],
        device_type: str,
    ) -> None:
        """``networks``: the trained ones by name; ``known``: every network name the objective
        updates (an ``optimizers`` entry for another name is an error)."""
        self.config, self._device_type = config, device_type
        check_optimizer_names(config, known)
        self.params = {n: list(net.parameters()) for n, net in networks.items()}
        self.optimizers = {
            n: make_optimizer(self.params[n], config.optimizers.get(n, config.optimizer))
            for n in networks
        }
        if config.lr_milestones and config.decay_start is not None:
            raise ConfigError(
                f"train.lr_milestones={config.lr_milestones} and train.decay_start="
                f"{config.decay_start} are two lr schedules; set one of them"
            )
        if config.lr_milestones and min(config.lr_milestones) < 1:
            raise ConfigError(
                f"train.lr_milestones={config.lr_milestones}: milestones are Trainer steps >= 1"
            )
        self.schedulers: dict[str, LRScheduler]
        if config.lr_milestones:
            ms, gamma = config.lr_milestones, config.lr_gamma
            self.schedulers = {n: MultiStepLR(o, ms, gamma) for n, o in self.optimizers.items()}
        else:
            # read at each step, so a changed config.steps moves the end of the decay
            factor = lambda step: linear_decay(step, config.decay_start, config.steps)  # noqa: E731
            self.schedulers = {n: LambdaLR(o, factor) for n, o in self.optimizers.items()}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        self.freeze = _match_freeze_rules(config.freeze, model)

    def scaler(self, key: str) -> torch.amp.GradScaler | None:
        """The GradScaler of one update group (fp16 only)."""
        if self.config.precision != "fp16":
            return None
        if key not in self.scalers:
            self.scalers[key] = torch.amp.GradScaler(self._device_type)
        return self.scalers[key]

    def lrs(self) -> dict[str, float]:
        """The current lr of each network."""
        return {n: o.param_groups[0]["lr"] for n, o in self.optimizers.items()}

    def apply_freeze(self, step: int) -> None:
        """``requires_grad`` of the parameters under freeze rules, for ``step``."""
        for rule, params in self.freeze:
            for p in params:
                p.requires_grad_(step >= rule.until)

    def step_schedules(self) -> None:
        for scheduler in self.schedulers.values():
            scheduler.step()

    def place_schedules(self, step: int) -> None:
        """Put every schedule at ``step`` under the current config (what its scheduler computes
        there: ``lr · schedule_factor(step)``), so that a run resumed or continued with another
        ``steps`` decays to its new end."""
        factor = schedule_factor(step, self.config)
        for n, scheduler in self.schedulers.items():
            scheduler.last_epoch = step
            groups = self.optimizers[n].param_groups
            for group, base in zip(groups, scheduler.base_lrs, strict=True):
                group["lr"] = base * factor

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
            "scalers": {k: s.state_dict() for k, s in self.scalers.items()},
        }

    def load_state_dict(self, state: dict[str, Any], step: int) -> None:
        """Restore :meth:`state_dict`; a checkpoint without schedulers (version 1) gets them
        placed at ``step``."""
        for n, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][n])
        if "schedulers" in state:
            for n, scheduler in self.schedulers.items():
                scheduler.load_state_dict(state["schedulers"][n])
        else:
            self.place_schedules(step)
        for k, s in state["scalers"].items():
            scaler = self.scaler(k)
            if scaler is not None:
                scaler.load_state_dict(s)


def _match_freeze_rules(
    rules: list[FreezeRule], model: nn.Module
) -> list[tuple[FreezeRule, list[nn.Parameter]]]:
    """Each rule with the parameters it matches; a rule matching none is an error."""
    named = dict(model.named_parameters())
    out = []
    for rule in rules:
        matched = [p for name, p in named.items() if fnmatch.fnmatchcase(name, rule.pattern)]
        if not matched:
            raise ConfigError(
                f"freeze pattern {rule.pattern!r} matches no parameter; names look like "
                f"{next(iter(named), '?')!r}"
            )
        out.append((rule, matched))
    return out
