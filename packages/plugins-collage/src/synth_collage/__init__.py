"""synth plugin: Spatially Controllable Image Synthesis with Internal Representation Collaging
(Suzuki et al.): label collaging (sCBN), feature collaging on any generator, the paper's GAN,
official Chainer weights and recipes."""

__all__: list[str] = []
