"""core.gan's ``d_fake`` option: which fake the discriminator step scores.

pix2pixHD's official ``pix2pixHD_model.py`` scores the generator step's fake ("reuse"); SPADE's
and CLVAE's ``pix2pix_model.py`` call ``generate_fake`` again in
``compute_discriminator_loss``, after the generator's update, with a new latent draw
("regenerate").
"""

from __future__ import annotations

import contextlib

import pytest
import torch

import synth
from synth.testing import make_condition

K = 4


class _Updater:
    """SGD steps on the named networks; records each update in ``events``."""

    step, d_steps = 0, 1

    def __init__(self, model, events: list[str]) -> None:
        self.model, self.events = model, events

    def autocast(self):
        return contextlib.nullcontext()

    def update(self, network, loss):
        names = (network,) if isinstance(network, str) else network
        loss.backward()
        with torch.no_grad():
            for name in names:
                part = getattr(self.model, name)
                for p in [] if part is None else part.parameters():
                    if p.grad is not None:
                        p -= 0.1 * p.grad
                        p.grad = None
        self.events.append("update " + "+".join(names))


def _run(d_fake: str | None):
    objective = {"type": "core.gan"} | ({} if d_fake is None else {"d_fake": d_fake})
    torch.manual_seed(0)
    model = synth.compose(
        {
            "generator": {
                "type": "core.simple_generator",
                "num_classes": K,
                "ngf": 4,
                "num_stages": 2,
                "z_dim": 8,
            },
            "injector": {"type": "core.gaussian"},
            "discriminator": {
                "type": "core.patch_discriminator",
                "ndf": 4,
                "n_layers": 2,
            },
            "losses": {"gan": {"type": "core.hinge"}},
            "objective": objective,
        }
    )
    events: list[str] = []
    calls: list[dict] = []

    def on_generator(module, args, out):
        latents = args[1] if len(args) > 1 else None
        calls.append(
            {"z": latents.z.detach().clone(), "image": out.image, "grad": torch.is_grad_enabled()}
        )
        events.append("generator")

    d_inputs: list[torch.Tensor] = []
    model.generator.register_forward_hook(on_generator)
    model.discriminator.register_forward_hook(lambda m, a, o: d_inputs.append(a[0].detach()))
    cond = make_condition(
        ["label_map"],
        batch_size=2,
        size=(16, 16),
        num_classes=K,
        generator=torch.Generator().manual_seed(0),
    )
    real = torch.rand(2, 3, 16, 16) * 2 - 1
    model.objective.step(model, cond, real, _Updater(model, events))
    return events, calls, d_inputs


def test_reuse_scores_the_generator_steps_fake_without_a_second_forward(synth_registry):
    events, calls, d_inputs = _run(None)  # the default
    assert events == ["generator", "update generator+injector", "update discriminator"]
    assert len(calls) == 1
    # the discriminator step's batch is cat([real, fake]): its fake half is step 1's image
    assert torch.equal(d_inputs[-1][2:], calls[0]["image"].detach())


def test_regenerate_calls_the_updated_generator_again_with_a_new_latent_draw(synth_registry):
    events, calls, d_inputs = _run("regenerate")
    assert events == [
        "generator",
        "update generator+injector",
        "generator",
        "update discriminator",
    ]
    first, second = calls
    assert first["grad"] and not second["grad"]  # the new fake is made under no_grad
    assert not torch.allclose(first["z"], second["z"])  # a fresh prior draw
    assert torch.equal(d_inputs[-1][2:], second["image"])
    assert not torch.allclose(second["image"], first["image"].detach())


def test_d_fake_rejects_other_values(synth_registry):
    with pytest.raises(Exception, match="d_fake"):
        synth.build({"type": "core.gan", "d_fake": "fresh"})


def test_n_samples_per_input_score_each_real_once_in_both_steps(synth_registry):
    torch.manual_seed(0)
    spec = {
        "generator": {"type": "core.simple_generator", "num_classes": K, "ngf": 4,
                      "num_stages": 2, "z_dim": 8},
        "injector": {"type": "core.gaussian"},
        "discriminator": {"type": "core.patch_discriminator", "ndf": 4, "n_layers": 2},
        "losses": {"gan": {"type": "core.hinge"},
                   "fm": {"type": "core.feature_matching", "weight": 10.0}},
        "objective": {"type": "core.gan", "samples_per_input": 3},
    }  # fmt: skip
    model = synth.compose(spec)
    seen: list[tuple[torch.Tensor, synth.Condition]] = []
    model.discriminator.register_forward_hook(lambda m, a, o: seen.append((a[0], a[1])))
    gen_conds: list[synth.Condition] = []
    model.generator.register_forward_hook(lambda m, a, o: gen_conds.append(a[0]))
    cond = make_condition(["label_map"], batch_size=2, size=(16, 16), num_classes=K,
                          generator=torch.Generator().manual_seed(0))  # fmt: skip
    real = torch.rand(2, 3, 16, 16) * 2 - 1
    logs = model.objective.step(model, cond, real, _Updater(model, []))
    # generator step and discriminator step: the 2 reals once, then the 2·3 fakes
    assert [x.shape[0] for x, _ in seen] == [8, 8]
    for x, c in seen:
        assert torch.equal(x[:2], real)
        assert torch.equal(
            c.label_map, torch.cat([cond.label_map, cond.label_map.repeat_interleave(3, 0)])
        )
    assert gen_conds[0].repeats == 3  # the generator knows its rows come in groups of copies
    assert torch.isfinite(logs["g/fm"])


def test_feature_matching_against_each_real_once_equals_against_the_repeated_reals(synth_registry):
    """The G step scores a real once and repeats its (detached) features for its N fakes: the
    same feature-matching term as scoring the N copies (a discriminator without batch
    statistics)."""
    from synth.parts.objectives import _detached, discriminate

    torch.manual_seed(0)
    d = synth.build({"type": "core.patch_discriminator", "ndf": 4, "n_layers": 2,
                     "num_classes": K})  # fmt: skip
    fm = synth.build({"type": "core.feature_matching"})
    cond = make_condition(["label_map"], batch_size=2, size=(16, 16), num_classes=K,
                          generator=torch.Generator().manual_seed(1))  # fmt: skip
    real, fake = torch.rand(2, 3, 16, 16), torch.rand(6, 3, 16, 16)
    cond_n, real_n = cond.repeat_interleave(3), real.repeat_interleave(3, 0)
    once_real, once_fake = discriminate(d, real, fake, cond, repeats=3)
    old_fake, old_real = discriminate(d, fake, real_n, cond_n)
    inputs = dict(real=real_n, fake=synth.SynthesisOutput(fake))
    new = fm(synth.LossInputs("generator", cond_n, disc_real=_detached(once_real, 3),
                              disc_fake=once_fake, **inputs))  # fmt: skip
    old = fm(synth.LossInputs("generator", cond_n, disc_real=_detached(old_real),
                              disc_fake=old_fake, **inputs))  # fmt: skip
    torch.testing.assert_close(new, old)
