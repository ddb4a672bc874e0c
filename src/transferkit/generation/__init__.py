"""Generative transfer: adapt a causal language model to prompt -> response pairs (LoRA or full fine-tuning).

`GenerativeFineTuner` (returned by `FineTuner(task="generation")`) trains, generates, evaluates and saves;
the pieces live in one module each: models (registry and loading), pairs (data), tokens (chat template,
prompt masking, packing), metrics, and artifact (save / load).
"""
