"""An independent re-implementation of the authors' Chainer networks (pfnet-research/
neural-collage), written from PAPERS.md's facts, on the raw ``.npz`` arrays with
``torch.nn.functional`` only (no synth or synth_collage code), and fake snapshots in the
official key layout. The converter tests compare ``from_official`` models against it.

Generator (``resnet_small_scbn.py`` / ``resnet_256_scbn.py``, test mode):
``l1`` (Linear, reshape channel-major to ``[C0, 4, 4]``), blocks
``c2(relu(b2(c1(up(relu(b1(h))))))) + c_sc(up(h))`` (``up``: nearest ×2), CBN/sCBN with the
running statistics and eps 2e-5, then BN (with γ, β), ReLU, 3×3 conv, tanh. sCBN takes one
channel-last map ``[B, h, w, K]`` per CBN layer (b1 at the block's input size, b2 after the
upsampling). Feature blending: ``R`` reference paths and the generated path, blend maps
``[B, h, w, R+1]`` after ``l1`` and after every block, the last index the generated path
(zeros at the first blend).

Discriminator (``SNResNetProjectionDiscriminator``, test mode): spectral norm with Chainer's
one power iteration from the stored ``u``; block1 optimized (conv, relu, conv, pool; shortcut
pool then 1×1), blocks relu-conv-relu-conv(-pool) with a 1×1 shortcut (then pool) where the
width or size changes, relu, spatial sum, ``l{N+1}`` plus ``<l_y(y), h>``.

Encoder (``enc_models/resnetenc_small.py`` / ``resnetenc_256.py``, test mode): stem conv
(``l1`` / ``block1``), blocks ``c2(relu(b2(c1(pool(relu(b1(x))))))) + c_sc(pool(x))`` (BN or
categorical CBN with running statistics), flatten, linear (``l7`` / ``l8_enc``), PReLU
``prelu_out``; ``b7`` of the small encoder is defined but not applied.

Auxiliary networks (``gen_models/resnet_*_auxab.py``): ``A(z) = prelu(lA2(relu(lA1(z))),
preluMiddleW)``, ``B(ζ) = prelu(lB2(relu(lB1(ζ))), preluW)``, ``prelu(x, w) = max(x, 0) +
w·min(x, 0)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

EPS = 2e-5


# ---------------------------------------------------------------------------------------------
# fake snapshots
# ---------------------------------------------------------------------------------------------


def official_generator_arrays(
    multipliers: list[int], ch: int, k: int, dim_z: int, seed: int = 0
) -> dict[str, np.ndarray]:
    """Random arrays in the official generator layout (blocks 2.., then b{last}/l{last})."""
    rng = np.random.default_rng(seed)
    widths = [ch * m for m in multipliers]

    def w(*shape, scale=None):
        fan_in = int(np.prod(shape[1:]))
        return (rng.standard_normal(shape) * (scale or 1 / np.sqrt(fan_in))).astype(np.float32)

    out = {"l1/W": w(16 * widths[0], dim_z), "l1/b": w(16 * widths[0], scale=0.1)}
    for i in range(len(widths) - 1):
        n, cin, cout = i + 2, widths[i], widths[i + 1]
        out[f"block{n}/c1/W"], out[f"block{n}/c1/b"] = w(cout, cin, 3, 3), w(cout, scale=0.1)
        out[f"block{n}/c2/W"], out[f"block{n}/c2/b"] = w(cout, cout, 3, 3), w(cout, scale=0.1)
        out[f"block{n}/c_sc/W"], out[f"block{n}/c_sc/b"] = w(cout, cin, 1, 1), w(cout, scale=0.1)
        for bn, c in (("b1", cin), ("b2", cout)):
            out[f"block{n}/{bn}/gammas/W"] = (1 + 0.3 * rng.standard_normal((k, c))).astype(
                np.float32
            )
            out[f"block{n}/{bn}/betas/W"] = (0.3 * rng.standard_normal((k, c))).astype(np.float32)
            out[f"block{n}/{bn}/avg_mean"] = (0.2 * rng.standard_normal(c)).astype(np.float32)
            out[f"block{n}/{bn}/avg_var"] = rng.uniform(0.5, 2.0, c).astype(np.float32)
            out[f"block{n}/{bn}/N"] = np.array(100.0, dtype=np.float32)
    last, c = len(widths) + 1, widths[-1]
    out[f"b{last}/gamma"] = (1 + 0.3 * rng.standard_normal(c)).astype(np.float32)
    out[f"b{last}/beta"] = (0.3 * rng.standard_normal(c)).astype(np.float32)
    out[f"b{last}/avg_mean"] = (0.2 * rng.standard_normal(c)).astype(np.float32)
    out[f"b{last}/avg_var"] = rng.uniform(0.5, 2.0, c).astype(np.float32)
    out[f"b{last}/N"] = np.array(100.0, dtype=np.float32)
    out[f"l{last}/W"], out[f"l{last}/b"] = w(3, c, 3, 3), w(3, scale=0.1)
    return out


def official_discriminator_arrays(
    multipliers: list[int], ch: int, k: int, seed: int = 0, hidden: str = "out"
) -> dict[str, np.ndarray]:
    """Random arrays in the official SN projection discriminator layout (with ``u``).
    ``hidden``: c1's width in blocks 2..: ``"out"`` (``snresnet_256.py`` passes
    ``hidden_channels``) or ``"in"`` (``resblocks.Block``'s default, ``snresnet_small.py``)."""
    rng = np.random.default_rng(seed)
    widths = [ch * m for m in multipliers]

    def conv(prefix, cout, cin, ksize):
        out[f"{prefix}/W"] = rng.standard_normal((cout, cin, ksize, ksize)).astype(np.float32)
        out[f"{prefix}/b"] = (0.1 * rng.standard_normal(cout)).astype(np.float32)
        out[f"{prefix}/u"] = rng.standard_normal((1, cout)).astype(np.float32)

    out: dict[str, np.ndarray] = {}
    cin = 3
    for i, c in enumerate(widths):
        n = i + 1
        h = cin if hidden == "in" and i > 0 else c
        conv(f"block{n}/c1", h, cin, 3)
        conv(f"block{n}/c2", c, h, 3)
        if i == 0 or cin != c or i < len(widths) - 1:
            conv(f"block{n}/c_sc", c, cin, 1)
        cin = c
    last = len(widths) + 1
    out[f"l{last}/W"] = rng.standard_normal((1, cin)).astype(np.float32)
    out[f"l{last}/b"] = (0.1 * rng.standard_normal(1)).astype(np.float32)
    out[f"l{last}/u"] = rng.standard_normal((1, 1)).astype(np.float32)
    out["l_y/W"] = rng.standard_normal((k, cin)).astype(np.float32)
    out["l_y/u"] = rng.standard_normal((1, k)).astype(np.float32)
    return out


def save(arrays: dict[str, np.ndarray], path: Path, prefix: str = "") -> Path:
    np.savez(path, **{prefix + k: v for k, v in arrays.items()})
    return path


# ---------------------------------------------------------------------------------------------
# generator
# ---------------------------------------------------------------------------------------------


def _t(p, key):
    return torch.from_numpy(p[key])


def _cbn(p, prefix, x, class_id, weights):
    """Test-mode (s)CBN: running statistics, eps 2e-5, γ(c)·x̂ + β(c)."""
    mean = _t(p, f"{prefix}/avg_mean")[None, :, None, None]
    var = _t(p, f"{prefix}/avg_var")[None, :, None, None]
    xhat = (x - mean) / torch.sqrt(var + EPS)
    gammas, betas = _t(p, f"{prefix}/gammas/W"), _t(p, f"{prefix}/betas/W")
    if weights is None:
        return gammas[class_id][:, :, None, None] * xhat + betas[class_id][:, :, None, None]
    w = torch.from_numpy(weights) if isinstance(weights, np.ndarray) else weights
    g = torch.matmul(w, gammas).permute(0, 3, 1, 2)  # [B, h, w, K] @ [K, C] -> [B, C, h, w]
    b = torch.matmul(w, betas).permute(0, 3, 1, 2)
    return g * xhat + b


def _conv(p, prefix, x, pad):
    return F.conv2d(x, _t(p, f"{prefix}/W"), _t(p, f"{prefix}/b"), padding=pad)


def _up(x):
    return x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # unpooling ×2


def _block_numbers(p):
    return sorted({int(k.split("/")[0][5:]) for k in p if k.startswith("block")})


def official_generate(
    p: dict[str, np.ndarray],
    z: torch.Tensor | list[torch.Tensor],
    class_id: torch.Tensor | None = None,
    weights: list[np.ndarray] | None = None,
    blends: list[np.ndarray] | None = None,
) -> torch.Tensor:
    """The official generator in test mode. ``z: [B, Z]`` (or R codes with ``blends``);
    ``weights``: one ``[B, h, w, K]`` map per CBN layer (sCBN) or None (CBN of ``class_id``);
    ``blends``: one ``[B, h, w, R+1]`` map per blend point (after l1 and every block)."""
    blocks = _block_numbers(p)
    zs = z if isinstance(z, list) else [z]
    c0 = p[f"block{blocks[0]}/c1/W"].shape[1]

    def l1(zi):
        h = zi @ _t(p, "l1/W").t() + _t(p, "l1/b")
        return h.reshape(h.shape[0], c0, 4, 4)  # channel-major reshape

    def block(n, h, layer):
        w1 = None if weights is None else weights[layer]
        w2 = None if weights is None else weights[layer + 1]
        r = _conv(p, f"block{n}/c1", _up(F.relu(_cbn(p, f"block{n}/b1", h, class_id, w1))), 1)
        r = _conv(p, f"block{n}/c2", F.relu(_cbn(p, f"block{n}/b2", r, class_id, w2)), 1)
        return r + _conv(p, f"block{n}/c_sc", _up(h), 0)

    def blend(paths, gen, bl):
        m = torch.from_numpy(bl).permute(0, 3, 1, 2)[:, :, None]  # [B, R+1, 1, h, w]
        stacked = torch.stack([*paths, gen], 1)
        return (m * stacked).sum(1)

    paths = [l1(zi) for zi in zs]
    h = paths[0] if blends is None else blend(paths, torch.zeros_like(paths[0]), blends[0])
    for j, n in enumerate(blocks):
        h = block(n, h, 2 * j)
        if blends is not None:
            paths = [block(n, hi, 2 * j) for hi in paths]
            h = blend(paths, h, blends[j + 1])
    last = blocks[-1] + 1
    mean = _t(p, f"b{last}/avg_mean")[None, :, None, None]
    var = _t(p, f"b{last}/avg_var")[None, :, None, None]
    h = (h - mean) / torch.sqrt(var + EPS)
    h = (
        h * _t(p, f"b{last}/gamma")[None, :, None, None]
        + _t(p, f"b{last}/beta")[None, :, None, None]
    )
    return torch.tanh(_conv(p, f"l{last}", F.relu(h), 1))


# ---------------------------------------------------------------------------------------------
# discriminator
# ---------------------------------------------------------------------------------------------


def _sn_weight(p, prefix):
    """Chainer's test-mode spectral norm: one power iteration from the stored u."""
    w = _t(p, f"{prefix}/W")
    mat = w.reshape(w.shape[0], -1)
    u = _t(p, f"{prefix}/u")  # [1, out]
    v = u @ mat
    v = v / torch.sqrt((v * v).sum() + 1e-12)
    u2 = v @ mat.t()
    u2 = u2 / torch.sqrt((u2 * u2).sum() + 1e-12)
    sigma = (u2 @ mat @ v.t()).squeeze()
    return w / sigma


def _sn_conv(p, prefix, x, pad):
    return F.conv2d(x, _sn_weight(p, prefix), _t(p, f"{prefix}/b"), padding=pad)


def official_feature_vector(p: dict[str, np.ndarray], x: torch.Tensor) -> torch.Tensor:
    """``feature_vector``: the blocks, ReLU, reshape to ``[B, C·h·w]`` (no spatial sum)."""
    return F.relu(_discriminator_trunk(p, x)).reshape(x.shape[0], -1)


def official_discriminate(
    p: dict[str, np.ndarray], x: torch.Tensor, y: torch.Tensor | None
) -> torch.Tensor:
    """The official SN projection discriminator: ``[B, 3, H, W] -> [B, 1]``."""
    blocks = _block_numbers(p)
    h = F.relu(_discriminator_trunk(p, x)).sum(dim=(2, 3))
    last = blocks[-1] + 1
    out = h @ _sn_weight(p, f"l{last}").t() + _t(p, f"l{last}/b")
    if y is not None:
        out = out + (_sn_weight(p, "l_y")[y] * h).sum(1, keepdim=True)
    return out


def _discriminator_trunk(p: dict[str, np.ndarray], x: torch.Tensor) -> torch.Tensor:
    """The blocks of the SN projection discriminator: ``[B, 3, H, W] -> [B, C, h, w]``."""
    blocks = _block_numbers(p)
    h = x
    for i, n in enumerate(blocks):
        down = i < len(blocks) - 1
        if i == 0:
            r = _sn_conv(p, f"block{n}/c2", F.relu(_sn_conv(p, f"block{n}/c1", h, 1)), 1)
            r = F.avg_pool2d(r, 2)
            sc = _sn_conv(p, f"block{n}/c_sc", F.avg_pool2d(h, 2), 0)
        else:
            r = _sn_conv(p, f"block{n}/c1", F.relu(h), 1)
            r = _sn_conv(p, f"block{n}/c2", F.relu(r), 1)
            if down:
                r = F.avg_pool2d(r, 2)
            sc = h
            if f"block{n}/c_sc/W" in p:
                sc = _sn_conv(p, f"block{n}/c_sc", h, 0)
                sc = F.avg_pool2d(sc, 2) if down else sc
        h = r + sc
    return h


# ---------------------------------------------------------------------------------------------
# encoder
# ---------------------------------------------------------------------------------------------


def _bn_arrays(rng, out, prefix, c, k):
    if k:
        out[f"{prefix}/gammas/W"] = (1 + 0.3 * rng.standard_normal((k, c))).astype(np.float32)
        out[f"{prefix}/betas/W"] = (0.3 * rng.standard_normal((k, c))).astype(np.float32)
    else:
        out[f"{prefix}/gamma"] = (1 + 0.3 * rng.standard_normal(c)).astype(np.float32)
        out[f"{prefix}/beta"] = (0.3 * rng.standard_normal(c)).astype(np.float32)
    out[f"{prefix}/avg_mean"] = (0.2 * rng.standard_normal(c)).astype(np.float32)
    out[f"{prefix}/avg_var"] = rng.uniform(0.5, 2.0, c).astype(np.float32)
    out[f"{prefix}/N"] = np.array(10.0, dtype=np.float32)


def official_encoder_arrays(
    layout: str, ch: int, dim_z: int, k: int = 0, seed: int = 0
) -> dict[str, np.ndarray]:
    """Random arrays of ``resnetenc_small.py`` (``layout="small"``: ``l1``, blocks 2-6 of
    widths ch·{2,4,4,8,8}, ``b7``, ``l7``) or ``resnetenc_256.py`` (``"256"``: ``block1``,
    blocks 2-7 of widths ch·{2,4,8,8,16,16}, ``l8_enc``); ``k > 0``: categorical CBN."""
    rng = np.random.default_rng(seed)
    mult = [2, 4, 4, 8, 8] if layout == "small" else [2, 4, 8, 8, 16, 16]
    stem, fc = ("l1", "l7") if layout == "small" else ("block1", "l8_enc")

    def w(*shape, scale=None):
        fan_in = int(np.prod(shape[1:]))
        return (rng.standard_normal(shape) * (scale or 1 / np.sqrt(fan_in))).astype(np.float32)

    out: dict[str, np.ndarray] = {f"{stem}/W": w(ch, 3, 3, 3), f"{stem}/b": w(ch, scale=0.1)}
    cin = ch
    for i, m in enumerate(mult):
        n, cout = i + 2, ch * m
        out[f"block{n}/c1/W"], out[f"block{n}/c1/b"] = w(cin, cin, 3, 3), w(cin, scale=0.1)
        out[f"block{n}/c2/W"], out[f"block{n}/c2/b"] = w(cout, cin, 3, 3), w(cout, scale=0.1)
        out[f"block{n}/c_sc/W"], out[f"block{n}/c_sc/b"] = w(cout, cin, 1, 1), w(cout, scale=0.1)
        _bn_arrays(rng, out, f"block{n}/b1", cin, k)
        _bn_arrays(rng, out, f"block{n}/b2", cin, k)
        cin = cout
    flat = 16 * cin
    if layout == "small":
        _bn_arrays(rng, out, "b7", flat, 0)  # defined by resnetenc_small.py, never applied
    out[f"{fc}/W"], out[f"{fc}/b"] = w(dim_z, flat), w(dim_z, scale=0.1)
    out["prelu_out/W"] = rng.uniform(0.05, 0.3, dim_z).astype(np.float32)
    return out


def _bn(p, prefix, x, y):
    """Test-mode BN / categorical CBN (eps 2e-5) over axis 1 of ``x``."""
    shape = (1, -1) + (1,) * (x.dim() - 2)
    xhat = (x - _t(p, f"{prefix}/avg_mean").view(shape)) / torch.sqrt(
        _t(p, f"{prefix}/avg_var").view(shape) + EPS
    )
    if f"{prefix}/gammas/W" in p:
        g = _t(p, f"{prefix}/gammas/W")[y].view(x.shape[0], -1, *([1] * (x.dim() - 2)))
        b = _t(p, f"{prefix}/betas/W")[y].view(x.shape[0], -1, *([1] * (x.dim() - 2)))
        return g * xhat + b
    return xhat * _t(p, f"{prefix}/gamma").view(shape) + _t(p, f"{prefix}/beta").view(shape)


def _prelu(x, w):
    return torch.clamp(x, min=0) + w * torch.clamp(x, max=0)


def official_encode(
    p: dict[str, np.ndarray], x: torch.Tensor, y: torch.Tensor | None = None
) -> torch.Tensor:
    """The official encoder in test mode: ``x [B, 3, H, W] -> z [B, dim_z]``."""
    stem = "l1" if "l1/W" in p else "block1"
    h = _conv(p, stem, x, 1)
    for n in [n for n in _block_numbers(p) if f"block{n}/c1/W" in p]:
        r = F.avg_pool2d(F.relu(_bn(p, f"block{n}/b1", h, y)), 2)
        r = _conv(p, f"block{n}/c1", r, 1)
        r = _conv(p, f"block{n}/c2", F.relu(_bn(p, f"block{n}/b2", r, y)), 1)
        h = r + _conv(p, f"block{n}/c_sc", F.avg_pool2d(h, 2), 0)
    h = h.reshape(h.shape[0], -1)  # (b7 is not applied)
    fc = "l7" if "l7/W" in p else "l8_enc"
    return _prelu(h @ _t(p, f"{fc}/W").t() + _t(p, f"{fc}/b"), _t(p, "prelu_out/W"))


# ---------------------------------------------------------------------------------------------
# auxiliary networks
# ---------------------------------------------------------------------------------------------


def official_auxab_arrays(
    dim_z: int, dim_a: int, dim_zeta: int, dim_b: int, k: int, seed: int = 0
) -> dict[str, np.ndarray]:
    """Random arrays of a ``ResNetAuxABGenerator`` (``learned_lr``): A, B, the learned inner
    step ``_fast_alpha`` and a small generator half (blocks 2-4 at ch 2)."""
    rng = np.random.default_rng(seed)

    def w(*shape):
        return (rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)

    out = official_generator_arrays([4, 4, 2, 1], 2, k, dim_z, seed=seed + 1)
    for name, (o, i) in {
        "lA1": (dim_a, dim_z),
        "lA2": (dim_zeta, dim_a),
        "lB1": (dim_b, dim_zeta),
        "lB2": (dim_z, dim_b),
    }.items():
        out[f"{name}/W"], out[f"{name}/b"] = (
            w(o, i),
            (0.1 * rng.standard_normal(o)).astype(np.float32),
        )
    out["preluW/W"] = rng.uniform(0.1, 0.4, dim_z).astype(np.float32)
    out["preluMiddleW/W"] = rng.uniform(0.1, 0.4, dim_zeta).astype(np.float32)
    out["_fast_alpha/W"] = np.full(dim_zeta, 2e-4, dtype=np.float32)
    return out


def _linear(p, name, x):
    return x @ _t(p, f"{name}/W").t() + _t(p, f"{name}/b")


def official_a(p: dict[str, np.ndarray], z: torch.Tensor) -> torch.Tensor:
    """``forward_A``: ``z [B, dim_z] -> ζ [B, dim_zeta]``."""
    return _prelu(_linear(p, "lA2", F.relu(_linear(p, "lA1", z))), _t(p, "preluMiddleW/W"))


def official_b(p: dict[str, np.ndarray], zeta: torch.Tensor) -> torch.Tensor:
    """The ζ -> z half of ``forward``: ``ζ [B, dim_zeta] -> z' [B, dim_z]``."""
    return _prelu(_linear(p, "lB2", F.relu(_linear(p, "lB1", zeta))), _t(p, "preluW/W"))
