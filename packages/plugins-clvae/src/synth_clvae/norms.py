"""Conditioning blocks: SPADE (Park et al. 2019) and CLVAE's class-wise semantics embedding.

Both read the label map by *gathering* (:class:`synth.nn.layers.LabelConv2d`): the first MLP conv
of SPADE sees a one-hot map and CSE's sees a class-painted map, so a k×k convolution is an
``embedding_bag(sum)`` over (tap, class) indices — exact, and about K× cheaper than the dense
convolution. Normalisation statistics are computed in fp32, also under autocast.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import Field
from torch import Tensor, nn

import synth
from synth.nn import kernels, ops
from synth.nn.layers import LabelConv2d
from synth.nn.norms import batch_normalize, instance_normalize, modulate

__all__ = ["CSE", "SPADE"]


#: Above this share of pixels near a class boundary the dense γ/β convs are used instead: at
#: 256², ngf 64 on 2 CPU threads the gathered patches did not pay at ~45% (bench/clvae.py's
#: piecewise variants); large ADE20K-like regions leave a few percent.
PIECEWISE_MAX_BOUNDARY = 0.3


def _layout(x: Tensor) -> torch.memory_format:
    """``x``'s memory format: channels-last when its strides are, else contiguous."""
    nhwc = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if nhwc and not x.is_contiguous() else torch.contiguous_format


def boundary_mask(labels: Tensor, reach: int) -> Tensor:
    """``BoolTensor[B, H, W]``: pixels with another class, or the image border, within
    ``reach`` pixels (a ``(2·reach + 1)²`` window) of ``labels: LongTensor[B, H, W]``."""
    lab = labels[:, None].float()  # exact for ids < 2**24
    window = 2 * reach + 1
    hi = F.max_pool2d(F.pad(lab, (reach,) * 4, value=-1.0), window, stride=1)
    lo = -F.max_pool2d(F.pad(-lab, (reach,) * 4, value=1.0), window, stride=1)
    return (hi != lo)[:, 0]


