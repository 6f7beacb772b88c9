"""synth plugin: Nested Scale-Editing for Conditional Image Synthesis (Zhang, Wang et al.)."""

from .discriminators import PyramidDiscriminator
from .encoders import ConditionEncoder
from .generators import Pyramid, PyramidDecoder
from .losses import Disentangle, NDiv, ndiv, pairwise_distances
from .pictures import scale_edit_grid, scale_edits
from .recipes import RECIPES
from .samplers import ScaleEdit, ScaleInterpolate

__all__ = [
    "RECIPES",
    "ConditionEncoder",
    "Disentangle",
    "NDiv",
    "Pyramid",
    "PyramidDecoder",
    "PyramidDiscriminator",
    "ScaleEdit",
    "ScaleInterpolate",
    "ndiv",
    "pairwise_distances",
    "scale_edit_grid",
    "scale_edits",
]
