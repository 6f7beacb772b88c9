"""A short VAE-GAN run (core.gan objective) overfitting one real pair, scaled down."""

from __future__ import annotations

import contextlib

import torch

import synth
import synth.data


class _Updater:
    """The Updater protocol with one Adam per network (TTUR as in CLVAE: G/E 4e-4... scaled)."""

    def __init__(self, model, lrs: dict[str, float]) -> None:
        self.step, self.d_steps = 0, 1
        self.opts = {
            name: torch.optim.Adam(getattr(model, name).parameters(), lr=lr, betas=(0.0, 0.9))
            for name, lr in lrs.items()
        }

    def update(self, network, loss) -> None:
        names = (network,) if isinstance(network, str) else network
        opts = [self.opts[n] for n in names if n in self.opts]
        for o in opts:
            o.zero_grad(set_to_none=True)
        loss.backward()
        for o in opts:
            o.step()

    def autocast(self):
        return contextlib.nullcontext()


def test_vae_gan_overfits_one_pair(clvae_registry):
    torch.manual_seed(0)
    k = 6
    item = synth.data.demo(64, k)[0]
    real = item["real"][None]
    cond = synth.Condition(label_map=item["label_map"][None], num_classes=k)
    model = synth.compose(
        {
            "generator": {
                "type": "clvae.clvae_generator",
                "num_classes": k,
                "ngf": 4,
                "z_dim": 8,
                "code_dim": 4,
                "crop_size": 64,
                "norm": {"type": "clvae.spade", "hidden": 16, "param_free_norm": "instance"},
                "cse": {"type": "clvae.cse", "hidden": 16, "param_free_norm": "instance"},
            },
            "injector": {
                "type": "clvae.class_layer_encoder",
                "ndf": 4,
                "input_size": 64,
                "num_layers": 5,
            },
            "discriminator": {"type": "clvae.multiscale_discriminator", "ndf": 8, "n_layers": 3},
            "losses": {
                "gan": {"type": "core.hinge", "reduce_scales": "mean"},
                "fm": {"type": "core.feature_matching", "weight": 10.0},
                "kl": {"type": "clvae.kl", "weight": 0.05},
                "l1": {"type": "core.l1", "weight": 10.0},
            },
            "objective": {"type": "core.gan"},
        }
    )

    def l1() -> float:
        with torch.no_grad():
            p = model.injector.encode(real, cond)
            lat = synth.Latents(z=p["mu"], class_codes=model.injector.to_stage_codes(p["class_mu"]))
            return (model.generator(cond, lat).image - real).abs().mean().item()

    before = l1()
    up = _Updater(model, {"generator": 2e-3, "injector": 2e-3, "discriminator": 5e-4})
    for step in range(25):
        up.step = step
        logs = model.objective.step(model, cond, real, up)
        assert all(torch.isfinite(v) for v in logs.values()), logs
    assert {"g/gan", "g/fm", "g/kl", "g/l1", "d/gan"} <= set(logs)
    after = l1()
    assert after < 0.7 * before, (before, after)
