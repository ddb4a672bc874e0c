"""`probe`: the backbone is frozen and runs once per example; only the head trains, on those features."""

from __future__ import annotations

from torch import nn

from transferkit.config import TrainConfig
from transferkit.strategies.base import decay_groups


class ProbeStrategy:
    name = "probe"
    caches_features = True

    def prepare(self, model: nn.Module) -> None:
        model.backbone.requires_grad_(False)
        model.head.requires_grad_(True)

    def param_groups(self, model: nn.Module, train: TrainConfig) -> list[dict]:
        return decay_groups(model.head.named_parameters(), train.head_lr, train.weight_decay)
