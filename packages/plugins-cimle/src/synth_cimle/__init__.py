"""synth plugin: Conditional IMLE (Li, Peng, Zhang & Malik, CVPR 2020)."""
