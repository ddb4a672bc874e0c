"""Choosing for the user: rank candidate backbones before training (LogME, k-fold linear probe, baselines)."""
