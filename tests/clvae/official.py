"""A minimal, independent re-implementation of the official SPADE / CLVAE module layouts.

Written from the published architecture and state-dict facts (PAPERS.md), *not* from synth's
code: dense convolutions of one-hot / class-painted maps, Python loops over classes and samples
(as the official code does), old-style spectral norm (``weight_orig``/``weight_u``/``weight_v``).
Tests compare synth's parts against these; ``bench/clvae.py`` times them as the baseline.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import spectral_norm

BLOCKS = ["head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3", "up_4"]


def one_hot(labels: Tensor, k: int) -> Tensor:
    return F.one_hot(labels, k).permute(0, 3, 1, 2).float()


def get_edges(t: Tensor) -> Tensor:
    """Official ``get_edges``: ``[B, 1, H, W]`` instance ids -> 1 where a 4-neighbour differs."""
    edge = torch.zeros(t.shape, dtype=torch.bool)
    edge[:, :, :, 1:] = edge[:, :, :, 1:] | (t[:, :, :, 1:] != t[:, :, :, :-1])
    edge[:, :, :, :-1] = edge[:, :, :, :-1] | (t[:, :, :, 1:] != t[:, :, :, :-1])
    edge[:, :, 1:, :] = edge[:, :, 1:, :] | (t[:, :, 1:, :] != t[:, :, :-1, :])
    edge[:, :, :-1, :] = edge[:, :, :-1, :] | (t[:, :, 1:, :] != t[:, :, :-1, :])
    return edge.float()


def semantics(labels: Tensor, k: int, instances: Tensor | None = None) -> Tensor:
    """Official ``input_semantics``: one-hot ``[B, K, H, W]``, then (``no_instance=False``) the
    edge map of ``instances [B, H, W]`` concatenated after it: ``[B, K + 1, H, W]``."""
    seg = one_hot(labels, k)
    if instances is None:
        return seg
    return torch.cat([seg, get_edges(instances[:, None])], dim=1)


def paint_loop(labels: Tensor, vectors: Tensor) -> Tensor:
    """``[B, D, H, W]``: each pixel gets ``vectors[b, label]`` — loops over samples and classes."""
    b, h, w = labels.shape
    out = torch.zeros(b, vectors.shape[-1], h, w, dtype=vectors.dtype)
    for i in range(b):
        for c in labels[i].unique().tolist():
            out[i][:, labels[i] == c] = vectors[i, c].unsqueeze(-1)
    return out


def nearest(labels: Tensor, size: tuple[int, int]) -> Tensor:
    return F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0].long()


class OfficialSPADE(nn.Module):
    def __init__(self, norm_nc: int, label_nc: int, hidden: int = 128, norm: str = "batch"):
        super().__init__()
        self.param_free_norm = (
            nn.BatchNorm2d(norm_nc, affine=False)
            if norm == "batch"
            else nn.InstanceNorm2d(norm_nc, affine=False)
        )
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, 3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, 3, padding=1)

    def forward(self, x: Tensor, segmap: Tensor) -> Tensor:
        normalized = self.param_free_norm(x)
        segmap = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        actv = self.mlp_shared(segmap)
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class OfficialResBlock(nn.Module):
    def __init__(self, fin: int, fout: int, label_nc: int, hidden: int, norm: str):
        super().__init__()
        self.learned_shortcut = fin != fout
        fmid = min(fin, fout)
        self.conv_0 = spectral_norm(nn.Conv2d(fin, fmid, 3, padding=1))
        self.conv_1 = spectral_norm(nn.Conv2d(fmid, fout, 3, padding=1))
        if self.learned_shortcut:
            self.conv_s = spectral_norm(nn.Conv2d(fin, fout, 1, bias=False))
        self.norm_0 = OfficialSPADE(fin, label_nc, hidden, norm)
        self.norm_1 = OfficialSPADE(fmid, label_nc, hidden, norm)
        if self.learned_shortcut:
            self.norm_s = OfficialSPADE(fin, label_nc, hidden, norm)

    def forward(self, x: Tensor, seg: Tensor) -> Tensor:
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return x_s + dx


class OfficialGenerator(nn.Module):
    """SPADEGenerator (label fc or VAE fc) and, with ``code_dim``, the CLVAE generator."""

    def __init__(
        self,
        num_classes: int,
        ngf: int,
        mode: str = "normal",
        z_dim: int = 0,
        crop: int = 64,
        hidden: int = 128,
        norm: str = "batch",
        code_dim: int | None = None,
        instance: bool = False,
    ):
        """``instance``: the label input is ``semantics(labels, K, instances)`` (K + 1
        channels: one-hot, then the edge map), as with the official ``no_instance=False``."""
        super().__init__()
        self.mode, self.ngf, self.k, self.code_dim = mode, ngf, num_classes, code_dim
        label_nc = num_classes + int(instance)  # input channels of fc and the SPADE blocks
        n = {"normal": 5, "more": 6, "most": 7}[mode]
        self.sw = self.sh = crop // 2**n
        nf = ngf
        if z_dim:
            self.fc = nn.Linear(z_dim, 16 * nf * self.sw * self.sh)
        else:
            self.fc = nn.Conv2d(label_nc, 16 * nf, 3, padding=1)
        if code_dim:
            self.embedding = nn.Embedding(num_classes, code_dim)
        cse_nc = code_dim or label_nc
        chans = [(16, 16), (16, 16), (16, 16), (16, 8), (8, 4), (4, 2), (2, 1)]
        for i, (a, b) in enumerate(chans):
            nc = label_nc if i == 6 else cse_nc
            setattr(self, BLOCKS[i], OfficialResBlock(a * nf, b * nf, nc, hidden, norm))
        final = nf
        if mode == "most":
            self.up_4 = OfficialResBlock(nf, nf // 2, label_nc, hidden, norm)
            final = nf // 2
        self.conv_img = nn.Conv2d(final, 3, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)

    def forward(self, seg: Tensor, z: Tensor | None = None, codes: Tensor | None = None) -> Tensor:
        """``seg`` one-hot ``[B, K, H, W]`` (with ``instance``: ``semantics(...)``, K + 1
        channels); ``codes [B, 5, K, D]`` per encoder layer (CLVAE)."""
        segs = [seg] * 6
        if self.code_dim:
            label = seg.argmax(1)
            maps = [
                nearest(label, (label.shape[1] // 2**i, label.shape[2] // 2**i))
                for i in range(1, 6)
            ]
            segs = []
            for layer in reversed(range(5)):
                emb = self.embedding(maps[layer]).permute(0, 3, 1, 2)
                segs.append(emb + paint_loop(maps[layer], codes[:, layer]))
            segs = [segs[0], segs[1], segs[1], segs[2], segs[3], segs[4]]
        if z is not None:
            x = self.fc(z).view(-1, 16 * self.ngf, self.sh, self.sw)
        else:
            x = self.fc(F.interpolate(seg, size=(self.sh, self.sw)))
        x = self.head_0(x, segs[0])
        x = self.up(x)
        x = self.G_middle_0(x, segs[1])
        if self.mode in ("more", "most"):
            x = self.up(x)
        x = self.G_middle_1(x, segs[2])
        for i, name in enumerate(["up_0", "up_1", "up_2"]):
            x = getattr(self, name)(self.up(x), segs[3 + i])
        x = self.up_3(self.up(x), seg)
        if self.mode == "most":
            x = self.up_4(self.up(x), seg)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


class OfficialEncoder(nn.Module):
    """ConvEncoder (+ CLVAE's class heads, RoI max-pooling looped over classes and samples)."""

    def __init__(self, ndf: int, num_layers: int, s0: int, z_dim: int, code_dim: int | None):
        super().__init__()
        widths = [ndf, 2 * ndf, 4 * ndf, 8 * ndf, 8 * ndf, 8 * ndf][:num_layers]
        cin = 3
        for i, w in enumerate(widths):
            conv = spectral_norm(nn.Conv2d(cin, w, 3, stride=2, padding=1))
            del conv.bias  # the official norm layer removes the bias before a norm
            conv.register_parameter("bias", None)
            setattr(self, f"layer{i + 1}", nn.Sequential(conv, nn.InstanceNorm2d(w, affine=False)))
            cin = w
        self.n, self.size = num_layers, s0 * 2**num_layers
        self.fc_mu = nn.Linear(8 * ndf * s0 * s0, z_dim)
        self.fc_var = nn.Linear(8 * ndf * s0 * s0, z_dim)
        self.code_dim = code_dim
        if code_dim:
            for i, w in enumerate([ndf, 2 * ndf, 4 * ndf, 8 * ndf, 8 * ndf]):
                setattr(self, f"fc_mu{i + 1}", nn.Linear(w, code_dim))
                setattr(self, f"fc_var{i + 1}", nn.Linear(w, code_dim))

    def forward(self, x: Tensor, labels: Tensor | None = None, k: int = 0):
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear")
            if labels is not None:
                labels = nearest(labels, (self.size, self.size))
        feats = []
        for i in range(self.n):
            x = getattr(self, f"layer{i + 1}")(F.leaky_relu(x, 0.2) if i else x)
            feats.append(x)
        h = F.leaky_relu(x, 0.2).flatten(1)
        mu, logvar = self.fc_mu(h), self.fc_var(h)
        if not self.code_dim:
            return mu, logvar
        b = x.shape[0]
        cmu = torch.zeros(b, 5, k, self.code_dim)
        clv = torch.zeros(b, 5, k, self.code_dim)
        present = torch.zeros(b, 5, k, dtype=torch.bool)
        for j in range(5):
            f = feats[j]
            lab = nearest(labels, f.shape[-2:])
            for c in labels.unique().tolist():
                for i in range(b):
                    sel = f[i][:, lab[i] == c]
                    if sel.shape[1]:
                        m = F.leaky_relu(sel.max(dim=1)[0], 0.2)
                        cmu[i, j, c] = getattr(self, f"fc_mu{j + 1}")(m)
                        clv[i, j, c] = getattr(self, f"fc_var{j + 1}")(m)
                        present[i, j, c] = True
        return mu, logvar, cmu, clv, present


class OfficialNLayerD(nn.Module):
    def __init__(self, input_nc: int, ndf: int, n_layers: int):
        super().__init__()
        nf = ndf
        seq = [[nn.Conv2d(input_nc, nf, 4, stride=2, padding=2), nn.LeakyReLU(0.2)]]
        for n in range(1, n_layers):
            prev, nf = nf, min(nf * 2, 512)
            conv = spectral_norm(
                nn.Conv2d(prev, nf, 4, stride=1 if n == n_layers - 1 else 2, padding=2)
            )
            del conv.bias
            conv.register_parameter("bias", None)
            seq += [[nn.Sequential(conv, nn.InstanceNorm2d(nf, affine=False)), nn.LeakyReLU(0.2)]]
        seq += [[nn.Conv2d(nf, 1, 4, stride=1, padding=2)]]
        for n, s in enumerate(seq):
            self.add_module(f"model{n}", nn.Sequential(*s))
        self.count = len(seq)

    def forward(self, x: Tensor) -> list[Tensor]:
        res = [x]
        for n in range(self.count):
            res.append(getattr(self, f"model{n}")(res[-1]))
        return res[1:]


class OfficialMultiscaleD(nn.Module):
    def __init__(self, input_nc: int, ndf: int, n_layers: int, num_d: int):
        super().__init__()
        for i in range(num_d):
            self.add_module(f"discriminator_{i}", OfficialNLayerD(input_nc, ndf, n_layers))
        self.num_d = num_d

    def forward(self, x: Tensor) -> list[list[Tensor]]:
        out = []
        for i in range(self.num_d):
            out.append(getattr(self, f"discriminator_{i}")(x))
            x = F.avg_pool2d(x, 3, stride=2, padding=[1, 1], count_include_pad=False)
        return out


def randomize_buffers(module: nn.Module, seed: int = 0) -> None:
    """Random BN running statistics, so eval-mode comparisons exercise them."""
    g = torch.Generator().manual_seed(seed)
    for name, buf in module.named_buffers():
        if name.endswith("running_mean"):
            buf.copy_(torch.randn(buf.shape, generator=g) * 0.1)
        elif name.endswith("running_var"):
            buf.copy_(torch.rand(buf.shape, generator=g) + 0.5)
