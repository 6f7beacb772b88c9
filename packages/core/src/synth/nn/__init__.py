"""Building blocks (layer 2): pure PyTorch, knowing no synth data type.

``ops`` (label-map resizing, one-hot, instance edges, slerp), ``layers`` (the label-gather
convolution of DESIGN §7, with dense extra channels), ``norms`` (fp32-statistics instance and
batch normalisation, the AdaIN/SPADE modulation) and ``backbones`` (frozen timm feature
extractors with local weights).
"""

from . import ops
from .backbones import IMAGENET_MEAN, IMAGENET_STD, FeatureExtractor
from .layers import LabelConv2d, label_conv2d
from .norms import InstanceNorm2d, batch_normalize, instance_normalize, modulate

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "FeatureExtractor",
    "InstanceNorm2d",
    "LabelConv2d",
    "batch_normalize",
    "instance_normalize",
    "label_conv2d",
    "modulate",
    "ops",
]
