"""Training objectives: one iteration's logic. The Trainer owns the loop, devices and state."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from ..condition import Condition
from ..config import PartConfig
from ..latents import Latents
from ..outputs import DiscriminatorOutput, LossInputs, SynthesisOutput
from .base import Discriminator, Loss, Objective, Updater

if TYPE_CHECKING:
    from ..model import SynthesisModel

__all__ = ["GAN", "discriminate", "frozen", "synced", "weighted_losses"]


def weighted_losses(
    losses: Mapping[str, Loss], batch: LossInputs, roles: frozenset[str], prefix: str
) -> tuple[Tensor, dict[str, Tensor]]:
    """``Σ weight·loss`` over the losses taking part in ``roles``, and each unweighted term.

    Returns ``(total, {"<prefix>/<name>": term.detach()})``, plus ``"<prefix>/total"`` when the
    total sums more than one term (otherwise it would only repeat that term).
    """
    total: Tensor | None = None
    logs: dict[str, Tensor] = {}
    for name, loss in losses.items():
        if not (loss.roles & roles):
            continue
        value = loss(batch)
        logs[f"{prefix}/{name}"] = value.detach().float()
        term = value * loss.weight
        total = term if total is None else total + term
    if total is None:
        raise ValueError(
            f"no loss of the model takes part in the {batch.phase} step (roles {sorted(roles)}); "
            "add one, e.g. core.hinge for a GAN"
        )
    if len(logs) > 1:
        logs[f"{prefix}/total"] = total.detach().float()
    return total, logs


def discriminate(
    disc: Discriminator | Any, first: Tensor, second: Tensor, cond: Condition
) -> tuple[DiscriminatorOutput, DiscriminatorOutput]:
    """Run ``disc`` once on ``cat([first, second])`` and split the outputs back.

    One pass instead of two (the conditional discriminator sees the condition twice).
    """
    b = first.shape[0]
    out = disc(torch.cat([first, second]), cond.map(lambda t: torch.cat([t, t])))

    def half(o: DiscriminatorOutput, sl: slice) -> DiscriminatorOutput:
        return DiscriminatorOutput(
            logits=[t[sl] for t in o.logits], features=[[t[sl] for t in fs] for fs in o.features]
        )

    return half(out, slice(0, b)), half(out, slice(b, None))


def synced(updater: Any, network: Any) -> Any:
    """``network`` as the forward passes of a loss handed to ``updater.update`` must call it.

    Under torchrun the Trainer's updater returns the network's ``DistributedDataParallel``
    view (calling it or its methods, e.g. ``.posterior``, runs through DDP, which then
    all-reduces the gradients during that backward); in one process, and with updaters that
    have no ``synced`` (test stand-ins), the network itself. Use it only for forwards whose
    loss goes to ``update``: a no-grad pass or a frozen network's pass takes the network
    itself and costs no communication.
    """
    get = getattr(updater, "synced", None)
    return network if get is None or network is None else get(network)


@contextlib.contextmanager
def frozen(module: nn.Module | None) -> Iterator[None]:
    """No parameter gradients for ``module`` inside the block (restores the previous flags)."""
    if module is None:
        yield
        return
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def _detached(out: DiscriminatorOutput) -> DiscriminatorOutput:
    return DiscriminatorOutput(
        [t.detach() for t in out.logits], [[t.detach() for t in fs] for fs in out.features]
    )


class GAN(Objective):
    """Adversarial training with the composed losses; VAE-GAN when the injector has a posterior.

    One call is one iteration on one batch:

    1. Generator step (every ``updater.d_steps``-th iteration): latents from the injector's
       posterior of the real image (VAE-GAN: the encoder is trained with the generator and the
       KL term comes from ``latents.kl``, as in SPADE/GauGAN-VAE) or from its prior; the fake and
       the real go through the discriminator in one batched pass (real half detached); losses
       with role "generator" or "encoder" are summed with their weights and the generator (and
       encoder) updated. The discriminator gets no parameter gradients in this step.
    2. Discriminator step: ``cat([real, fake.detach()])`` in one pass; losses with role
       "discriminator" summed and the discriminator updated. The fake of step 1 is reused
       (pix2pixHD's order); on iterations without a generator step it is made under no_grad.

    Data parallel (DDP, see :func:`synced`): the discriminator runs twice per iteration, and
    only the pass whose backward updates it -- step 2's batched real+fake pass -- goes through
    its DDP wrapper, so its reducer sees exactly one forward and one backward per update. Step
    1's pass runs on the bare, frozen discriminator: it yields no discriminator gradients to
    average (the generator's and encoder's, which flow through it, are all-reduced by their
    own wrappers), and it needs no ``no_sync`` or per-pass bookkeeping. Buffers follow DDP's
    ``broadcast_buffers``: rank 0's are broadcast at each wrapped pass.

    Logged: ``g/<loss>``, ``d/<loss>`` (unweighted terms) and ``g/total``, ``d/total`` (weighted
    sums, when a phase has more than one term).
    """

    class Config(PartConfig):
        use_posterior: bool = True
        """Encode the real image with the injector's posterior when it has one (VAE-GAN)."""

    networks = ("generator", "injector", "discriminator")
    requires_parts = frozenset({"discriminator"})

    def _latents(self, injector: Any, cond: Condition, real: Tensor) -> Latents | None:
        if injector is None:
            return None
        if injector.has_posterior and self.config.use_posterior:
            return injector.posterior(real, cond)
        return injector.prior(cond)

    def step(
        self, model: SynthesisModel, cond: Condition, real: Tensor, updater: Updater
    ) -> dict[str, Tensor]:
        assert model.discriminator is not None
        d_steps = max(1, int(getattr(updater, "d_steps", 1)))
        logs: dict[str, Tensor] = {}
        if int(getattr(updater, "step", 0)) % d_steps == 0:
            fake_image = self._generator_step(model, cond, real, updater, logs)
        else:
            with torch.no_grad(), updater.autocast():
                latents = self._latents(model.injector, cond, real)
                fake_image = model.generator(cond, latents).image
        self._discriminator_step(model, cond, real, fake_image, updater, logs)
        return logs

    def _generator_step(
        self,
        model: SynthesisModel,
        cond: Condition,
        real: Tensor,
        updater: Updater,
        logs: dict[str, Tensor],
    ) -> Tensor:
        """Update the generator (and encoder); returns the detached fake ``[B, 3, H, W]``."""
        assert model.discriminator is not None
        needs_features = any("features" in loss.needs for loss in model.losses.values())
        with updater.autocast():
            latents = self._latents(synced(updater, model.injector), cond, real)
            fake = synced(updater, model.generator)(cond, latents, return_features=needs_features)
            # the bare discriminator, frozen: no gradients of its own to all-reduce here
            # (DDP sees only the discriminator step's pass, which updates it)
            with frozen(model.discriminator):
                d_fake, d_real = discriminate(model.discriminator, fake.image, real, cond)
            batch = LossInputs(
                "generator",
                cond,
                real=real,
                fake=fake,
                latents=latents,
                disc_real=_detached(d_real),
                disc_fake=d_fake,
            )
            g_loss, g_logs = weighted_losses(
                model.losses, batch, frozenset({"generator", "encoder"}), "g"
            )
        updater.update(("generator", "injector"), g_loss)
        logs.update(g_logs)
        return fake.image.detach()

    def _discriminator_step(
        self,
        model: SynthesisModel,
        cond: Condition,
        real: Tensor,
        fake_image: Tensor,
        updater: Updater,
        logs: dict[str, Tensor],
    ) -> None:
        with updater.autocast():
            disc = synced(updater, model.discriminator)
            d_real, d_fake = discriminate(disc, real, fake_image, cond)
            batch = LossInputs(
                "discriminator",
                cond,
                real=real,
                fake=SynthesisOutput(fake_image),
                disc_real=d_real,
                disc_fake=d_fake,
            )
            d_loss, d_logs = weighted_losses(model.losses, batch, frozenset({"discriminator"}), "d")
        updater.update("discriminator", d_loss)
        logs.update(d_logs)
