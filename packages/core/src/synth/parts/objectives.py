"""Training objectives: one iteration's logic. The Trainer owns the loop, devices and state."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

import torch
from einops import rearrange
from pydantic import Field
from torch import Tensor, nn

from ..condition import Condition
from ..config import PartConfig
from ..latents import Latents
from ..nn import ops
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
    disc: Discriminator | Any,
    first: SynthesisOutput | Tensor,
    second: SynthesisOutput | Tensor,
    cond: Condition,
    *,
    repeats: int = 1,
) -> tuple[DiscriminatorOutput, DiscriminatorOutput]:
    """Run ``disc`` once on ``cat([first, second])`` and split the outputs back.

    One pass instead of two (the conditional discriminator sees the condition twice, and a DDP
    wrapper sees one forward per backward). ``second`` may hold ``repeats`` images per input of
    ``first`` (batch ``B·repeats``, ordered ``(b n)``). A discriminator that ``reads_pyramid``
    also gets the levels: a ``SynthesisOutput``'s own pyramid, or a bare image average-pooled to
    the other side's level sizes (``S^k(x)`` of the nested-scale paper's eq. 4).
    """
    images = [_image(first), _image(second)]
    b = images[0].shape[0]
    both = cond.map(lambda t: torch.cat([t, t.repeat_interleave(repeats, dim=0)]))
    kwargs = {}
    if getattr(disc, "reads_pyramid", False):
        kwargs["pyramid"] = _joint_pyramid(first, second)
    out = disc(torch.cat(images), both, **kwargs)

    def half(o: DiscriminatorOutput, sl: slice) -> DiscriminatorOutput:
        return DiscriminatorOutput(
            logits=[t[sl] for t in o.logits], features=[[t[sl] for t in fs] for fs in o.features]
        )

    return half(out, slice(0, b)), half(out, slice(b, None))


def _image(x: SynthesisOutput | Tensor) -> Tensor:
    return x.image if isinstance(x, SynthesisOutput) else x


def _joint_pyramid(
    first: SynthesisOutput | Tensor, second: SynthesisOutput | Tensor
) -> list[Tensor]:
    """Per level, ``cat([first's level, second's level])``; the side without a pyramid (a real
    image) is pooled to the sizes of the side with one."""
    given = [x.pyramid for x in (first, second) if isinstance(x, SynthesisOutput) and x.pyramid]
    if not given:
        raise ValueError(
            "this discriminator scores the levels of an RGB pyramid, but neither side has one: "
            "give it the generator's SynthesisOutput (with pyramid), not a bare image"
        )
    sizes = [tuple(level.shape[-2:]) for level in given[0]]

    def levels(x: SynthesisOutput | Tensor) -> list[Tensor]:
        if isinstance(x, SynthesisOutput) and x.pyramid:
            return list(x.pyramid)
        return ops.pool_pyramid(_image(x), sizes)

    return [torch.cat(pair) for pair in zip(levels(first), levels(second), strict=True)]


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


def _detached(out: DiscriminatorOutput, repeats: int = 1) -> DiscriminatorOutput:
    """``out`` without graph, each row ``repeats`` times in a row (a real's scores beside its
    N fakes)."""

    def cut(t: Tensor) -> Tensor:
        t = t.detach()
        return t.repeat_interleave(repeats, dim=0) if repeats > 1 else t

    return DiscriminatorOutput(
        [cut(t) for t in out.logits], [list(map(cut, fs)) for fs in out.features]
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
       "discriminator" summed and the discriminator updated. Which fake it scores is
       ``d_fake``: ``"reuse"`` (default) the fake of step 1 (pix2pixHD's order, official
       ``pix2pixHD_model.py``: one forward per iteration), ``"regenerate"`` a new fake made
       under no_grad by the just-updated generator from a fresh latent draw (a new posterior
       sample of the real image, or a new prior draw: SPADE's and CLVAE's official
       ``pix2pix_model.py``, whose ``compute_discriminator_loss`` calls ``generate_fake``
       again). On iterations without a generator step the fake is made under no_grad either way.

    ``samples_per_input = N > 1`` (the nested-scale paper draws N = 4 codes per input each
    step, for its diversity loss): step 1 draws N prior codes per input (the posterior, if any,
    is not used), the losses see the ``B·N`` fakes against each real repeated N times, and
    ``LossInputs.samples [B, N, C, H, W]``, ``sample_latents`` and ``sample_output`` (pyramid,
    extras) are filled. Both steps' discriminator passes score each real once beside the
    ``B·N`` fakes (step 1 repeats the real's detached scores and features for its N fakes).
    The generator gets the condition with ``Condition.repeats = N``, so blocks that depend on
    the condition alone (SPADE's γ, β) compute once per input.

    A discriminator that ``reads_pyramid`` gets the generator's pyramid for the fakes and the
    real image average-pooled to the same level sizes.

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
        samples_per_input: int = Field(1, ge=1)
        """N prior samples per input in the generator step (diversity losses read them)."""
        d_fake: Literal["reuse", "regenerate"] = "reuse"
        """The discriminator step's fake: the generator step's (pix2pixHD) or a new one from
        the updated generator and a fresh latent draw (SPADE/CLVAE)."""

    config: Config
    networks = ("generator", "injector", "discriminator")
    requires_parts = frozenset({"discriminator"})

    @classmethod
    def provided(cls, config: PartConfig | None = None) -> frozenset[str]:
        n = getattr(config, "samples_per_input", 1)
        return frozenset({"samples"}) if n > 1 else frozenset()

    def _latents(self, injector: Any, cond: Condition, real: Tensor) -> Latents | None:
        if injector is None:
            return None
        if injector.has_posterior and self.config.use_posterior and self._n == 1:
            return injector.posterior(real, cond)
        return injector.prior(cond)

    @property
    def _n(self) -> int:
        return self.config.samples_per_input

    def step(
        self, model: SynthesisModel, cond: Condition, real: Tensor, updater: Updater
    ) -> dict[str, Tensor]:
        assert model.discriminator is not None
        d_steps = max(1, int(getattr(updater, "d_steps", 1)))
        logs: dict[str, Tensor] = {}
        if int(getattr(updater, "step", 0)) % d_steps == 0:
            fake = self._generator_step(model, cond, real, updater, logs)
            if self.config.d_fake == "regenerate":
                fake = self._fresh_fake(model, cond, real, updater)
        else:
            fake = self._fresh_fake(model, cond, real, updater)
        self._discriminator_step(model, cond, real, fake, updater, logs)
        return logs

    def _fresh_fake(
        self, model: SynthesisModel, cond: Condition, real: Tensor, updater: Updater
    ) -> SynthesisOutput:
        """``B·N`` fakes from a new latent draw, under no_grad (what the discriminator step
        reads)."""
        cond_n, real_n = self._repeated(cond, real)
        with torch.no_grad(), updater.autocast():
            latents = self._latents(model.injector, cond_n, real_n)
            return model.generator(cond_n, latents)

    def _repeated(self, cond: Condition, real: Tensor) -> tuple[Condition, Tensor]:
        """Each input N times in a row (``Condition.repeats`` records it)."""
        if self._n == 1:
            return cond, real
        return cond.repeat_interleave(self._n), real.repeat_interleave(self._n, dim=0)

    def _generator_step(
        self,
        model: SynthesisModel,
        cond: Condition,
        real: Tensor,
        updater: Updater,
        logs: dict[str, Tensor],
    ) -> SynthesisOutput:
        """Update the generator (and encoder) on ``cond``/``real`` (``B`` inputs, ``B·N``
        fakes); returns the fake, detached."""
        assert model.discriminator is not None
        n = self._n
        cond_n, real_n = self._repeated(cond, real)
        needs_features = any("features" in loss.needs for loss in model.losses.values())
        with updater.autocast():
            latents = self._latents(synced(updater, model.injector), cond_n, real_n)
            fake = synced(updater, model.generator)(cond_n, latents, return_features=needs_features)
            # the bare discriminator, frozen: no gradients of its own to all-reduce here
            # (DDP sees only the discriminator step's pass, which updates it); each real once
            with frozen(model.discriminator):
                d_real, d_fake = discriminate(model.discriminator, real, fake, cond, repeats=n)
            batch = LossInputs(
                "generator",
                cond_n,
                real=real_n,
                fake=fake,
                latents=latents,
                disc_real=_detached(d_real, repeats=n),
                disc_fake=d_fake,
                **self._samples(fake, latents),
            )
            g_loss, g_logs = weighted_losses(
                model.losses, batch, frozenset({"generator", "encoder"}), "g"
            )
        updater.update(("generator", "injector"), g_loss)
        logs.update(g_logs)
        return _detached_output(fake)

    def _samples(self, fake: SynthesisOutput, latents: Latents | None) -> dict[str, Any]:
        """The N-samples fields of the loss inputs (none when N = 1)."""
        if self._n == 1:
            return {}
        samples = rearrange(fake.image, "(b n) c h w -> b n c h w", n=self._n)
        return {"samples": samples, "sample_latents": latents, "sample_output": fake}

    def _discriminator_step(
        self,
        model: SynthesisModel,
        cond: Condition,
        real: Tensor,
        fake: SynthesisOutput,
        updater: Updater,
        logs: dict[str, Tensor],
    ) -> None:
        """Update the discriminator on each real once and the ``B·N`` fakes, in one pass."""
        with updater.autocast():
            disc = synced(updater, model.discriminator)
            d_real, d_fake = discriminate(disc, real, fake, cond, repeats=self._n)
            batch = LossInputs(
                "discriminator",
                cond,
                real=real,
                fake=fake,
                disc_real=d_real,
                disc_fake=d_fake,
            )
            d_loss, d_logs = weighted_losses(model.losses, batch, frozenset({"discriminator"}), "d")
        updater.update("discriminator", d_loss)
        logs.update(d_logs)


def _detached_output(out: SynthesisOutput) -> SynthesisOutput:
    """The image and pyramid of ``out``, detached (what the discriminator step reads)."""
    pyramid = [t.detach() for t in out.pyramid] if out.pyramid else None
    return SynthesisOutput(out.image.detach(), pyramid=pyramid)
