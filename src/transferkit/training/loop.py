"""The one training loop: read it top to bottom. Devices, accumulation and distribution via accelerate."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from transferkit.config import TrainConfig
from transferkit.errors import TrainingError
from transferkit.evaluation.metrics import classification_metrics
from transferkit.training.batching import ItemDataset, LengthGroupedBatches, labelled_collate
from transferkit.training.inference import run_batched
from transferkit.training.schedule import build_optimizer


@dataclass
class Batches:
    """Items (encoded once), their label ids, how to pad a list of items, and each item's length."""

    items: Sequence[Any]
    labels: Sequence[int]
    collate: Callable[[list[Any]], Any]
    lengths: Sequence[int]


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)  # one row per epoch: loss, validation metrics
    best_epoch: int | None = None
    stopped_early: bool = False
    optimizer_steps: int = 0


def _validate(module: nn.Module, val: Batches, train: TrainConfig, device, num_classes: int) -> dict:
    module.eval()
    logits = run_batched(module, val.items, val.collate, val.lengths, train.eval_batch_size, device)
    metrics = classification_metrics(list(val.labels), logits.argmax(-1).tolist(), num_classes)
    metrics["loss"] = nn.functional.cross_entropy(logits, torch.tensor(list(val.labels))).item()
    return metrics


def train_loop(
    module: nn.Module,
    param_groups: list[dict],
    data: Batches,
    val: Batches | None,
    train: TrainConfig,
    epochs: int,
    num_classes: int,
    accelerator,
    log: Callable[[str], None] | None = print,
    desc: str = "train",
    patience: int | None = None,
) -> TrainResult:
    """Train `module` on `data`; with `val`, keep the best epoch and stop after `patience` epochs without gain."""
    from tqdm.auto import tqdm

    batches = LengthGroupedBatches(data.lengths, train.batch_size, train.seed, train.group_by_length)
    loader = torch.utils.data.DataLoader(
        ItemDataset(data.items, data.labels), batch_sampler=batches, collate_fn=labelled_collate(data.collate)
    )
    total_steps = math.ceil(len(batches) / train.grad_accum_steps) * epochs
    optimizer, scheduler = build_optimizer(param_groups, train, total_steps)
    module, optimizer, loader, scheduler = accelerator.prepare(module, optimizer, loader, scheduler)
    loss_fn = nn.CrossEntropyLoss()
    result = TrainResult()
    best_score, best_state, stale = (-math.inf, -math.inf), None, 0

    for epoch in range(1, epochs + 1):
        batches.set_epoch(epoch)
        module.train()
        running, seen = 0.0, 0
        bar = tqdm(
            loader, desc=f"{desc} epoch {epoch}/{epochs}", leave=False, unit="batch", disable=None if log else True
        )
        for inputs, targets in bar:
            with accelerator.accumulate(module):
                loss = loss_fn(module(inputs), targets)
                if not torch.isfinite(loss):
                    raise TrainingError(
                        f"The training loss became {loss.item()} at epoch {epoch}, step {result.optimizer_steps + 1}. "
                        "Lower the learning rate (--lr / --head-lr), or check the data for broken examples."
                    )
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    if train.max_grad_norm:
                        accelerator.clip_grad_norm_(module.parameters(), train.max_grad_norm)
                    result.optimizer_steps += 1
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            running += loss.item() * len(targets)
            seen += len(targets)
            bar.set_postfix(loss=f"{running / seen:.4f}")

        row: dict[str, Any] = {"epoch": epoch, "train_loss": round(running / max(seen, 1), 6)}
        if val is not None and len(val.items):
            metrics = _validate(module, val, train, accelerator.device, num_classes)
            row.update({f"val_{k}": round(metrics[k], 6) for k in ("loss", "accuracy", "macro_f1")})
            score = (metrics[train.metric], -metrics["loss"])  # the metric first; lower loss breaks ties
            if score > best_score:
                best_score, stale, result.best_epoch = score, 0, epoch
                best_state = {k: v.detach().clone() for k, v in accelerator.unwrap_model(module).state_dict().items()}
            else:
                stale += 1
        result.history.append(row)
        if log:
            log("  " + "  ".join(f"{k}={v}" for k, v in row.items()))
        if patience and stale >= patience and epoch < epochs:
            result.stopped_early = True
            if log:
                log(f"  early stop: no {train.metric} gain for {stale} epoch(s); best was epoch {result.best_epoch}")
            break

    unwrapped = accelerator.unwrap_model(module)
    if best_state is not None:
        unwrapped.load_state_dict(best_state)  # restore the best validation epoch
    unwrapped.eval()
    return result
