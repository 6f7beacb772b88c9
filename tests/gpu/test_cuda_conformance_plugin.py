"""The CUDA stage of ``tests/gpu/cuda_conformance.py`` run on the CPU (not marked cuda: it keeps
the plugin working on machines without a GPU): a good part has no problems, a part whose bf16
autocast forward overflows, and one whose forward depends on the device, are reported."""

from __future__ import annotations

import pytest
import torch

import synth

from . import cuda_conformance as cc


class _Bf16Inf(synth.ConditioningBlock):
    """Identity in fp32; Inf under autocast (a statistic computed in low precision)."""

    class Config(synth.PartConfig):
        channels: int = 8

    def __init__(self, config=None, **kw):
        super().__init__(config, **kw)
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x, ctx):
        y = torch.nn.functional.linear(x, torch.eye(x.shape[-1], device=x.device))
        if y.dtype == torch.bfloat16:
            return (y * 1e30 * 1e30 * self.scale).to(x.dtype)
        return y * self.scale


class _DeviceDependent(_Bf16Inf):
    """Adds a constant that a device move would change (here: the cuda stage's device is
    compared with the first run; a second run on the 'other' device adds 1)."""

    calls = 0

    def forward(self, x, ctx):
        type(self).calls += 1
        return x * self.scale + (type(self).calls > 1)


@pytest.fixture
def on_cpu(monkeypatch):
    monkeypatch.setattr(cc, "DEVICE", torch.device("cpu"))


def test_good_part_has_no_problems(on_cpu, synth_registry):
    assert cc.cuda_problems("core.instance_norm", channels=8, stages=("fp32", "bf16")) == []


def test_bf16_overflow_and_device_mismatch_are_reported(on_cpu, synth_registry):
    synth_registry.add_part("t.bf16_inf", _Bf16Inf)
    synth_registry.add_part("t.device_dependent", _DeviceDependent)
    problems = cc.cuda_problems("t.bf16_inf", channels=8, stages=("fp32", "bf16"))
    assert any("bf16 autocast" in p and "NaN/Inf" in p for p in problems), problems
    problems = cc.cuda_problems("t.device_dependent", channels=8, stages=("fp32",))
    assert any("fp32 CUDA vs CPU" in p and "differs" in p for p in problems), problems


def test_to_device_keeps_leaves_and_moves_conditions():
    x = torch.zeros(2, requires_grad=True)
    cond = synth.Condition(label_map=torch.zeros(1, 4, 4, dtype=torch.long), num_classes=2)
    moved = cc.to_device({"x": x, "c": [cond]}, torch.device("cpu"))
    assert moved["x"].requires_grad and moved["x"].is_leaf
    assert isinstance(moved["c"][0], synth.Condition)
