"""`lora`: low-rank adapters (peft) on the backbone's attention layers; the new head trains fully.

The head lives outside the peft model, so it is always saved with the adapters (peft users lose a
custom head: peft#310, #577). At save time the adapters can be merged into the weights
(`merge_adapters=True`); the artifact records which was done.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from transferkit.errors import ConfigError
from transferkit.strategies.base import Phase, decay_groups, head_groups


@dataclass
class LoraOptions:
    lora_r: int = 8  # `lora`: adapter rank
    lora_alpha: int = 16  # `lora`: adapter scaling numerator (scale = alpha / r)
    lora_dropout: float = 0.0  # `lora`: dropout on the adapter input (each target then keeps a copy of its input)
    lora_targets: str | None = None  # `lora`: comma-separated module names; None = the backbone's attention q/k/v
    lora_lr: float = 2e-3  # `lora`: adapter learning rate (adapters start at zero, so far higher than lr)
    merge_adapters: bool = False  # `lora`: merge adapters into the backbone weights when saving

    def __post_init__(self) -> None:
        if self.lora_r < 1 or self.lora_alpha < 1:
            raise ConfigError(f"lora_r and lora_alpha must be >= 1, got {self.lora_r}, {self.lora_alpha}.")
        if not 0.0 <= self.lora_dropout < 1.0 or self.lora_lr <= 0:
            raise ConfigError(
                f"lora_dropout must be in [0, 1) and lora_lr > 0, got {self.lora_dropout}, {self.lora_lr}."
            )

    def targets(self, backbone) -> list[str]:
        return [t.strip() for t in self.lora_targets.split(",")] if self.lora_targets else backbone.lora_targets


def has_adapters(backbone) -> bool:
    return hasattr(backbone.model, "peft_config")


def inject_adapters(backbone, options: LoraOptions) -> None:
    from peft import LoraConfig, get_peft_model

    targets = options.targets(backbone)
    config = LoraConfig(
        r=options.lora_r, lora_alpha=options.lora_alpha, lora_dropout=options.lora_dropout, target_modules=targets
    )
    try:
        with warnings.catch_warnings():  # transformers 5 deprecation noise from inside peft, not actionable here
            warnings.simplefilter("ignore", FutureWarning)
            backbone.model = get_peft_model(backbone.model, config)
    except ValueError as exc:
        raise ConfigError(
            f"Cannot place LoRA adapters on {targets}: {exc}. Set lora_targets to module names of this backbone."
        ) from None


def merge_adapters(backbone) -> None:
    """Fold the adapters into the base weights; the backbone becomes a plain model again."""
    backbone.model = backbone.model.merge_and_unload()


class LoraStrategy:
    name = "lora"

    def setup(self, model, config) -> None:
        if not has_adapters(model.backbone):
            inject_adapters(model.backbone, config.lora)

    def phases(self, config) -> list[Phase]:
        def prepare(model) -> None:
            for name, param in model.backbone.named_parameters():
                param.requires_grad_("lora_" in name)
            model.head.requires_grad_(True)

        def groups(model, train):
            return decay_groups(
                model.backbone.named_parameters(), config.lora.lora_lr, train.weight_decay
            ) + head_groups(model, train)

        return [Phase("lora", False, config.train.epochs, prepare, groups)]

    def artifact_info(self, model, config) -> dict:
        return {
            "lora_r": config.lora.lora_r,
            "lora_alpha": config.lora.lora_alpha,
            "targets": config.lora.targets(model.backbone),
            "merged": not has_adapters(model.backbone),
        }
