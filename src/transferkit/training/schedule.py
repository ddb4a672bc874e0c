"""AdamW with linear warmup then linear, cosine or constant decay."""

from __future__ import annotations

import math

import torch

from transferkit.config import TrainConfig


def warmup_decay(step: int, total: int, warmup: int, kind: str) -> float:
    """Learning-rate multiplier at `step`."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return max(0.0, 1.0 - progress)


def build_optimizer(param_groups: list[dict], train: TrainConfig, total_steps: int):
    optimizer = torch.optim.AdamW(param_groups)
    warmup = int(train.warmup_ratio * total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_decay(step, total_steps, warmup, train.schedule)
    )
    return optimizer, scheduler
