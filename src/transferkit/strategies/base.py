"""The Strategy contract: which parameters train, and whether features can be cached."""

from __future__ import annotations

from typing import Protocol

from torch import nn

from transferkit.config import TrainConfig

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


class Strategy(Protocol):
    name: str
    caches_features: bool  # True: the backbone runs once per example; the head trains on its features

    def prepare(self, model: nn.Module) -> None:
        """Set requires_grad on the model's parameters."""

    def param_groups(self, model: nn.Module, train: TrainConfig) -> list[dict]:
        """Optimizer parameter groups (learning rate and weight decay per group)."""


def decay_groups(named_params, lr: float, weight_decay: float) -> list[dict]:
    """Split into weight-decayed and not-decayed (biases, norms) groups at one learning rate."""
    decay, no_decay = [], []
    for name, param in named_params:
        if not param.requires_grad:
            continue
        (no_decay if name.endswith(NO_DECAY) else decay).append(param)
    groups = [{"params": decay, "lr": lr, "weight_decay": weight_decay}]
    groups.append({"params": no_decay, "lr": lr, "weight_decay": 0.0})
    return [g for g in groups if g["params"]]
