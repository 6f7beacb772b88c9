"""Weight initialisation schemes of the GAN papers' released code, on ``torch.nn.init``.

A part offers them through a Config field (``init: InitScheme``) and calls
:func:`init_weights` at the end of its constructor; the recipes pick their paper's scheme.

- ``"default"``: PyTorch's own initialisation of each layer (nothing is changed).
- ``"normal"``: the DCGAN / pix2pix / pix2pixHD ``weights_init`` (official
  ``models/networks.py``): every convolution's (and transposed convolution's) weight
  ``~ N(0, gain)``, every batch norm's weight ``~ N(1, gain)`` and bias ``0``. Convolution
  biases and linear layers keep PyTorch's initialisation, as there.
- ``"xavier"``: SPADE's ``BaseNetwork.init_weights("xavier", gain)`` (also CLVAE's, a SPADE
  fork; official ``init_type="xavier"``, ``init_variance=0.02``): every convolution's and
  linear layer's weight xavier-normal, ``~ N(0, gain²·2 / (fan_in + fan_out))``, their biases
  ``0``; batch norm weight ``~ N(1, gain)``, bias ``0``.

Layers are found by type (``nn.modules.conv._ConvNd``, ``nn.Linear``, ``nn.modules.batchnorm.
_BatchNorm``), in the order ``module.apply`` visits them, as the official code does by class
name; embeddings and parameter-free norms are left alone there and here. A weight under a
parametrization (torch's spectral norm) is initialised through its ``original``, which is what
the official code reaches through the shared storage of the old hook's ``weight``; the spectral
norm's power-iteration vectors are then re-estimated for the new weight.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

__all__ = ["INIT_SCHEMES", "InitScheme", "init_weights"]

#: The schemes :func:`init_weights` knows (a part's ``init`` Config field takes one).
InitScheme = Literal["default", "normal", "xavier"]
INIT_SCHEMES: tuple[str, ...] = ("default", "normal", "xavier")

_CONV = nn.modules.conv._ConvNd
_BATCH_NORM = nn.modules.batchnorm._BatchNorm


# --------------------------------------------------------------------------- public


def init_weights(module: nn.Module, scheme: InitScheme, gain: float = 0.02) -> nn.Module:
    """Initialise ``module``'s layers in place by ``scheme`` (see the module doc); returns it.

    ``gain`` is the official ``init_variance`` (0.02 in pix2pixHD and SPADE): the standard
    deviation of ``"normal"`` and the xavier gain of ``"xavier"``.
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"init scheme {scheme!r} is not one of {INIT_SCHEMES}")
    if scheme == "default":
        return module

    def visit(m: nn.Module) -> None:
        if isinstance(m, _BATCH_NORM):
            if m.weight is not None:
                nn.init.normal_(m.weight, 1.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, _CONV) or (scheme == "xavier" and isinstance(m, nn.Linear)):
            weight = _raw_weight(m)
            if scheme == "normal":
                nn.init.normal_(weight, 0.0, gain)
            else:
                nn.init.xavier_normal_(weight, gain=gain)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            _refresh_spectral_norm(m)

    with torch.no_grad():
        module.apply(visit)
    return module


# --------------------------------------------------------------------------- helpers


def _raw_weight(m: nn.Module) -> Tensor:
    """The stored weight: the parametrization's ``original`` when ``weight`` is computed."""
    if parametrize.is_parametrized(m, "weight"):
        return m.parametrizations.weight.original  # type: ignore[union-attr,return-value]
    return m.weight  # type: ignore[return-value]


def _refresh_spectral_norm(m: nn.Module) -> None:
    """Re-run the spectral norm's initial power iterations (torch runs 15 when it is applied)
    so that ``σ`` is estimated for the new weight, not the replaced one."""
    if not parametrize.is_parametrized(m, "weight"):
        return
    for p in m.parametrizations.weight:  # type: ignore[union-attr]
        power = getattr(p, "_power_method", None)
        reshape = getattr(p, "_reshape_weight_to_matrix", None)
        if power is not None and reshape is not None and hasattr(p, "_u"):  # matrices only
            power(reshape(_raw_weight(m)), 15)
