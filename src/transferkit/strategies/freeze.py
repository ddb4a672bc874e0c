"""`freeze`: the last N blocks of the backbone and the head train; earlier blocks stay frozen."""

from __future__ import annotations

from dataclasses import dataclass

from transferkit.errors import ConfigError
from transferkit.strategies.base import Phase, StrategyDefaults, backbone_groups, head_groups


@dataclass
class FreezeOptions:
    trainable_blocks: int = 2  # `freeze`: how many of the backbone's last blocks train (embeddings count as block 0)
    layer_lr_decay: float = 1.0  # `freeze`/`full`: block i from the top trains at lr * decay**i; 1.0 = same rate

    def __post_init__(self) -> None:
        if self.trainable_blocks < 0:
            raise ConfigError(f"trainable_blocks must be >= 0, got {self.trainable_blocks}.")
        if not 0.0 < self.layer_lr_decay <= 1.0:
            raise ConfigError(f"layer_lr_decay must be in (0, 1], got {self.layer_lr_decay}.")


class FreezeStrategy(StrategyDefaults):
    name = "freeze"

    def phases(self, config) -> list[Phase]:
        options = config.freeze

        def prepare(model) -> None:
            blocks = model.backbone.blocks()
            if options.trainable_blocks > len(blocks):
                raise ConfigError(
                    f"trainable_blocks={options.trainable_blocks} but this backbone has only {len(blocks)} blocks "
                    f"(for text models: embeddings + layers). Use at most {len(blocks)}, or strategy=full."
                )
            model.backbone.requires_grad_(False)
            for block in blocks[len(blocks) - options.trainable_blocks :]:
                block.requires_grad_(True)
            model.head.requires_grad_(True)

        def groups(model, train):
            return backbone_groups(model, train, options.layer_lr_decay) + head_groups(model, train)

        return [Phase("freeze", False, config.train.epochs, prepare, groups)]

    def artifact_info(self, model, config) -> dict:
        return {"trainable_blocks": config.freeze.trainable_blocks, "layer_lr_decay": config.freeze.layer_lr_decay}
