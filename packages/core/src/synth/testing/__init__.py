"""``synth.testing``: the public conformance kit (DESIGN §8) for core and plugin parts.

Every registered part must pass :func:`check_part`; plugin authors call it from their own
tests::

    import synth.testing

    def test_my_block(synth_registry):            # fixture from the pytest plugin
        synth_registry.register_plugin(my_plugin)  # or synth_registry.add_part(name, cls)
        synth.testing.check_part("myplugin.block", channels=8)

Checks (each reported as "passed", "failed", "n/a" or "skipped"):

``build``
    ``registry.build(name, **params)`` works; the part is of its registered kind, its
    ``Config`` derives from ``synth.PartConfig`` (unknown keys rejected), and its declared
    capabilities (``requires``, ``provides``, ``needs``) use known field names.
``config_roundtrip``
    ``Config.model_validate_json(config.model_dump_json()) == config`` and rebuilding from
    that JSON gives an equal config.
``forward``
    kind-appropriate forward on example inputs, shapes/dtypes/finiteness checked:
    conditioning ``x -> same shape``; injector ``prior`` fills each ``provided`` field (and
    ``posterior`` sets a scalar ``kl`` when ``has_posterior``); generator ``image [B, C, H, W]``
    in [-1, 1], one feature per stage matching ``stage_channels``/``stage_scales``,
    ``len(stages) == len(stage_channels)``, a pyramid iff ``has_pyramid``; discriminator
    ``DiscriminatorOutput`` with finite per-scale logits; loss a finite scalar for every phase
    in ``roles`` (and ``distance(x, y) -> [B]`` with ``distance(x, x) == 0`` when
    implemented); sampler ``image [B·n, ...]`` plus the ``latents`` used, on a tiny model;
    metric ``compute()`` is a dict with a ``"settings"`` dict. Training objectives: only
    ``build`` and ``config_roundtrip`` for now (the rest is "n/a").
``gradients``
    a random projection of the output is backpropagated: every parameter with
    ``requires_grad`` gets a finite, not-all-zero gradient (parameters that are zero only
    because of a zero initialisation are re-checked after perturbing all parameters), and the
    differentiable inputs (a block's ``x``, a discriminator's ``image``; for losses: per phase,
    at least one of the inputs) receive a gradient.
``save_load``
    ``state_dict`` -> ``safetensors`` bytes -> a part built under another seed ->
    identical outputs in eval mode (so no state lives outside ``state_dict``).
``determinism``
    two builds under one seed have identical state; the same input twice gives identical
    outputs (eval mode). Stochastic parts (injectors, samplers) are seeded by a
    ``torch.Generator``: the same seed gives the same output even when the global RNG moved,
    another seed a different one (a deliberately deterministic class sets
    ``stochastic = False``).
``dtypes``
    fp32 in -> fp32 out, and a ``torch.autocast("cpu", dtype=torch.bfloat16)`` forward runs and
    is finite.
``compile``
    ``torch.compile(forward, fullgraph=True, backend=compile_backend)`` traces without graph
    breaks and matches eager (rtol 1e-3, atol 1e-4; shapes only for random outputs, e.g. an
    injector's prior, compiled with ``generator=None`` since dynamo cannot trace a
    ``torch.Generator``). Samplers, metrics and objectives: "n/a".

Example inputs protocol
-----------------------
By default the kit makes inputs from the part's declared capabilities: the Condition gets
exactly the Condition fields in ``requirements(config)`` (``label_map`` with ``num_classes``
from the config or 4, ``class_weights`` as softmax maps, ``class_id``, ``image``, ``mask``,
``instance_map``; a ``mask`` when none is required) and the Latents exactly the latent fields
(``styles``: one ``[B, style_dim]`` per stage, ``class_codes``: ``[B, K, code_dim]`` per stage,
``z``: ``[B, z_dim]``, ``spatial``: ``[B, channels, H, W]``, sizes from the config or 8). A
generator's latents come from ``core.gaussian`` / ``core.spatial_noise`` built with its
``runtime_args()``, its slots' requirements are included. A conditioning block's ``x`` is
``[B, channels, H/2, W/2]``.

A part whose inputs do not fit these defaults defines a method (or classmethod)::

    def example_inputs(self, *, batch_size: int, size: tuple[int, int],
                       generator: torch.Generator) -> dict[str, Any]: ...

It must draw all randomness from ``generator`` (the kit calls it several times and expects
the same tensors for the same seed) and returns a dict with some of these keys (the
missing ones get defaults):

=============== ============================================================================
kind            keys
=============== ============================================================================
conditioning    ``x`` (Tensor ``[B, C, h, w]``), ``cond`` (Condition), ``latents`` (Latents),
                ``stage`` (int; default ``config.stage`` or 0)
injector        ``cond`` (Condition), ``image`` (Tensor ``[B, 3, H, W]``, for ``posterior``)
generator       ``cond`` (Condition), ``latents`` (Latents or None)
discriminator   ``image`` (Tensor ``[B, C, H, W]``), ``cond`` (Condition)
loss            ``batch`` (LossInputs; its ``phase`` is replaced by each of ``roles``)
sampler         ``model`` (SynthesisModel), ``cond``, ``n`` (int), ``kwargs`` (dict of extra
                ``sample`` keyword arguments), ``output_batch`` (int, expected first
                dimension of ``image``; default ``B·n``)
metric          ``updates`` (list of ``update`` calls: a dict of keyword arguments, a tuple of
                positional ones, or a single argument)
=============== ============================================================================

Tensors that should receive gradients (a block's ``x``, a loss's fake image) should be leaves
with ``requires_grad=True``. ``check_part(..., example_inputs=...)`` overrides both the
method and the defaults with a dict or a callable of the same signature. The helpers in
:mod:`synth.testing.inputs` (``make_condition``, ``make_latents``, ``make_loss_inputs``, ...)
build the default pieces.

Registries
----------
:func:`fresh_registry` swaps the process-wide registry for one with core only (no
entry-point discovery) plus the plugins given, and restores the old one afterwards; the
pytest plugin (:mod:`synth.testing.pytest_plugin`, installed as entry point ``synth`` of group
``pytest11``) exposes it as the ``synth_registry`` fixture.
"""

from __future__ import annotations

from .conformance import CHECKS, CheckResult, ConformanceError, ConformanceReport, check_part
from .inputs import make_condition, make_disc_output, make_image, make_latents, make_loss_inputs
from .registries import TestRegistry, fresh_registry, plugin_name, register_plugin

__all__ = [
    "CHECKS",
    "CheckResult",
    "ConformanceError",
    "ConformanceReport",
    "TestRegistry",
    "check_part",
    "fresh_registry",
    "make_condition",
    "make_disc_output",
    "make_image",
    "make_latents",
    "make_loss_inputs",
    "plugin_name",
    "register_plugin",
]
