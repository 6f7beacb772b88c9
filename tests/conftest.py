"""Test-wide settings: never download weights, small thread count, deterministic."""

import os

os.environ.setdefault("SYNTH_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

# pytest-xdist runs one worker per core; more threads per worker only contend.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _offline_and_private_cache(monkeypatch, tmp_path):
    """Every test runs offline with its own empty weights cache (``SYNTH_HOME``)."""
    monkeypatch.setenv("SYNTH_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("SYNTH_HOME", str(tmp_path / "synth_home"))
