"""The Strategy contract: what trains, in which phases, and whether the backbone's features can be cached.

A strategy is one file with a small options dataclass (fields are `RunConfig` keys) and a class that
returns its training phases. A phase says which parameters train (`prepare`), with which learning rates
(`param_groups`), which modules stay in inference mode while training (`train_mode`), whether only the
head trains on cached features, and optionally its own objective (`objective`: another module and loss through the
same loop) and a start for its training (`init`). `lp-ft` and `contrastive` are two phases; the others are one.
A strategy may also define `check_config(config)`, raising ConfigError for options it cannot train with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from torch import nn

    from transferkit.config import RunConfig, TrainConfig

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


@dataclass
class Phase:
    name: str  # used in logs and checkpoint files
    cached_features: bool  # True: only the head trains, on backbone features computed once
    epochs: int
    prepare: Callable[[nn.Module], None]  # sets requires_grad for this phase
    param_groups: Callable[[nn.Module, TrainConfig], list[dict]]
    train_mode: Callable[[nn.Module], None] | None = (
        None  # after module.train(): more to put back in eval (fit already does fully frozen parts)
    )
    objective: Callable[[nn.Module, Any, TrainConfig], PhaseObjective] | None = (
        None  # (model, training batches, train options) -> what the loop trains instead of the task's logits + loss
    )
    init: Callable[[nn.Module, Any], None] | None = (
        None  # (model, the phase's training batches: features when cached) before the first epoch, e.g. a head start
    )


@dataclass
class PhaseObjective:
    """A phase that trains something other than the model's logits under the task's loss (contrastive: the backbone's
    pooled embeddings under a pair loss). The one training loop runs `module` and minimises `loss`."""

    module: nn.Module  # what the loop runs on each batch; its parameters that require grad are the phase's
    loss: Callable[[Any, Any], Any]  # (module output, batch targets) -> scalar loss tensor
    validate: Callable[[nn.Module, Any, Any], tuple[dict, tuple]] | None  # (module, val batches, device); None: none
    group_by_length: bool = False  # a pair loss takes its pairs from the batch: batches drawn at random, not by length


class StrategyDefaults:
    """No structural changes and nothing extra to record: what most strategies need."""

    def setup(self, model: nn.Module, config: RunConfig) -> None:
        pass

    def artifact_info(self, model: nn.Module, config: RunConfig) -> dict[str, Any]:
        return {}


class Strategy(Protocol):
    name: str

    def setup(self, model: nn.Module, config: RunConfig) -> None:
        """Structural changes before training (e.g. inject adapters). Also called when reloading."""

    def phases(self, config: RunConfig) -> list[Phase]: ...

    def artifact_info(self, model: nn.Module, config: RunConfig) -> dict[str, Any]:
        """What the artifact should record about this strategy (e.g. whether adapters were merged)."""


def decay_groups(named_params, lr: float, weight_decay: float) -> list[dict]:
    """Split trainable parameters into weight-decayed and not-decayed (biases, norms) groups at one rate."""
    decay, no_decay = [], []
    for name, param in named_params:
        if param.requires_grad:
            bias = name.endswith(NO_DECAY) or name.rsplit(".", 1)[-1].startswith("bias")  # LSTM: bias_ih_l0, ...
            (no_decay if bias else decay).append(param)
    groups = [{"params": decay, "lr": lr, "weight_decay": weight_decay}]
    groups.append({"params": no_decay, "lr": lr, "weight_decay": 0.0})
    return [g for g in groups if g["params"]]


def head_groups(model: nn.Module, train: TrainConfig, lr: float | None = None) -> list[dict]:
    return decay_groups(model.head.named_parameters(), lr or train.head_lr, train.weight_decay)


def backbone_groups(model: nn.Module, train: TrainConfig, layer_lr_decay: float = 1.0) -> list[dict]:
    """Backbone parameters at `train.lr`; with layer_lr_decay < 1, block i from the top gets lr * decay**i."""
    if layer_lr_decay == 1.0:
        return decay_groups(model.backbone.named_parameters(), train.lr, train.weight_decay)
    groups: list[dict] = []
    seen: set[int] = set()
    blocks = model.backbone.blocks()
    for depth, block in enumerate(reversed(blocks)):
        named = [(n, p) for n, p in block.named_parameters() if id(p) not in seen]
        seen.update(id(p) for _, p in named)
        groups += decay_groups(named, train.lr * layer_lr_decay**depth, train.weight_decay)
    rest = [(n, p) for n, p in model.backbone.named_parameters() if id(p) not in seen]  # e.g. a final norm
    return decay_groups(rest, train.lr, train.weight_decay) + groups


def freeze_all_but_head(model: nn.Module) -> None:
    model.backbone.requires_grad_(False)
    model.head.requires_grad_(True)


def unfreeze_all(model: nn.Module) -> None:
    model.requires_grad_(True)


def frozen_backbone_eval(model: nn.Module) -> None:
    """Fully frozen subtrees run in inference mode while the rest trains (no dropout noise, BatchNorm fixed)."""

    def visit(module: nn.Module) -> None:
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            module.eval()
            return
        for child in module.children():
            visit(child)

    visit(model.backbone)
