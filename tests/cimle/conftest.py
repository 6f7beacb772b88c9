"""Shared fixtures of the cIMLE tests: a registry with core + the cimle plugin, tiny models."""

from __future__ import annotations

import pytest
import torch

import synth
import synth_cimle.plugin


@pytest.fixture
def cimle_registry(synth_registry):
    synth_registry.register_plugin(synth_cimle.plugin)
    return synth_registry


def tiny_sr_model(scale: int = 2, hierarchical: bool = False, seed: int = 0, code: int = 2):
    """A composed SR model: tiny RRDB + spatial codes + pixel-only cimle.distance."""
    spec = {
        "generator": {
            "type": "cimle.rrdb_generator",
            "scale": scale,
            "nf": 8,
            "nb": 1,
            "gc": 4,
            "code_channels": code,
            "hierarchical": hierarchical,
        },
        "injector": {"type": "cimle.spatial_code", "per_stage": hierarchical},
        "losses": {"imle": {"type": "cimle.distance", "preset": "none", "pixel_weight": 1.0}},
        "objective": {"type": "cimle.imle", "num_codes": 6, "inner_steps": 2, "minibatch": 2},
    }
    torch.manual_seed(seed)
    return synth.compose(spec)


def lr_batch(b: int = 3, h: int = 8, scale: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    lr = torch.rand(b, 3, h, h, generator=g) * 2 - 1
    real = torch.rand(b, 3, h * scale, h * scale, generator=g) * 2 - 1
    return synth.Condition(image=lr, size=(h * scale, h * scale)), real