def piecewise_gamma_beta(
    labels: Tensor,
    actv: Tensor,
    shared: LabelConv2d,
    gamma: nn.Conv2d,
    beta: nn.Conv2d,
    class_vectors: Tensor | None = None,
    near: Tensor | None = None,
) -> tuple[Tensor, Tensor] | None:
    """SPADE's ``(γ, β) = (conv_γ(actv), conv_β(actv))`` exploiting that the label map is
    piecewise constant: exact, with the dense convs only at pixels near a class boundary.

    ``actv = ReLU(conv_s(M))`` reads the (one-hot or class-painted) map ``M`` in a k×k window,
    and γ/β read ``actv`` in a k×k window, so where the ``(2k-1)²`` window of labels around a
    pixel is one class ``c`` (and inside the image: the zero padding is "no class") ``actv`` is
    the constant ``a_c = ReLU(b_s + Σ_taps W_s[:, c])`` (painted map: ``W_s·v_{b,c}`` summed
    over taps) and ``γ = b_γ + (Σ_taps W_γ) a_c``: one table row per (sample, class). The
    other pixels get the k×k patches of ``actv`` gathered and one matmul with the taps of
    ``cat(W_γ, W_β)``. The results are equal to the dense convs up to float summation order.

    Args:
        labels: ``LongTensor[B, H, W]`` at the features' size.
        actv: ``[B, hidden, H, W]``, ``ReLU(shared(labels, class_vectors))``.
        shared, gamma, beta: SPADE's ``mlp_shared[0]``, ``mlp_gamma``, ``mlp_beta``
            (same odd kernel size k, padding k // 2).
        class_vectors: ``[B, K, D]`` for a class-painted map (CSE), else None (one-hot).
        near: ``boundary_mask(labels, 2 · (k // 2))`` when the caller keeps it (the blocks of
            one resolution share it through the Context), else computed here.
    Returns:
        ``(γ, β)``, each ``[B, C, H, W]`` (channels-last strides), or None when more than
        :data:`PIECEWISE_MAX_BOUNDARY` of the pixels are near a boundary (the dense convs are
        then cheaper) or the layers do not fit the assumptions.
    """
    k = gamma.kernel_size[0]
    r = k // 2
    if (
        beta.kernel_size != gamma.kernel_size
        or shared.kernel_size != gamma.kernel_size
        or gamma.padding != (r, r)
        or beta.padding != (r, r)
        or shared.padding != (r, r)
        or shared.padding_mode != "zeros"
    ):
        return None
    b, h, w = labels.shape
    if near is None:  # the label window of a γ pixel: (2k - 1)² = (2·reach + 1)², reach 2r
        near = boundary_mask(labels, 2 * r)
    where = near.flatten().nonzero().squeeze(1)
    if where.numel() > PIECEWISE_MAX_BOUNDARY * near.numel():
        return None
    c = gamma.out_channels
    w_gb = torch.cat([gamma.weight, beta.weight])  # [2C, hidden, k, k]
    b_gb = torch.cat([gamma.bias, beta.bias])
    # interior: per-(sample, class) constants
    ws = shared.weight[:, : shared.weight.shape[1] - shared.extra_channels]
    ws_sum = ws.sum((2, 3))  # [hidden, K or D]
    bs = shared.bias if shared.bias is not None else ws_sum.new_zeros(ws_sum.shape[0])
    if class_vectors is None:
        a = F.relu(ws_sum.t() + bs)[None]  # [1, K, hidden]
    else:
        a = F.relu(class_vectors.to(ws_sum.dtype) @ ws_sum.t() + bs)  # [B, K, hidden]
    table = a @ w_gb.sum((2, 3)).t() + b_gb  # [1 or B, K, 2C]
    num = table.shape[1]
    rows = labels + (torch.arange(b, device=labels.device) * num).view(b, 1, 1)
    if table.shape[0] == 1:
        rows = labels
    out = table.reshape(-1, 2 * c)[rows.flatten()]  # [B·H·W, 2C]
    if where.numel():
        # near boundaries: k×k patches of actv (zero-padded, NHWC rows) @ the conv taps
        hp, wp = h + 2 * r, w + 2 * r
        padded = F.pad(rearrange(actv, "b c h w -> b h w c"), (0, 0, r, r, r, r))
        flat = padded.reshape(b * hp * wp, -1)
        bi, rem = where // (h * w), where % (h * w)
        yi, xi = rem // w, rem % w
        base = bi * hp * wp + yi * wp + xi  # top-left tap of each window in the padded map
        dy, dx = torch.meshgrid(
            torch.arange(k, device=labels.device), torch.arange(k, device=labels.device),
            indexing="ij",
        )  # fmt: skip
        taps = (dy * wp + dx).flatten()  # [k²], (i j) order
        patches = flat[base[:, None] + taps[None, :]]  # [N, k², hidden]
        w_mat = rearrange(w_gb, "o c i j -> (i j c) o")
        vals = torch.addmm(b_gb, patches.reshape(where.numel(), -1), w_mat)  # [N, 2C]
        out = out.index_copy(0, where, vals)
    out = rearrange(out, "(b h w) o -> b o h w", b=b, h=h, w=w)
    return out[:, :c], out[:, c:]


def _modulate_copies(normalized: Tensor, gamma: Tensor, beta: Tensor, *, inplace: bool) -> Tensor:
    """:func:`synth.nn.modulate` of ``normalized [B·r, C, H, W]`` by ``γ, β [B, C, H, W]``
    shared by each group of ``r`` rows in a row (r = 1: plain)."""
    copies = normalized.shape[0] // gamma.shape[0]
    if copies == 1:
        return modulate(normalized, gamma, beta, inplace=inplace)
    grouped = rearrange(normalized, "(b r) c h w -> b r c h w", r=copies)
    out = modulate(grouped, gamma[:, None], beta[:, None], inplace=inplace)
    return rearrange(out, "b r c h w -> (b r) c h w")


