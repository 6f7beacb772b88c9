"""synth plugin: Nested Scale-Editing for Conditional Image Synthesis (Zhang, Wang et al.)."""

from .discriminators import PyramidDiscriminator
from .losses import Disentangle, NDiv, ndiv, pairwise_distances
from .samplers import ScaleEdit, ScaleInterpolate

__all__ = [
    "Disentangle",
    "NDiv",
    "PyramidDiscriminator",
    "ScaleEdit",
    "ScaleInterpolate",
    "ndiv",
    "pairwise_distances",
]
