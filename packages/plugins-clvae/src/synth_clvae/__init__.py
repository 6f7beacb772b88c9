"""synth plugin: SPADE/GauGAN and class- and layer-wise VAEs (Endo & Kanamori).

Parts are registered under ``clvae.*`` (see :mod:`synth_clvae.plugin`); importing this package
also gives the classes and the official-checkpoint converters.
"""

from .convert import (
    ConversionReport,
    from_official_clvae,
    from_official_spade,
    to_official_clvae,
    to_official_spade,
)
from .discriminators import MultiscaleDiscriminator
from .encoders import ClassLayerEncoder, ConvEncoder, class_layer_kl, roi_max_pool
from .generators import CLVAEGenerator, SPADEGenerator, SPADEResBlock
from .losses import KL
from .norms import CSE, SPADE
from .samplers import MaterialEdit, ObjectEdit, Prior, StyleGuided

__all__ = [
    "CSE",
    "KL",
    "SPADE",
    "CLVAEGenerator",
    "ClassLayerEncoder",
    "ConvEncoder",
    "ConversionReport",
    "MaterialEdit",
    "MultiscaleDiscriminator",
    "ObjectEdit",
    "Prior",
    "SPADEGenerator",
    "SPADEResBlock",
    "StyleGuided",
    "class_layer_kl",
    "from_official_clvae",
    "from_official_spade",
    "roi_max_pool",
    "to_official_clvae",
    "to_official_spade",
]
