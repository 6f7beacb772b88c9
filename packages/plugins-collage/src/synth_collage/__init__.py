"""synth plugin: Spatially Controllable Image Synthesis with Internal Representation Collaging
(Suzuki et al.): label collaging (sCBN), feature collaging on any generator, the paper's GAN,
official Chainer weights and recipes."""

from .convert import CONVERTERS, ConversionReport, from_official
from .discriminators import ProjectionDiscriminator
from .generators import ResNetGenerator
from .norms import (
    SpatialAdaIN,
    SpatialCBN,
    class_map,
    collage_map,
    layer_class_maps,
    mix_classes,
    spatial_norms,
)
from .recipes import RECIPES, tiny_collage_model
from .samplers import FeatureBlend, LabelCollage, blend_features, shift_map

__all__ = [
    "CONVERTERS",
    "RECIPES",
    "ConversionReport",
    "FeatureBlend",
    "LabelCollage",
    "ProjectionDiscriminator",
    "ResNetGenerator",
    "SpatialAdaIN",
    "SpatialCBN",
    "blend_features",
    "class_map",
    "collage_map",
    "from_official",
    "layer_class_maps",
    "mix_classes",
    "shift_map",
    "spatial_norms",
    "tiny_collage_model",
]
