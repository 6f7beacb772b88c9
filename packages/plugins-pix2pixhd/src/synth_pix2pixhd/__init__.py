"""synth plugin: pix2pixHD (Wang et al., CVPR 2018)."""
