"""Files (layer 1): safe reading of weight files, the weights lookup policy, atomic writes, and
what converters of the papers' official checkpoints share. Knows no model.
"""

from .convert import (
    ConversionReport,
    describe_checkpoint,
    load_converted,
    read_checkpoint,
    require_keys,
    spectral_norm_key_to_official,
    spectral_norm_key_to_torch,
    strip_key_prefixes,
)
from .files import atomic_write, unshare_storage
from .weights import offline, read_state_dict, resolve_weights, synth_home, weights_dir

__all__ = [
    "ConversionReport",
    "atomic_write",
    "describe_checkpoint",
    "load_converted",
    "offline",
    "read_checkpoint",
    "read_state_dict",
    "require_keys",
    "resolve_weights",
    "spectral_norm_key_to_official",
    "spectral_norm_key_to_torch",
    "strip_key_prefixes",
    "synth_home",
    "unshare_storage",
    "weights_dir",
]
