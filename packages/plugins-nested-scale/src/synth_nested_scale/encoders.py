"""The conditional encoder of the nested-scale decoder (supplement Table 4).

Table 4 ("Encoder network for image outpainting and super-resolution"), LeakyReLU slope 0.2
throughout, IN = instance normalisation:

====  ===============================================
1     Conv(N64-K4-S2-P1) + LeakyReLU
2     Conv(N128-K4-S2-P1) + IN + LeakyReLU
3     Conv(N256-K4-S2-P1) + IN + LeakyReLU
4     Conv(N512-K4-S2-P1) + IN + LeakyReLU
5     Conv(N256-K4-S2-P1) + IN + LeakyReLU
6     Conv(N256-K4-S2-P1) + IN + LeakyReLU
7     Conv(N128-K1-S2-P1) + LeakyReLU
====  ===============================================

Layer 7 is implemented as listed. Its real output size is ``(n + 2·1 − 1) // 2 + 1`` for an
``n``-pixel input: at 128×128 the six K4-S2-P1 layers leave 2×2, and layer 7 samples the
zero-padded 4×4 map at stride 2, so its output is again 2×2 — three of the four positions see
only padding (they are ``LeakyReLU(bias)``), one sees layer 6's bottom-right position (whose
receptive field covers the whole 128×128 input). The decoder flattens it into the conditional
code ``c`` (``128·2·2 = 512`` values at 128×128; see :class:`PyramidDecoder`).

The instance norm is parameter-free (Table 4 gives no affine) with fp32 statistics
(:class:`synth.nn.norms.InstanceNorm2d`). A label-map input is read by gathering in the first
convolution (:class:`synth.nn.layers.LabelConv2d`, DESIGN §7), exactly the dense conv of the
one-hot map.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from synth.nn.layers import LabelConv2d
from synth.nn.norms import InstanceNorm2d

__all__ = ["TABLE4_CHANNELS", "ConditionEncoder", "EncoderLayer", "encoder_sizes"]

#: Output channels of Table 4's seven layers.
TABLE4_CHANNELS: tuple[int, ...] = (64, 128, 256, 512, 256, 256, 128)


def _conv_out(n: int, kernel: int, stride: int, padding: int) -> int:
    return (n + 2 * padding - kernel) // stride + 1


def encoder_sizes(size: tuple[int, int], num_layers: int) -> list[tuple[int, int]]:
    """Output ``(h, w)`` of each layer for an input of ``size``: ``num_layers - 1`` K4-S2-P1
    layers, then the K1-S2-P1 layer (Table 4's layer 7)."""
    out: list[tuple[int, int]] = []
    h, w = size
    for i in range(num_layers):
        k = 1 if i == num_layers - 1 else 4
        h, w = _conv_out(h, k, 2, 1), _conv_out(w, k, 2, 1)
        out.append((h, w))
    return out


class EncoderLayer(nn.Module):
    """``conv -> [IN] -> LeakyReLU(0.2)``: ``[B, C_in, H, W] -> [B, C_out, H', W']``.

    ``conv`` may be a :class:`LabelConv2d` (then ``x`` is the label map ``LongTensor[B, H, W]``).
    """

    def __init__(self, conv: nn.Conv2d, norm: bool) -> None:
        super().__init__()
        self.conv = conv
        self.norm = InstanceNorm2d() if norm else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(self.norm(self.conv(x)), 0.2)


class ConditionEncoder(nn.Module):
    """Table 4's encoder with configurable widths (and depth).

    Args:
        in_channels: image channels read by the first layer (e.g. 3, or 4 with a mask).
        widths: output channels of each layer; all but the last are Conv K4-S2-P1, the last
            is Conv K1-S2-P1 (Table 4: :data:`TABLE4_CHANNELS`). Instance norm on every layer
            but the first and the last.
        num_classes: when set, the input is a label map ``LongTensor[B, H, W]`` with that many
            classes, read by gathering (``in_channels`` is then ignored).

    ``forward(x) -> [f_1, ..., f_L]``: every layer's output, ``f_l: [B, widths[l-1], h_l, w_l]``
    with the sizes of :func:`encoder_sizes` (``f_l`` is the input size over ``2**l`` for the
    K4 layers of an input divisible by ``2**(L-1)``).
    """

    def __init__(self, in_channels: int, widths: list[int], num_classes: int | None = None):
        super().__init__()
        last = len(widths) - 1
        layers = []
        for i, cout in enumerate(widths):
            k, norm = (1, False) if i == last else (4, i > 0)
            if i == 0 and num_classes is not None:
                conv: nn.Conv2d = LabelConv2d(num_classes, cout, k, stride=2, padding=1)
            else:
                cin = in_channels if i == 0 else widths[i - 1]
                conv = nn.Conv2d(cin, cout, k, stride=2, padding=1)
            layers.append(EncoderLayer(conv, norm))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats
