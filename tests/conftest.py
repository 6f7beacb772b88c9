"""Test-wide settings: never download weights, small thread count, deterministic."""

import os

os.environ.setdefault("SYNTH_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

# pytest-xdist runs one worker per core; more threads per worker only contend.
torch.set_num_threads(1)
