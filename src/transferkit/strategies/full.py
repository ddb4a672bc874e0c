"""`full`: every weight trains; the pretrained backbone at a lower learning rate than the new head."""

from __future__ import annotations

from transferkit.strategies.base import Phase, StrategyDefaults, backbone_groups, head_groups, unfreeze_all


class FullStrategy(StrategyDefaults):
    name = "full"

    def phases(self, config) -> list[Phase]:
        def groups(model, train):
            return backbone_groups(model, train, config.freeze.layer_lr_decay) + head_groups(model, train)

        return [Phase("full", False, config.train.epochs, unfreeze_all, groups)]
