"""Tiny models for the editor's tests, composed and saved by the tests themselves (no
``make demo`` needed): a CLVAE model (per-class codes), a nested-scale decoder (per-scale
codes), the collage SNGAN (norms that read class weights) and core's simple generator."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import synth
from synth.app import Editor, encode_array

pytest.importorskip("fastapi")


def clvae_model():
    pytest.importorskip("synth_clvae")
    pytest.importorskip("synth_collage")  # the blend sampler
    from synth_clvae.samplers import tiny_clvae_model

    return tiny_clvae_model(seed=0, num_classes=4, size=64)


def nested_model():
    pytest.importorskip("synth_nested_scale")
    from synth_nested_scale.samplers import tiny_nested_model

    return tiny_nested_model(seed=0)


def collage_model():
    """``collage.tiny`` with its per-class γ/β drawn at random, as after training (a fresh
    model's classes all share γ = 1, β = 0, so a collage would change nothing)."""
    pytest.importorskip("synth_collage")
    from synth_collage.recipes import tiny_collage_model

    model = tiny_collage_model()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.generator.named_parameters():
            if name.endswith(("gammas.weight", "betas.weight")):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5 + (1.0 if "gammas" in name else 0))
    return model.eval()


def simple_model():
    torch.manual_seed(0)
    spec = {
        "generator": {"type": "core.simple_generator", "num_classes": 4, "ngf": 8, "z_dim": 8},
        "injector": {"type": "core.gaussian"},
    }
    return synth.compose(spec).eval()


def stroke_labels(size: int = 64) -> np.ndarray:
    """Class 0 everywhere, a horizontal band of class 1 and a bottom block of class 2."""
    lm = np.zeros((size, size), np.uint8)
    lm[size * 7 // 16 : size * 9 // 16, size // 8 : size * 7 // 8] = 1
    lm[size * 3 // 4 :, :] = 2
    return lm


def label_input(size: int = 64) -> dict:
    return {"size": [size, size], "label_map": encode_array(stroke_labels(size))}


@pytest.fixture(scope="session")
def clvae_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("app") / "clvae"
    clvae_model().save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def collage_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("app") / "collage"
    collage_model().save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def clvae_editor(clvae_dir) -> Editor:
    return Editor(synth.load(clvae_dir, for_training=False), size=(64, 64), name="clvae tiny")


@pytest.fixture(scope="session")
def collage_editor(collage_dir) -> Editor:
    return Editor(synth.load(collage_dir, for_training=False), size=(32, 32), name="collage tiny")


def roundtrip(data: dict) -> dict:
    """Through JSON text, as the page downloads it."""
    return json.loads(json.dumps(data))
