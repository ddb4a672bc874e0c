"""The one training loop: read it top to bottom. Devices, accumulation and distribution via accelerate.

Checkpoints (when a Checkpointer has a directory) are written at every epoch end and every K optimizer
steps, always at an optimizer-step boundary, with everything needed to continue bit-for-bit: weights,
optimizer, scheduler, RNG states, the position in the epoch (batch order is a function of seed and epoch),
history and the best-epoch state for early stopping.
"""

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
from transferkit.training.checkpoint import Checkpointer, rng_state, set_rng_state
from transferkit.training.inference import run_batched
from transferkit.training.schedule import build_optimizer


@dataclass
class Batches:
    """Items (encoded once), their label ids, how to pad a list of items, and each item's length."""

    items: Sequence[Any]
    labels: Sequence[int]
    collate: Callable[[list[Any]], Any]
    lengths: Sequence[int]
    train_collate: Callable[[list[Any]], Any] | None = None  # with training-time augmentation, when it differs


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)  # one row per epoch: loss, validation metrics
    best_epoch: int | None = None
    stopped_early: bool = False
    optimizer_steps: int = 0
    resumed_from_step: int | None = None


@dataclass
class LoopState:
    """What a checkpoint holds besides module/optimizer/scheduler: where we are and the best so far."""

    epoch: int = 1  # the epoch in progress (1-based)
    batches_done: int = 0  # micro-batches of `epoch` already trained
    running: float = 0.0
    seen: int = 0
    best_score: tuple[float, float] = (-math.inf, -math.inf)
    best_state: dict | None = None
    stale: int = 0
    done: bool = False


def _changing_state(module: nn.Module) -> dict:
    """A copy of what training can change: trainable parameters and buffers (e.g. BatchNorm statistics)."""
    trainable = {name for name, param in module.named_parameters() if param.requires_grad}
    buffers = {name for name, _ in module.named_buffers()}
    return {k: v.detach().clone() for k, v in module.state_dict().items() if k in trainable or k in buffers}


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
    phase: str = "train",
    patience: int | None = None,
    train_mode: Callable[[], None] | None = None,
    checkpointer: Checkpointer | None = None,
    resume: bool = False,
    head_only: bool = False,
) -> TrainResult:
    """Train `module` on `data`; with `val`, keep the best epoch and stop after `patience` epochs without gain."""
    from tqdm.auto import tqdm

    batch_size = train.head_batch_size if head_only else train.batch_size
    batches = LengthGroupedBatches(data.lengths, batch_size, train.seed, train.group_by_length and not head_only)
    loader = torch.utils.data.DataLoader(
        ItemDataset(data.items, data.labels),
        batch_sampler=batches,
        collate_fn=labelled_collate(data.train_collate or data.collate),
        generator=torch.Generator().manual_seed(train.seed),  # keeps the global RNG for dropout alone
    )
    total_steps = math.ceil(len(batches) / train.grad_accum_steps) * epochs
    optimizer, scheduler = build_optimizer(param_groups, train, total_steps)
    # The optimizer and scheduler stay plain torch objects: stepping them only when gradients are synced is
    # explicit below, and accelerate's optimizer wrapper costs ~1 ms per step, which dominates head-only training.
    module, loader = accelerator.prepare(module, loader)
    checkpointer = checkpointer or Checkpointer(None, "")
    loss_fn = nn.CrossEntropyLoss()
    result, state = TrainResult(), LoopState()

    saved = checkpointer.load(phase) if resume else None
    if saved is not None:
        accelerator.unwrap_model(module).load_state_dict(saved["module"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        state = LoopState(**saved["loop"])
        result = TrainResult(**saved["result"])
        result.resumed_from_step = result.optimizer_steps
        if log:
            log(f"  resumed {phase} at epoch {state.epoch}, step {result.optimizer_steps}")

    def save_checkpoint() -> None:
        if checkpointer.enabled:
            checkpointer.save(
                phase,
                {
                    "module": accelerator.unwrap_model(module).state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "loop": vars(state),
                    "result": {k: v for k, v in vars(result).items() if k != "resumed_from_step"},
                    "rng": rng_state(),
                },
            )

    while not state.done and state.epoch <= epochs:
        epoch = state.epoch
        # accelerate's loader re-sets the sampler's epoch from its own counter at each iter(): set it there
        getattr(loader, "set_epoch", batches.set_epoch)(epoch)
        module.train()
        if train_mode:
            train_mode()
        iterator = iter(loader)
        for _ in range(state.batches_done):  # resuming inside an epoch: same order, skip what was trained
            next(iterator)
        if saved is not None:
            set_rng_state(saved["rng"])  # after skipping, so dropout continues exactly where it stopped
            saved = None
        bar = tqdm(
            iterator,
            total=len(batches),
            initial=state.batches_done,
            desc=f"{phase} epoch {epoch}/{epochs}",
            leave=False,
            unit="batch",
            disable=None if log else True,
        )
        for inputs, targets in bar:
            with accelerator.accumulate(module):
                loss = loss_fn(module(inputs), targets)
                if not torch.isfinite(loss):
                    raise TrainingError(
                        f"The training loss became {loss.item()} at epoch {epoch}, step {result.optimizer_steps + 1}. "
                        "Lower the learning rate (--lr / --head-lr), or check the data for broken examples. "
                        "The last good checkpoint was kept."
                    )
                accelerator.backward(loss)
                stepped = accelerator.sync_gradients
                if stepped:
                    if train.max_grad_norm:
                        nn.utils.clip_grad_norm_(module.parameters(), train.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
            state.batches_done += 1
            state.running += loss.item() * len(targets)
            state.seen += len(targets)
            bar.set_postfix(loss=f"{state.running / state.seen:.4f}")
            if stepped:
                result.optimizer_steps += 1
                every = checkpointer.every_steps
                if every and result.optimizer_steps % every == 0 and state.batches_done < len(batches):
                    save_checkpoint()

        row: dict[str, Any] = {"epoch": epoch, "train_loss": round(state.running / max(state.seen, 1), 6)}
        if val is not None and len(val.items):
            metrics = _validate(module, val, train, accelerator.device, num_classes)
            row.update({f"val_{k}": round(metrics[k], 6) for k in ("loss", "accuracy", "macro_f1")})
            score = (metrics[train.metric], -metrics["loss"])  # the metric first; lower loss breaks ties
            if score > state.best_score:
                state.best_score, state.stale, result.best_epoch = score, 0, epoch
                state.best_state = _changing_state(accelerator.unwrap_model(module))
            else:
                state.stale += 1
        result.history.append(row)
        if log:
            log("  " + "  ".join(f"{k}={v}" for k, v in row.items()))
        state.epoch, state.batches_done, state.running, state.seen = epoch + 1, 0, 0.0, 0
        if patience and state.stale >= patience and epoch < epochs:
            result.stopped_early = state.done = True
            if log:
                log(
                    f"  early stop: no {train.metric} gain for {state.stale} epoch(s); best was epoch {result.best_epoch}"
                )
        state.done = state.done or epoch >= epochs
        save_checkpoint()

    unwrapped = accelerator.unwrap_model(module)
    if state.best_state is not None:
        unwrapped.load_state_dict(state.best_state, strict=False)  # restore the best epoch (frozen weights never moved)
    unwrapped.eval()
    return result
