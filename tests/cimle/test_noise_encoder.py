"""cimle.noise_encoder: E(one_hot(x) ⊕ z̃) with the one-hot part gathered equals the network of
§5.2.1 written densely (3×3 conv of the concatenated map, layer norm, LeakyReLU, ...)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import synth
from synth_cimle.injectors import NoiseEncoder


def _layer_norm(x, norm):
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean(dim=(1, 2, 3), keepdim=True)
    y = (x - mean) / torch.sqrt(var + norm.eps)
    return y * norm.weight[:, None, None] + norm.bias[:, None, None]


def test_gathered_encoder_equals_the_dense_network():
    torch.manual_seed(0)
    k = 5
    enc = NoiseEncoder(num_classes=k, channels=3, noise_dim=2, hidden=6, noise_downsample=2)
    labels = torch.randint(0, k, (2, 12, 10))
    cond = synth.Condition(label_map=labels, num_classes=k)
    noise = torch.randn(2, 2, 6, 5)
    up = F.interpolate(noise, size=(12, 10), mode="nearest")
    x = torch.cat([F.one_hot(labels, k).permute(0, 3, 1, 2).float(), up], 1)
    x = F.leaky_relu(
        _layer_norm(F.conv2d(x, enc.conv1.weight, enc.conv1.bias, padding=1), enc.norm1), 0.2
    )
    x = F.leaky_relu(_layer_norm(enc.conv2(x), enc.norm2), 0.2)
    torch.testing.assert_close(enc.encode_noise(cond, noise), enc.conv3(x), atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="num_classes"):
        enc.encode_noise(synth.Condition(label_map=labels, num_classes=k + 1), noise)
