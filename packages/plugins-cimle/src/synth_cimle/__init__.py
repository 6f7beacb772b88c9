"""synth plugin: Conditional IMLE (Li, Peng, Zhang & Malik, CVPR 2020 / IJCV)."""

from .convert import from_official_srim, infer_srim_config, read_srim_options
from .data import DemoSuperResolution, bicubic_upsample, psnr
from .generators import CRNGenerator, LayerNorm2d, RRDBGenerator, stage_code_key
from .injectors import NOISE_KEY, NoiseEncoder, SpatialCode
from .losses import PRESETS, Distance, Target
from .metrics import FaithfulnessWeightedVariance, faithfulness_weighted_variance
from .objectives import IMLE, Selection, perturb_codes, select_codes
from .rebalance import (
    RarityBatchSampler,
    RarityModel,
    RebalancedDataset,
    class_mean_colours,
    kde_density,
    rarity_scores,
)
from .recipes import SR_STAGES

__all__ = [
    "IMLE",
    "NOISE_KEY",
    "PRESETS",
    "SR_STAGES",
    "CRNGenerator",
    "DemoSuperResolution",
    "Distance",
    "FaithfulnessWeightedVariance",
    "LayerNorm2d",
    "NoiseEncoder",
    "RRDBGenerator",
    "RarityBatchSampler",
    "RarityModel",
    "RebalancedDataset",
    "Selection",
    "SpatialCode",
    "Target",
    "bicubic_upsample",
    "class_mean_colours",
    "faithfulness_weighted_variance",
    "from_official_srim",
    "infer_srim_config",
    "kde_density",
    "perturb_codes",
    "psnr",
    "rarity_scores",
    "read_srim_options",
    "select_codes",
    "stage_code_key",
]
