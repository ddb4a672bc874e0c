"""`full`: every weight trains; the pretrained backbone at a lower learning rate than the new head."""

from __future__ import annotations

from torch import nn

from transferkit.config import TrainConfig
from transferkit.strategies.base import decay_groups


class FullStrategy:
    name = "full"
    caches_features = False

    def prepare(self, model: nn.Module) -> None:
        model.requires_grad_(True)

    def param_groups(self, model: nn.Module, train: TrainConfig) -> list[dict]:
        return decay_groups(model.backbone.named_parameters(), train.lr, train.weight_decay) + decay_groups(
            model.head.named_parameters(), train.head_lr, train.weight_decay
        )
