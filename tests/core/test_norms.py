"""core.instance_norm / core.batch_norm / core.adain and the synth.nn.norms helpers they share,
against independent computations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import synth
from synth.nn.norms import InstanceNorm2d, batch_normalize, instance_normalize, modulate
from synth.parts.conditioning import AdaIN, BatchNorm, InstanceNorm


def _ctx(b: int = 2, styles=None, stage: int = 0) -> synth.Context:
    cond = synth.Condition(label_map=torch.zeros(b, 8, 8, dtype=torch.long), num_classes=3)
    return synth.Context(cond, synth.Latents(styles=styles), stage)


def _hand_instance_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean(dim=(2, 3), keepdim=True)
    return (x - mean) / torch.sqrt(var + eps)


# --------------------------------------------------------------------------- instance norm


def test_instance_norm_matches_torch():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8) * 3 + 1
    block = synth.build("core.instance_norm", channels=4)
    assert isinstance(block, InstanceNorm)
    assert block.requires == frozenset()
    assert list(block.parameters()) == []
    torch.testing.assert_close(block(x, _ctx()), F.instance_norm(x))
    torch.testing.assert_close(block(x, _ctx()), _hand_instance_norm(x))


def test_instance_norm_affine_matches_torch():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8)
    block = InstanceNorm(channels=4, affine=True, eps=1e-3)
    torch.testing.assert_close(block(x, _ctx()), F.instance_norm(x, eps=1e-3))  # init 1 / 0
    with torch.no_grad():
        block.weight.normal_()
        block.bias.normal_()
    ref = F.instance_norm(x, weight=block.weight, bias=block.bias, eps=1e-3)
    torch.testing.assert_close(block(x, _ctx()), ref)


# --------------------------------------------------------------------------- batch norm


@pytest.mark.parametrize("affine", [False, True])
def test_batch_norm_matches_torch_train_and_eval(affine):
    torch.manual_seed(0)
    block = synth.build({"type": "core.batch_norm", "affine": affine, "momentum": 0.3}, channels=4)
    ref = nn.BatchNorm2d(4, momentum=0.3, affine=affine)
    if affine:
        with torch.no_grad():
            block.bn.weight.normal_()
            block.bn.bias.normal_()
            ref.weight.copy_(block.bn.weight)
            ref.bias.copy_(block.bn.bias)
    for _ in range(3):
        x = torch.randn(3, 4, 6, 6) * 2 + 0.5
        torch.testing.assert_close(block(x, _ctx(3)), ref(x))
    torch.testing.assert_close(block.bn.running_mean, ref.running_mean)
    torch.testing.assert_close(block.bn.running_var, ref.running_var)
    assert int(block.bn.num_batches_tracked) == 3
    block.eval()
    ref.eval()
    x = torch.randn(2, 4, 6, 6)
    torch.testing.assert_close(block(x, _ctx()), ref(x))


def test_batch_norm_bf16_module_keeps_fp32_statistics():
    torch.manual_seed(0)
    block = BatchNorm(channels=4).to(torch.bfloat16)
    ref = nn.BatchNorm2d(4, affine=False)
    x = (torch.randn(3, 4, 6, 6) + 2).to(torch.bfloat16)
    out = block(x, _ctx(3))
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out, ref(x.float()).to(torch.bfloat16))
    # the running statistics were updated (through the fp32 copies)
    torch.testing.assert_close(
        block.bn.running_mean.float(), ref.running_mean, atol=1e-2, rtol=1e-2
    )


# --------------------------------------------------------------------------- AdaIN


def test_adain_matches_hand_formula():
    torch.manual_seed(0)
    block = synth.build("core.adain", channels=4, stage=1, style_dim=5, num_classes=3)
    assert isinstance(block, AdaIN)
    assert block.requires == frozenset({"styles"})
    x = torch.randn(2, 4, 8, 8) * 2 - 1
    styles = [torch.randn(2, 5) for _ in range(3)]
    out = block(x, _ctx(styles=styles, stage=1))
    # independent computation: gamma/beta from the linear weights, mean/var by hand
    s = styles[1]
    gb = s @ block.affine.weight.T + block.affine.bias
    gamma, beta = gb[:, :4, None, None], gb[:, 4:, None, None]
    ref = _hand_instance_norm(x) * (1 + gamma) + beta
    torch.testing.assert_close(out, ref)
    # it reads the context's stage
    out0 = block(x, _ctx(styles=styles, stage=0))
    assert not torch.allclose(out0, out)


def test_adain_needs_style_dim():
    with pytest.raises(synth.ConfigError, match="style_dim > 0: set style_dim on the generator"):
        synth.build("core.adain", channels=4, stage=0, style_dim=0)
    with pytest.raises(ValueError, match="core.adain needs style_dim > 0"):
        AdaIN(channels=4, stage=0, style_dim=0)


def test_adain_missing_styles_is_a_clear_error():
    block = AdaIN(channels=4, stage=0, style_dim=3)
    x = torch.randn(2, 4, 4, 4)
    with pytest.raises(ValueError, match="core.gaussian"):
        block(x, _ctx(styles=None))
    with pytest.raises(ValueError, match=r"styles\[2\]"):
        block(x, _ctx(styles=[torch.randn(2, 3)], stage=2))


def test_runtime_args_are_the_hosts():
    with pytest.raises(synth.ConfigError, match="runtime argument"):
        synth.build({"type": "core.instance_norm", "channels": 3}, channels=4)


# --------------------------------------------------------------------------- precision / compile


def _naive_bf16_instance_norm(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=(2, 3), keepdim=True)  # stays bf16
    var = ((x - mean) ** 2).mean(dim=(2, 3), keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-5)


@pytest.mark.parametrize("name", ["core.instance_norm", "core.batch_norm", "core.adain"])
def test_bf16_autocast_statistics_in_fp32(name):
    torch.manual_seed(0)
    block = synth.build(name, channels=4, stage=0, style_dim=3)
    conv = nn.Conv2d(4, 4, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(4)[:, :, None, None])
        conv.bias.fill_(100.0)  # large mean: bf16 statistics would lose the variance
    x = torch.randn(2, 4, 8, 8)
    styles = [torch.randn(2, 3)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = conv(x)
        assert h.dtype == torch.bfloat16
        out = block(h, _ctx(styles=styles))
    assert out.dtype == torch.bfloat16
    assert torch.isfinite(out).all()
    ref = block(h.float(), _ctx(styles=styles))  # same bf16 input, fp32 everything
    torch.testing.assert_close(out.float(), ref, atol=0.05, rtol=0.02)
    if name == "core.instance_norm":
        # the check is sharp: statistics in bf16 would be far off
        naive = _naive_bf16_instance_norm(h).float()
        assert (naive - ref).abs().max() > 0.1


def test_instance_normalize_returns_fp32():
    x = torch.randn(1, 2, 4, 4, dtype=torch.bfloat16)
    assert instance_normalize(x).dtype == torch.float32


@pytest.mark.parametrize("name", ["core.instance_norm", "core.batch_norm", "core.adain"])
def test_norms_compile_fullgraph(name):
    torch.manual_seed(0)
    block = synth.build(
        {"type": name, "affine": True} if name != "core.adain" else name,
        channels=4,
        stage=0,
        style_dim=3,
    )
    ctx = _ctx(styles=[torch.randn(2, 3)])
    x = torch.randn(2, 4, 8, 8)
    compiled = torch.compile(block, fullgraph=True, backend="eager")
    if name == "core.batch_norm":
        block.eval()  # compare without a second running-stats update
    torch.testing.assert_close(compiled(x, ctx), block(x, ctx))


# --------------------------------------------------------------------------- synth.nn.norms


@pytest.mark.parametrize(
    ("affine", "momentum", "track"), [(True, 0.1, True), (False, None, True), (True, 0.1, False)]
)
def test_batch_normalize_follows_nn_batchnorm(affine, momentum, track):
    """Training steps (batch statistics, running-statistics update, cumulative average when
    momentum is None, no running statistics without tracking) and eval, as nn.BatchNorm2d."""
    torch.manual_seed(0)
    ours = nn.BatchNorm2d(3, momentum=momentum, affine=affine, track_running_stats=track)
    ref = nn.BatchNorm2d(3, momentum=momentum, affine=affine, track_running_stats=track)
    if affine:
        with torch.no_grad():
            ours.weight.uniform_(0.5, 2)
            ours.bias.normal_()
        ref.load_state_dict(ours.state_dict())
    for step in range(3):
        x = torch.randn(4, 3, 5, 5) * (step + 1) + step
        out = batch_normalize(x, ours)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, ref(x))
    assert ours.state_dict().keys() == ref.state_dict().keys()
    for key, value in ref.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value)
    ours.eval()
    ref.eval()
    x = torch.randn(2, 3, 5, 5)
    torch.testing.assert_close(batch_normalize(x, ours), ref(x))


def test_batch_normalize_upcasts_and_keeps_low_precision_buffers_in_step():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(4).to(torch.bfloat16)
    ref = nn.BatchNorm2d(4)
    x = (torch.randn(3, 4, 6, 6) * 3 + 50).to(torch.bfloat16)
    out = batch_normalize(x, bn)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref(x.float()))
    assert bn.running_mean.dtype == torch.bfloat16
    torch.testing.assert_close(bn.running_mean.float(), ref.running_mean, atol=0.1, rtol=1e-2)


def test_instance_norm_module_and_modulate():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 4, dtype=torch.bfloat16) * 4 + 10
    out = InstanceNorm2d(eps=1e-3)(x)
    assert out.dtype == torch.bfloat16 and not list(InstanceNorm2d().state_dict())
    want = F.instance_norm(x.float(), eps=1e-3).to(torch.bfloat16)
    torch.testing.assert_close(out, want)
    assert torch.equal(InstanceNorm2d()(torch.randn(2, 3, 1, 1)), torch.zeros(2, 3, 1, 1))
    gamma, beta = torch.randn(2, 3, 1, 1), torch.randn(2, 3, 1, 1)
    x_hat = instance_normalize(x)
    got = modulate(x_hat, gamma.to(torch.bfloat16), beta.to(torch.bfloat16))
    assert got.dtype == torch.float32
    ref = x_hat * (1 + gamma.to(torch.bfloat16).float()) + beta.to(torch.bfloat16).float()
    torch.testing.assert_close(got, ref)
