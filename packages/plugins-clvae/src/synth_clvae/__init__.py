"""synth plugin: SPADE/GauGAN and class- and layer-wise VAEs (Endo & Kanamori)."""