class SPADE(synth.ConditioningBlock):
    """Spatially-adaptive denormalisation (Park et al. 2019, "Semantic Image Synthesis with
    Spatially-Adaptive Normalization", eq. 1).

    ``x: [B, C, H, W] -> [B, C, H, W]``::

        x̂ = param_free_norm(x)                      # instance or batch norm, fp32 statistics
        h = ReLU(conv_k(M))                          # M: one-hot label map resized (nearest)
        γ, β = conv_k(h), conv_k(h)                  #    to (H, W); conv by gathering
        out = x̂ · (1 + γ) + β

    With ``use_instances`` (SPADE's Cityscapes models, official ``no_instance=False``) ``M`` is
    ``cat(one_hot(label), edges)``: the instance boundary map (:func:`synth.nn.ops.instance_edges`
    of ``Condition.instance_map``, computed at full size, then resized nearest — the official
    order) is one more input channel of the shared conv, whose weight keeps the dense shape
    ``[hidden, K + 1, k, k]``; the one-hot part is gathered, the edge channel is a dense conv
    (the ``extra`` channel of :class:`synth.nn.layers.LabelConv2d`). Requires ``instance_map``
    then.

    ``hidden`` is the width of the shared MLP (128 in SPADE). State-dict keys follow the
    official layout: ``param_free_norm.*`` (batch norm running statistics), ``mlp_shared.0.*``,
    ``mlp_gamma.*``, ``mlp_beta.*``.
    """

    class Config(synth.PartConfig):
        channels: int = Field(ge=1, description="C (runtime argument, set by the host)")
        num_classes: int = Field(ge=1, description="K (runtime argument, set by the host)")
        hidden: int = Field(128, ge=1, description="width of the shared MLP conv")
        kernel_size: int = Field(3, ge=1, description="odd kernel size of the MLP convs")
        param_free_norm: Literal["batch", "instance"] = Field(
            "batch", description="SPADE's default is (sync) batch norm; 'instance' for GauGAN-IN"
        )
        eps: float = Field(1e-5, gt=0)
        momentum: float = Field(0.1, ge=0, le=1)
        use_instances: bool = Field(
            False, description="add the instance-edge channel (requires instance_map)"
        )

    requires: ClassVar[frozenset[str]] = frozenset({"label_map"})
    config: Config

    @classmethod
    def requirements(cls, config: synth.PartConfig | None = None) -> frozenset[str]:
        """``requires``, plus ``instance_map`` with ``use_instances``."""
        if config is not None and getattr(config, "use_instances", False):
            return cls.requires | {"instance_map"}
        return cls.requires

    def __init__(self, config: Config | dict | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        c = self.config
        if c.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (same padding), got {c.kernel_size}")
        pw = c.kernel_size // 2
        if c.param_free_norm == "batch":
            self.param_free_norm: nn.Module | None = nn.BatchNorm2d(
                c.channels, eps=c.eps, momentum=c.momentum, affine=False
            )
        else:
            self.param_free_norm = None
        self.mlp_shared = nn.Sequential(
            LabelConv2d(
                c.num_classes,
                c.hidden,
                c.kernel_size,
                padding=pw,
                in_channels=self._label_channels(),
                extra_channels=int(c.use_instances),
            ),
            nn.ReLU(),
        )
        self.mlp_gamma = nn.Conv2d(c.hidden, c.channels, c.kernel_size, padding=pw)
        self.mlp_beta = nn.Conv2d(c.hidden, c.channels, c.kernel_size, padding=pw)
        # the Context key of boundary_mask for this block's label map (CSE: its label_scale)
        reach = 2 * pw
        self._boundary_key = (("clvae.boundary", getattr(c, "label_scale", None), reach), reach)

    def _label_channels(self) -> int:
        """Channels of the map the shared conv gathers: K for a one-hot map."""
        return self.config.num_classes

    # ------------------------------------------------------------------ pieces
    def normalize(self, x: Tensor) -> Tensor:
        """Parameter-free normalisation of ``x: [B, C, H, W]``, returned in **fp32**."""
        if self.param_free_norm is None:
            return instance_normalize(x, self.config.eps)
        return batch_normalize(x, self.param_free_norm)

    def modulation(
        self,
        labels: Tensor,
        class_vectors: Tensor | None = None,
        edges: Tensor | None = None,
        near: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``(γ, β)``, each ``[B, C, H, W]``, from ``labels: LongTensor[B, H, W]``.

        With ``class_vectors: [B, K, D]`` the shared conv reads the class-painted map
        (``painted[b, :, y, x] = class_vectors[b, labels[b, y, x]]``) instead of the one-hot;
        with ``edges: [B, 1, H, W]`` (``use_instances``) it reads ``cat(one_hot, edges)``.
        ``near``: the labels' :func:`boundary_mask` for the piecewise path, when kept.
        """
        shared = self.mlp_shared[0](labels, edges, class_vectors)
        # in place when nothing needs a graph (sampling): the gathered map has no other reader;
        # in training, in place on that (permuted) view would cost a CopySlices in backward
        actv = F.relu(shared, inplace=not (torch.is_grad_enabled() and shared.requires_grad))
        dtype = self.mlp_gamma.weight.dtype
        if not torch.is_autocast_enabled(actv.device.type):
            actv = actv.to(dtype)
        if edges is None and self._piecewise_ok(actv):
            out = piecewise_gamma_beta(
                labels, actv, self.mlp_shared[0], self.mlp_gamma, self.mlp_beta, class_vectors, near
            )
            if out is not None:
                return out
        return self.mlp_gamma(actv), self.mlp_beta(actv)

    def _piecewise_ok(self, actv: Tensor) -> bool:
        """Whether :func:`piecewise_gamma_beta` applies: CPU fp32 eager, plain γ/β convs."""
        convs = (self.mlp_gamma, self.mlp_beta)
        return (
            actv.device.type == "cpu"
            and actv.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu")
            and not torch.compiler.is_compiling()
            and all(
                type(m) is nn.Conv2d
                and m.padding_mode == "zeros"
                and m.stride == (1, 1)
                and m.dilation == (1, 1)
                and m.groups == 1
                and m.bias is not None
                for m in convs
            )
        )

    def labels_for(self, x: Tensor, ctx: synth.Context) -> Tensor:
        """The label map at ``x``'s size, ``LongTensor[B, H, W]``."""
        return ctx.labels(tuple(x.shape[-2:]))

    def class_vectors(self, ctx: synth.Context) -> Tensor | None:
        """Per-sample class vectors ``[B, K, D]`` painted into the map (None: one-hot)."""
        return None

    #: γ, β depend on the condition alone (not on latents): computed once per group of
    #: copies of an input (``Condition.repeats``: N samples per input) and broadcast.
    modulation_per_input: ClassVar[bool] = True

    def forward(self, x: Tensor, ctx: synth.Context) -> Tensor:
        """``x: [B, C, H, W] -> [B, C, H, W]`` (same dtype), modulated by the label map."""
        source = ctx.distinct() if self.modulation_per_input else ctx
        if kernels.use_triton(x):  # CUDA: normalise and modulate in one Triton kernel
            gamma, beta = self._gamma_beta(x, source)
            copies = x.shape[0] // gamma.shape[0]
            gamma, beta = (t.repeat_interleave(copies, dim=0) for t in (gamma, beta))
            return kernels.norm_modulate(
                x, gamma, beta, eps=self.config.eps, bn=self.param_free_norm
            )
        normalized = self.normalize(x)
        gamma, beta = self._gamma_beta(x, source)
        out = _modulate_copies(normalized, gamma, beta, inplace=not torch.is_grad_enabled())
        # γ/β come channels-last from the gathered conv; give the next conv x's own layout
        # (a small NCHW map with NHWC input would make oneDNN reorder that conv's weights)
        return out.to(x.dtype).contiguous(memory_format=_layout(x))

    def _gamma_beta(self, x: Tensor, ctx: synth.Context) -> tuple[Tensor, Tensor]:
        """``(γ, β)`` for ``x`` from the context's label map (and edges, class vectors)."""
        labels = self.labels_for(x, ctx)
        edges = ctx.instance_edges(tuple(labels.shape[-2:])) if self.config.use_instances else None
        near = None
        if edges is None and labels.device.type == "cpu" and not torch.compiler.is_compiling():
            # the piecewise path's mask, kept per forward for every block at this size
            key, reach = self._boundary_key
            near = ctx.cached(
                (*key, tuple(labels.shape[-2:])), lambda: boundary_mask(labels, reach)
            )
        return self.modulation(labels, self.class_vectors(ctx), edges, near)


class CSE(SPADE):
    """Class-wise semantics embedding (Endo & Kanamori 2021, §3.2.1, eq. 12) followed by SPADE.

    The map fed to SPADE's shared conv is ``s(M_l, z_l) = T⁻¹(z_l·T(M_l) + W·T(M_l))``: every
    pixel of class c carries ``W[:, c] + z_l[b, c]`` (a learned class embedding plus the
    sample's latent code of class c at this stage). It is never materialised: the shared conv
    gathers ``conv_taps · (W + z_l)[b, label]`` by label index
    (:func:`synth.nn.layers.label_conv2d` with ``class_vectors``), no one-hot matmul and no loop
    over classes.

    Reads ``ctx.latents.class_codes[ctx.stage]: [B, K, D]`` (``D = code_dim``) and the label
    map. The label map is taken at ``cond.size // label_scale`` and then resized (nearest) to
    ``x``'s size, as the official CLVAE generator does when a stage's features and its code map
    differ in resolution (``label_scale=None``: ``x``'s own size). With ``embedding=False``
    the block has no ``W`` of its own: its host adds a shared embedding to the codes (the
    official generator shares one ``nn.Embedding`` across stages).
    ``x: [B, C, H, W] -> [B, C, H, W]``.
    """

    class Config(SPADE.Config):
        code_dim: int = Field(ge=1, description="D (runtime argument, set by the host)")
        stage: int = Field(0, ge=0, description="stage index (runtime argument)")
        embedding: bool = Field(True, description="own the class embedding W (eq. 12)")
        label_scale: int | None = Field(
            None, ge=1, description="read the label map at cond.size // label_scale"
        )

    requires: ClassVar[frozenset[str]] = frozenset({"label_map", "class_codes"})
    config: Config

    def __init__(self, config: Config | dict | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        c = self.config
        if c.use_instances:
            raise ValueError(
                "clvae.cse does not take instance edges (use_instances): the CSE map is "
                "class-painted; use clvae.spade for the stages that read instance edges"
            )
        self.embedding = nn.Embedding(c.num_classes, c.code_dim) if c.embedding else None

    #: the painted class vectors carry each sample's codes: γ, β differ between copies
    modulation_per_input: ClassVar[bool] = False

    def _label_channels(self) -> int:
        return self.config.code_dim

    def labels_for(self, x: Tensor, ctx: synth.Context) -> Tensor:
        scale = self.config.label_scale
        size = tuple(x.shape[-2:])
        if scale is None or ctx.cond.size is None:
            return ctx.labels(size)
        h, w = ctx.cond.size
        coarse = ctx.labels((h // scale, w // scale))
        return coarse if tuple(coarse.shape[-2:]) == size else ops.resize_labels(coarse, size)

    def class_vectors(self, ctx: synth.Context) -> Tensor:
        """``[B, K, D]``: ``W[:, c] + z_l[b, c]`` (eq. 12's two terms, summed per class)."""
        codes = ctx.latents.class_codes
        if codes is None:
            raise ValueError(
                "clvae.cse reads latents.class_codes, which are missing: compose the model with "
                "an injector that provides 'class_codes' (clvae.class_layer_encoder), or pass "
                "latents=synth.Latents(class_codes=[...]) with one [B, K, D] tensor per stage"
            )
        if ctx.stage >= len(codes):
            raise ValueError(
                f"clvae.cse at stage {ctx.stage} needs latents.class_codes[{ctx.stage}], but "
                f"only {len(codes)} were given: give one [B, K, D] tensor per CSE stage"
            )
        z = codes[ctx.stage]
        k, d = self.config.num_classes, self.config.code_dim
        if z.dim() != 3 or z.shape[1] != k or z.shape[2] != d:
            raise ValueError(
                f"clvae.cse: latents.class_codes[{ctx.stage}] has shape {tuple(z.shape)}, "
                f"expected [B, {k}, {d}] (num_classes, code_dim)"
            )
        if self.embedding is not None:
            z = z + rearrange(self.embedding.weight, "k d -> 1 k d")
        return z
