"""Adversarial training (Madry et al.) for the robust classifiers `synth` synthesises with."""
