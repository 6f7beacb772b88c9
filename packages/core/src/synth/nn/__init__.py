"""Building blocks (layer 2): pure PyTorch, knowing no synth data type.

``ops`` (label-map resizing, one-hot, instance edges, slerp), ``layers`` (the label-gather
convolution of DESIGN §7), ``norms`` (fp32-statistics normalisation) and ``backbones`` (frozen
timm feature extractors with local weights).
"""

from . import ops
from .backbones import IMAGENET_MEAN, IMAGENET_STD, FeatureExtractor
from .layers import LabelConv2d, label_conv2d
from .norms import instance_normalize

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "FeatureExtractor",
    "LabelConv2d",
    "instance_normalize",
    "label_conv2d",
    "ops",
]
