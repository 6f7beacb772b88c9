"""synth plugin: Spatially Controllable Image Synthesis with Internal Representation Collaging
(Suzuki et al.): label collaging (sCBN), feature collaging on any generator, the paper's GAN,
official Chainer weights and recipes."""

from .auxiliary import AuxiliaryNetworks, auxiliary_loss, train_auxiliary
from .blending import poisson_blend
from .convert import CONVERTERS, ConversionReport, from_official
from .discriminators import ProjectionDiscriminator
from .encoder import ResNetEncoder
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
from .photo import PhotoEdit, blend_back, crop_region, edit_photo, render_edit
from .projection import Projection, project, projection_loss
from .recipes import RECIPES, tiny_collage_model
from .samplers import FeatureBlend, LabelCollage, blend_features, shift_map

__all__ = [
    "CONVERTERS",
    "RECIPES",
    "AuxiliaryNetworks",
    "ConversionReport",
    "FeatureBlend",
    "LabelCollage",
    "PhotoEdit",
    "Projection",
    "ProjectionDiscriminator",
    "ResNetEncoder",
    "ResNetGenerator",
    "SpatialAdaIN",
    "SpatialCBN",
    "auxiliary_loss",
    "blend_back",
    "blend_features",
    "class_map",
    "collage_map",
    "crop_region",
    "edit_photo",
    "from_official",
    "layer_class_maps",
    "mix_classes",
    "poisson_blend",
    "project",
    "projection_loss",
    "render_edit",
    "shift_map",
    "spatial_norms",
    "tiny_collage_model",
    "train_auxiliary",
]
