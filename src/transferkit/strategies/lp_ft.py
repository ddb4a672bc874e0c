"""`lp-ft`: linear probe first (from the feature cache), then full fine-tuning from the probed head.

Kumar et al., "Fine-Tuning can Distort Pretrained Features and Underperform Out-of-Distribution" (ICLR 2022):
starting full fine-tuning from a trained head keeps the random head's large early gradients from distorting
the pretrained features. In the second phase the head trains at the backbone's (low) learning rate.
"""

from __future__ import annotations

from transferkit.strategies.base import Phase, StrategyDefaults, backbone_groups, head_groups, unfreeze_all
from transferkit.strategies.probe import probe_phase


class LPFTStrategy(StrategyDefaults):
    name = "lp-ft"

    def phases(self, config) -> list[Phase]:
        def groups(model, train):
            return backbone_groups(model, train) + head_groups(model, train, lr=train.lr)

        return [probe_phase(config), Phase("fine-tune", False, config.train.epochs, unfreeze_all, groups)]
