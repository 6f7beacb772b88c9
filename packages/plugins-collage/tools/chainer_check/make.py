"""Manual check, Chainer side (run in a separate venv: chainer==7.8.1, numpy<1.24; see
README.md here): the authors' networks from a checkout of their code, random weights and
statistics, test-mode outputs on fixed inputs, each network saved with ``save_npz``.

    python make.py /path/to/neural-collage /tmp/chainer_check

Their spectral norm (``source/functions/max_sv.py``) is written with CUDA kernels only; on
the CPU ``_l2normalize`` is replaced by the same formula in numpy, ``x / (‖x‖ + eps)``.
"""

import sys

import chainer
import chainer.functions as F
import numpy as np
from chainer import serializers

CODE, OUT = sys.argv[1], sys.argv[2]
sys.path.insert(0, CODE)
import source.functions.max_sv as max_sv  # noqa: E402


def _l2normalize(v, eps=1e-12):
    return v / (np.sqrt((v * v).sum()) + eps)


max_sv._l2normalize = _l2normalize
from dis_models.snresnet_256 import SNResNetProjectionDiscriminator as Dis256  # noqa: E402
from dis_models.snresnet_small import SNResNetProjectionDiscriminator  # noqa: E402
from enc_models.resnetenc_256 import ResNetEncoder as Enc256  # noqa: E402
from enc_models.resnetenc_small import ResNetEncoder as EncSmall  # noqa: E402
from gen_models.resnet_256_scbn import SCBNResNetGenerator as SCBNGen256  # noqa: E402
from gen_models.resnet_small_auxab import ResNetAuxABGenerator  # noqa: E402
from gen_models.resnet_small_scbn import SCBNResNetGenerator as SCBNGen  # noqa: E402

rng = np.random.default_rng(0)
np.random.seed(0)  # Chainer's initialisers draw from the global generator


def randomise(model):
    for _, p in sorted(model.namedparams()):
        p.array[...] = p.array + 0.2 * rng.standard_normal(p.shape).astype(np.float32)
    for link in model.links():
        if hasattr(link, "avg_mean") and link.avg_mean is not None:
            link.avg_mean[...] = 0.2 * rng.standard_normal(link.avg_mean.shape)
            link.avg_var[...] = rng.uniform(0.5, 2.0, link.avg_var.shape)


outs = {}
with chainer.using_config("train", False), chainer.no_backprop_mode():
    # encoders
    x128 = rng.uniform(-1, 1, (2, 3, 128, 128)).astype(np.float32)
    y = np.array([1, 4], dtype=np.int32)
    e = EncSmall(ch=2, dim_z=8, n_classes=5)
    randomise(e)
    outs["enc_small_z"] = e(x128, y).array
    serializers.save_npz(f"{OUT}/enc_small.npz", e)
    x256 = rng.uniform(-1, 1, (2, 3, 256, 256)).astype(np.float32)
    e2 = Enc256(ch=1, dim_z=8, n_classes=0)
    randomise(e2)
    outs["enc_256_z"] = e2(x256).array
    serializers.save_npz(f"{OUT}/enc_256.npz", e2)
    outs["x128"], outs["x256"], outs["y"] = x128, x256, y
    # auxiliary networks + their generator half (plain CBN with class ids)
    g = ResNetAuxABGenerator(
        ch=2, dim_z=8, n_classes=5, dim_a=12, dim_b=10, dim_zeta=40, learned_lr=True
    )
    randomise(g)
    z = rng.standard_normal((2, 8)).astype(np.float32)
    zeta = g.forward_A(z)
    outs["aux_z"], outs["aux_zeta"] = z, zeta.array
    outs["aux_zprime"] = g.prelu(g.lB2(F.relu(g.lB1(zeta))), g.preluW()).array
    outs["aux_image_noab"] = g.forward(z=z, y=y, noAB=True).array
    serializers.save_npz(f"{OUT}/auxab.npz", g)
    # sCBN generator with one class map per CBN layer and feature blending
    s = SCBNGen(ch=2, dim_z=8, n_classes=5)
    randomise(s)
    sizes = [4, 8, 8, 16, 16, 32, 32, 64, 64, 128]
    weights = []
    for sz in sizes:
        w = rng.random((2, sz, sz, 5)).astype(np.float32) ** 4
        weights.append(w / w.sum(-1, keepdims=True))
    outs["scbn_z"] = z
    outs["scbn_image"] = s.spatial_interpolation(z=z, weights=weights).array
    for i, w in enumerate(weights):
        outs[f"scbn_w{i}"] = w
    z1 = rng.standard_normal((2, 8)).astype(np.float32)
    blends = []
    for k, sz in enumerate([4, 8, 16, 32, 64, 128]):
        m = rng.random((2, sz, sz)).astype(np.float32)
        bl = np.zeros((2, sz, sz, 3), dtype=np.float32)
        if k == 0:
            bl[..., 0], bl[..., 1] = 1 - m, m
        else:
            bl[..., 2], bl[..., 1] = 1 - m, m
        blends.append(bl)
        outs[f"blend_m{k}"] = m
    outs["blend_z1"] = z1
    outs["blend_image"] = s.spatial_interpolation(weights=weights, zs=[z, z1], blends=blends).array
    serializers.save_npz(f"{OUT}/scbn.npz", s)
    # discriminator
    d = SNResNetProjectionDiscriminator(ch=2, n_classes=5)
    randomise(d)
    # SNLinear / SNEmbedID write their u back on every call, test mode too: save first
    serializers.save_npz(f"{OUT}/dis.npz", d)
    outs["dis_logits"] = d(x128, y).array
    outs["dis_features"] = d.feature_vector(x128).array
with chainer.using_config("train", False), chainer.no_backprop_mode():
    # the 256 px layouts: resnet_256_scbn (blocks 2-7, b8/l8) and snresnet_256 (c1 at the
    # output width), a class map per layer
    s256 = SCBNGen256(ch=1, dim_z=8, n_classes=5)
    randomise(s256)
    weights = []
    for size in [4, 8, 8, 16, 16, 32, 32, 64, 64, 128, 128, 256]:
        w = rng.random((1, size, size, 5)).astype(np.float32) ** 4
        weights.append(w / w.sum(-1, keepdims=True))
        outs[f"g256_w{len(weights) - 1}"] = weights[-1]
    outs["g256_z"] = z[:1]
    outs["g256_image"] = s256.spatial_interpolation(z=z[:1], weights=weights).array
    serializers.save_npz(f"{OUT}/scbn256.npz", s256)
    d256 = Dis256(ch=1, n_classes=5)
    randomise(d256)
    serializers.save_npz(f"{OUT}/dis256.npz", d256)
    outs["d256_logits"] = d256(x256, y).array
    outs["d256_features"] = d256.feature_vector(x256).array
np.savez(f"{OUT}/outputs.npz", **outs)
print({k: v.shape for k, v in outs.items() if "w" not in k[:6]})
