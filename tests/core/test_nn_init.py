"""synth.nn.init against the official initialisations (pix2pixHD's ``weights_init``, SPADE's
``BaseNetwork.init_weights``), transcribed here by class name as the authors' code does, with
xavier's standard deviation written out from its formula."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from synth.nn import init_weights


def _official_pix2pixhd(m: nn.Module) -> None:
    """pix2pixHD ``models/networks.py:weights_init``."""
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        m.weight.data.normal_(0.0, 0.02)
    elif classname.find("BatchNorm2d") != -1:
        m.weight.data.normal_(1.0, 0.02)
        m.bias.data.fill_(0)


def _official_spade_xavier(gain: float = 0.02):
    """SPADE ``BaseNetwork.init_weights('xavier', gain)``'s ``init_func``; xavier-normal's
    std = gain·sqrt(2 / (fan_in + fan_out)), fans = channels × receptive field."""

    def init_func(m: nn.Module) -> None:
        classname = m.__class__.__name__
        if classname.find("BatchNorm2d") != -1:
            if getattr(m, "weight", None) is not None:
                m.weight.data.normal_(1.0, gain)
            if getattr(m, "bias", None) is not None:
                m.bias.data.fill_(0.0)
        elif hasattr(m, "weight") and (classname.find("Conv") != -1 or "Linear" in classname):
            w = m.weight.data
            receptive = w[0][0].numel() if w.dim() > 2 else 1
            fan_sum = (w.shape[0] + w.shape[1]) * receptive
            w.normal_(0.0, gain * math.sqrt(2.0 / fan_sum))
            if getattr(m, "bias", None) is not None:
                m.bias.data.fill_(0.0)

    return init_func


def _net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3),
        nn.BatchNorm2d(8),
        nn.InstanceNorm2d(8),
        nn.Sequential(nn.ConvTranspose2d(8, 4, 3, stride=2), nn.Conv2d(4, 4, 1, bias=False)),
        nn.Embedding(5, 6),
        nn.Linear(6, 7),
    )


@pytest.mark.parametrize(
    ("scheme", "official"), [("normal", _official_pix2pixhd), ("xavier", _official_spade_xavier())]
)
def test_equals_the_official_initialisation_draw_for_draw(scheme, official):
    torch.manual_seed(0)
    ours, ref = _net(), _net()
    ref.load_state_dict(ours.state_dict())
    torch.manual_seed(1)
    init_weights(ours, scheme)
    torch.manual_seed(1)
    ref.apply(official)
    for (name, a), b in zip(ours.state_dict().items(), ref.state_dict().values(), strict=True):
        assert torch.allclose(a, b, rtol=1e-6, atol=0), name


def test_normal_statistics_and_untouched_layers():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(64, 128, 3), nn.BatchNorm2d(4096), nn.Linear(32, 32))
    conv_bias = net[0].bias.detach().clone()
    linear = net[2].weight.detach().clone()
    init_weights(net, "normal")
    w = net[0].weight
    assert abs(w.mean().item()) < 1e-3 and w.std().item() == pytest.approx(0.02, rel=0.02)
    assert net[1].weight.mean().item() == pytest.approx(1.0, abs=1e-3)
    assert net[1].weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert torch.count_nonzero(net[1].bias) == 0
    # pix2pixHD's weights_init leaves conv biases and (absent there) linear layers alone
    assert torch.equal(net[0].bias, conv_bias) and torch.equal(net[2].weight, linear)


def test_xavier_statistics_and_zero_biases():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(64, 128, 3), nn.Linear(1000, 500))
    init_weights(net, "xavier", gain=0.02)
    conv_std = 0.02 * math.sqrt(2.0 / (64 * 9 + 128 * 9))
    assert net[0].weight.std().item() == pytest.approx(conv_std, rel=0.02)
    assert net[1].weight.std().item() == pytest.approx(0.02 * math.sqrt(2 / 1500), rel=0.02)
    assert torch.count_nonzero(net[0].bias) == 0 and torch.count_nonzero(net[1].bias) == 0


def test_spectral_norm_weight_is_initialised_through_its_original():
    torch.manual_seed(0)
    conv = spectral_norm(nn.Conv2d(32, 64, 3))
    init_weights(conv, "xavier")
    raw = conv.parametrizations.weight.original
    assert raw.std().item() == pytest.approx(0.02 * math.sqrt(2 / (32 * 9 + 64 * 9)), rel=0.05)
    assert torch.count_nonzero(conv.bias) == 0
    # σ is estimated for the new weight: the normalised weight has spectral norm ~1 already
    conv.eval()
    sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2).item()
    assert sigma == pytest.approx(1.0, rel=0.05)


def test_default_changes_nothing_and_unknown_schemes_are_refused():
    torch.manual_seed(0)
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    init_weights(net, "default")
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    with pytest.raises(ValueError, match="'kaiming'"):
        init_weights(net, "kaiming")  # type: ignore[arg-type]
