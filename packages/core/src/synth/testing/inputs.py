"""Example inputs for conformance checks, built from a part's declared capabilities.

Plugin authors writing an ``example_inputs`` method (see :mod:`synth.testing`) can reuse these:
every function draws all its randomness from the ``generator`` it is given, so the same seed
gives the same tensors.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from ..condition import CONDITION_FIELDS, Condition
from ..latents import LATENT_FIELDS, Latents
from ..nn import ops
from ..outputs import DiscriminatorOutput, LossInputs, SynthesisOutput

__all__ = [
    "config_value",
    "make_condition",
    "make_disc_output",
    "make_image",
    "make_latents",
    "make_loss_inputs",
]


def _gen(generator: torch.Generator | None) -> torch.Generator:
    return generator if generator is not None else torch.Generator().manual_seed(0)


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def config_value(config: Any, key: str, default: Any) -> Any:
    """``config.key`` when the config has it and it is not ``None``, else ``default``."""
    value = getattr(config, key, None)
    return default if value is None else value


def make_image(
    batch_size: int,
    size: int | tuple[int, int],
    *,
    channels: int = 3,
    generator: torch.Generator | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """``[B, channels, H, W]`` in ``(-1, 1)`` (``tanh`` of Gaussian noise), optionally a leaf
    that requires grad."""
    h, w = _pair(size)
    x = torch.tanh(torch.randn(batch_size, channels, h, w, generator=_gen(generator)))
    return x.requires_grad_(requires_grad)


def _blocky_ids(
    batch_size: int, size: tuple[int, int], high: int, generator: torch.Generator
) -> Tensor:
    """Random ids on a grid 4x coarser than ``size``, nearest-upsampled (segment-like)."""
    h, w = size
    coarse = torch.randint(
        0, high, (batch_size, max(h // 4, 1), max(w // 4, 1)), generator=generator
    )
    return ops.resize_labels(coarse, (h, w))


def make_condition(
    fields: Iterable[str],
    *,
    batch_size: int = 2,
    size: int | tuple[int, int] = 32,
    num_classes: int = 4,
    generator: torch.Generator | None = None,
) -> Condition:
    """A valid :class:`synth.Condition` with exactly the given Condition fields.

    ``label_map`` / ``instance_map``: blocky random ids (``[B, H, W]``, ids ``< num_classes`` /
    ``< 6``); ``class_id``: ``[B]``; ``class_weights``: softmax of noise over ``K`` classes;
    ``image``: ``[B, 3, H, W]`` in ``(-1, 1)``; ``mask``: ``[B, 1, H, W]`` of 0/1. Names that
    are not Condition fields (latents, plugin extras) are ignored. With no Condition field at
    all, the Condition gets a ``mask`` (a Condition needs at least one tensor).
    """
    g = _gen(generator)
    h, w = _pair(size)
    wanted = [f for f in CONDITION_FIELDS if f in set(fields)]
    if not wanted:
        wanted = ["mask"]
    data: dict[str, Any] = {}
    for name in wanted:
        if name == "label_map":
            data[name] = _blocky_ids(batch_size, (h, w), num_classes, g)
        elif name == "instance_map":
            data[name] = _blocky_ids(batch_size, (h, w), 6, g)
        elif name == "class_id":
            data[name] = torch.randint(0, num_classes, (batch_size,), generator=g)
        elif name == "class_weights":
            logits = torch.randn(batch_size, num_classes, h, w, generator=g) * 2
            data[name] = logits.softmax(dim=1)
        elif name == "image":
            data[name] = make_image(batch_size, (h, w), generator=g)
        elif name == "mask":
            data[name] = (torch.rand(batch_size, 1, h, w, generator=g) > 0.5).float()
    needs_k = {"label_map", "class_id", "class_weights"} & set(data)
    return Condition(**data, num_classes=num_classes if needs_k else None, size=(h, w))


def make_latents(
    fields: Iterable[str],
    *,
    batch_size: int = 2,
    size: int | tuple[int, int] = 32,
    z_dim: int = 8,
    style_dim: int = 8,
    num_stages: int = 1,
    num_classes: int = 4,
    code_dim: int = 8,
    channels: int = 8,
    generator: torch.Generator | None = None,
    requires_grad: bool = False,
) -> Latents:
    """:class:`synth.Latents` with the given latent fields, Gaussian codes of the given sizes.

    ``z``: ``[B, z_dim]``; ``styles``: ``num_stages`` x ``[B, style_dim]``; ``class_codes``:
    ``num_stages`` x ``[B, num_classes, code_dim]``; ``spatial``: ``[B, channels, H, W]``;
    ``kl``: a non-negative scalar. Other names (Condition fields, plugin extras) are ignored.
    With ``requires_grad`` every tensor is a leaf that requires grad.
    """
    g = _gen(generator)
    h, w = _pair(size)
    wanted = set(fields) & set(LATENT_FIELDS)

    def randn(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g).requires_grad_(requires_grad)

    out = Latents()
    if "z" in wanted:
        out.z = randn(batch_size, z_dim)
    if "styles" in wanted:
        out.styles = [randn(batch_size, style_dim) for _ in range(num_stages)]
    if "class_codes" in wanted:
        out.class_codes = [randn(batch_size, num_classes, code_dim) for _ in range(num_stages)]
    if "spatial" in wanted:
        out.spatial = randn(batch_size, channels, h, w)
    if "kl" in wanted:
        out.kl = torch.rand((), generator=g).requires_grad_(requires_grad)
    return out


def make_disc_output(
    batch_size: int,
    size: int | tuple[int, int],
    *,
    num_scales: int = 2,
    generator: torch.Generator | None = None,
    requires_grad: bool = True,
) -> DiscriminatorOutput:
    """A fake multi-scale :class:`synth.DiscriminatorOutput`: per scale ``s`` (finest first)
    logits ``[B, 1, H/2^(s+3), W/2^(s+3)]`` and two feature maps ``[B, 8, H/2^(s+1), ...]``,
    ``[B, 16, H/2^(s+2), ...]``; leaves that require grad so discriminator-phase gradients flow."""
    g = _gen(generator)
    h, w = _pair(size)

    def randn(c: int, f: int) -> Tensor:
        shape = (batch_size, c, max(h // f, 1), max(w // f, 1))
        return torch.randn(*shape, generator=g).requires_grad_(requires_grad)

    logits, features = [], []
    for s in range(num_scales):
        f = 2**s
        features.append([randn(8, 2 * f), randn(16, 4 * f)])
        logits.append(randn(1, 8 * f))
    return DiscriminatorOutput(logits=logits, features=features)


def make_loss_inputs(
    phase: str,
    needs: Iterable[str] = (),
    *,
    requires: Iterable[str] = (),
    batch_size: int = 2,
    size: int | tuple[int, int] = 32,
    num_classes: int = 4,
    num_samples: int = 3,
    with_disc: bool = False,
    generator: torch.Generator | None = None,
) -> LossInputs:
    """:class:`synth.LossInputs` for ``phase`` carrying what ``needs`` asks for.

    Always: ``real`` ``[B, 3, H, W]``, ``fake`` (a SynthesisOutput whose ``image`` requires
    grad) and ``cond`` with the ``requires`` fields (a label map when none). ``features``: two
    stages added to ``fake``; ``pyramid``: three RGB scales, coarse to fine; ``disc_logits`` /
    ``disc_features`` (or ``with_disc``): ``disc_real`` and ``disc_fake`` from
    :func:`make_disc_output`; ``kl``: ``latents.kl``; ``samples``: ``[B, N, 3, H, W]`` plus
    ``sample_latents``. Every float tensor of the generated side requires grad.
    """
    g = _gen(generator)
    h, w = _pair(size)
    needs = set(needs)
    cond_fields = set(requires) & set(CONDITION_FIELDS) or {"label_map"}
    cond = make_condition(
        cond_fields, batch_size=batch_size, size=(h, w), num_classes=num_classes, generator=g
    )
    real = make_image(batch_size, (h, w), generator=g)
    fake = SynthesisOutput(image=make_image(batch_size, (h, w), generator=g, requires_grad=True))
    if "features" in needs:
        fake.features = [
            torch.randn(batch_size, 16, max(h // 2, 1), max(w // 2, 1), generator=g),
            torch.randn(batch_size, 8, h, w, generator=g),
        ]
        fake.features = [f.requires_grad_() for f in fake.features]
    if "pyramid" in needs:
        fake.pyramid = [
            make_image(
                batch_size, (max(h // f, 1), max(w // f, 1)), generator=g, requires_grad=True
            )
            for f in (4, 2, 1)
        ]
    batch = LossInputs(phase=phase, cond=cond, real=real, fake=fake)  # type: ignore[arg-type]
    batch.latents = make_latents(
        {"z"} | ({"kl"} & needs), batch_size=batch_size, generator=g, requires_grad=True
    )
    fake.latents = batch.latents
    if with_disc or {"disc_logits", "disc_features"} & needs:
        batch.disc_real = make_disc_output(batch_size, (h, w), generator=g)
        batch.disc_fake = make_disc_output(batch_size, (h, w), generator=g)
    if "samples" in needs:
        x = torch.tanh(torch.randn(batch_size, num_samples, 3, h, w, generator=g))
        batch.samples = x.requires_grad_()
        batch.sample_latents = make_latents({"z"}, batch_size=batch_size * num_samples, generator=g)
    return batch
