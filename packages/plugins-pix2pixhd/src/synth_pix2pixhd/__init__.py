"""synth plugin: pix2pixHD (Wang et al., CVPR 2018, "High-Resolution Image Synthesis and
Semantic Manipulation with Conditional GANs").

Parts (registered as ``pix2pixhd.*``): :class:`GlobalGenerator`, :class:`LocalEnhancer`,
:class:`PatchDiscriminator`, :class:`MultiscaleDiscriminator`, :class:`FeatureMatching`,
:class:`InstanceEncoder`, :class:`ClusterSampler`. Recipes ``pix2pixhd.cityscapes_512``,
``pix2pixhd.cityscapes_1024``, ``pix2pixhd.ade20k``; :func:`training_config` for the
coarse-to-fine schedule; :func:`from_official` / :func:`to_official` for the official
checkpoints; :func:`edit_labels`, :func:`add_instance`, :func:`remove_instance` for editing.
"""

from __future__ import annotations

from .convert import ConversionReport, convert_state_dict, from_official, to_official
from .discriminators import MultiscaleDiscriminator, PatchDiscriminator, discriminator_input
from .editing import add_instance, edit_labels, remove_instance
from .encoders import InstanceEncoder, instance_average, instance_segments
from .generators import GlobalGenerator, LocalEnhancer, downsample_input, instance_edges
from .losses import FeatureMatching
from .recipes import RECIPES, recipe, training_config
from .samplers import ClusterSampler, batched_kmeans, instance_features

__all__ = [
    "RECIPES",
    "ClusterSampler",
    "ConversionReport",
    "FeatureMatching",
    "GlobalGenerator",
    "InstanceEncoder",
    "LocalEnhancer",
    "MultiscaleDiscriminator",
    "PatchDiscriminator",
    "add_instance",
    "batched_kmeans",
    "convert_state_dict",
    "discriminator_input",
    "downsample_input",
    "edit_labels",
    "from_official",
    "instance_average",
    "instance_edges",
    "instance_features",
    "instance_segments",
    "recipe",
    "remove_instance",
    "to_official",
    "training_config",
]
