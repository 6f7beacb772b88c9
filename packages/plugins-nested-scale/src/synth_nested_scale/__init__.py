"""synth plugin: Nested Scale-Editing for Conditional Image Synthesis (Zhang, Wang et al.)."""
