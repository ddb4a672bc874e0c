"""The one training loop: read it top to bottom. Devices, accumulation and distribution via accelerate.

Checkpoints (when a Checkpointer has a directory) are written at every epoch end and every K optimizer
steps, always at an optimizer-step boundary, with everything needed to continue bit-for-bit: weights,
optimizer, scheduler, RNG states, the position in the epoch (batch order is a function of seed and epoch),
history and the best-epoch state for early stopping.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from transferkit.config import TrainConfig
from transferkit.errors import ArtifactError, TrainingError
from transferkit.evaluation.metrics import classification_metrics
from transferkit.training.batching import ItemDataset, LengthGroupedBatches, labelled_collate
from transferkit.training.checkpoint import Checkpointer, rng_state, set_rng_state
from transferkit.training.distributed import RankPieces, is_main, piece_of, sum_across, world
from transferkit.training.inference import move, run_batched
from transferkit.training.schedule import build_optimizer
from transferkit.training.sharding import (
    full_optimizer_state,
    full_state,
    load_full_optimizer_state,
    load_full_state,
    mirror_modes,
    shard_copy,
    unshard_into,
    wants_sharding,
)

# (module, validation batches, device) -> (row of metrics for the history, score: higher is better)
Validator = Callable[[nn.Module, "Batches", Any], tuple[dict, tuple]]
# (module output, targets) -> scalar loss
Objective = Callable[[Any, torch.Tensor], torch.Tensor]


@dataclass
class Batches:
    """Items (encoded once), their targets, how to pad a list of items, and each item's length."""

    items: Sequence[Any]
    labels: Sequence[Any]  # class ids; multi-hot float rows (multilabel); standardised floats (regression)
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
    seconds: float | None = None  # wall time of the phase (set by fit_run; this process's view)


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


def _frozen_digest(module: nn.Module) -> float:
    """A cheap fingerprint of the frozen weights (float64 sum of their values): resuming on other frozen weights,
    e.g. a differently initialised user module, is refused rather than silently continued."""
    with torch.no_grad():
        return float(sum(p.detach().double().sum() for p in module.parameters() if not p.requires_grad))


def _changing_state(module: nn.Module) -> dict:
    """A copy of what training can change: trainable parameters and buffers (e.g. BatchNorm statistics)."""
    trainable = {name for name, param in module.named_parameters() if param.requires_grad}
    buffers = {name for name, _ in module.named_buffers()}
    return {k: v.detach().clone() for k, v in module.state_dict().items() if k in trainable or k in buffers}


def classification_validator(train: TrainConfig, num_classes: int) -> Validator:
    """Validation for classifiers: accuracy, macro-F1 and loss; ranked by `train.metric`, then lower loss."""

    def validate(module: nn.Module, val: Batches, device) -> tuple[dict, tuple[float, float]]:
        module.eval()
        logits = run_batched(module, val.items, val.collate, val.lengths, train.eval_batch_size, device)
        metrics = classification_metrics(list(val.labels), logits.argmax(-1).tolist(), num_classes)
        metrics["loss"] = nn.functional.cross_entropy(logits, torch.tensor(list(val.labels))).item()
        row = {f"val_{k}": round(metrics[k], 6) for k in ("loss", "accuracy", "macro_f1")}
        return row, (metrics[train.metric], -metrics["loss"])

    return validate


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
    objective: Objective | None = None,
    validate: Validator | None = None,
    on_epoch: Callable[[str, dict], None] | None = None,
) -> TrainResult:
    """Train `module` on `data`; with `val`, keep the best epoch and stop after `patience` epochs without gain.

    `objective` turns the module's output and the targets into the loss (default: cross-entropy on logits);
    `validate` scores an epoch (default: classification metrics ranked by `train.metric`); `on_epoch(phase, row)`
    receives each epoch's row of the history as it is written (experiment tracking).
    """
    batch_size = train.head_batch_size if head_only else train.batch_size
    batches = LengthGroupedBatches(data.lengths, batch_size, train.seed, train.group_by_length and not head_only)
    rank, size = world()
    loader = torch.utils.data.DataLoader(
        ItemDataset(data.items, data.labels),
        batch_sampler=RankPieces(batches, rank, size) if size > 1 else batches,  # several processes: one piece each
        collate_fn=labelled_collate(data.train_collate or data.collate),
        generator=torch.Generator().manual_seed(train.seed),  # keeps the global RNG for dropout alone
    )
    total_steps = math.ceil(len(batches) / train.grad_accum_steps) * epochs
    original = module
    sharded = wants_sharding(train.fsdp, module)
    if sharded:  # --fsdp: train a sharded copy; the plain model waits on the CPU and gets its weights at the end
        home = next(original.parameters()).device
        original.to("cpu")
        module, param_groups = shard_copy(original, param_groups, accelerator.device, train.mixed_precision)
    optimizer, scheduler = build_optimizer(param_groups, train, total_steps)
    # The optimizer and scheduler stay plain torch objects: stepping them only when gradients are synced is
    # explicit below, and accelerate's optimizer wrapper costs ~1 ms per step, which dominates head-only training.
    # The loader is ours too: every process walks the same global batches (RankPieces cuts them), which keeps a
    # run with N processes equal to one with 1, and lets a checkpoint resume with any number of processes.
    if not sharded:
        module = accelerator.prepare(module)  # DDP with several processes; autocast with --mixed-precision
    validate = validate or classification_validator(train, num_classes)
    run = _Run(module, optimizer, scheduler, loader, batches, val, train, epochs, validate, accelerator)
    run.original = original if sharded else None
    run.log, run.phase, run.checkpointer = log, phase, checkpointer or Checkpointer(None, "")
    run.on_epoch = on_epoch
    if objective is not None:
        run.loss_fn = objective
    saved = run.restore() if resume else None
    if saved is not None and (run.state.done or run.state.epoch > epochs):
        # A finished phase trains no epoch here, where its RNG state would be set: set it now, so the next phase
        # (lp-ft's fine-tuning after the probe) draws the same dropout masks as an uninterrupted run.
        set_rng_state(saved["rng"])
    while not run.state.done and run.state.epoch <= epochs:
        run.train_epoch(train_mode, saved)
        saved = None
        run.end_epoch(patience)
    if epochs == 0:  # a phase that sets its module without training it (contrastive's centroid head)
        run.score_as_set()
    unwrapped = accelerator.unwrap_model(module)
    if sharded:
        unshard_into(original, module)
        unwrapped = original.to(home)
    if run.state.best_state is not None:
        unwrapped.load_state_dict(run.state.best_state, strict=False)  # the best epoch (frozen weights never moved)
    unwrapped.eval()
    return run.result


@dataclass
class _Run:
    """One phase's training: the objects it steps, where it is (`state`) and what it reports (`result`)."""

    module: nn.Module
    optimizer: Any
    scheduler: Any
    loader: Any
    batches: LengthGroupedBatches
    val: Batches | None
    train: TrainConfig
    epochs: int
    validate: Validator
    accelerator: Any
    log: Callable[[str], None] | None = None
    phase: str = "train"
    on_epoch: Callable[[str, dict], None] | None = None  # receives each history row (experiment tracking)
    checkpointer: Checkpointer = field(default_factory=lambda: Checkpointer(None, ""))
    state: LoopState = field(default_factory=LoopState)
    result: TrainResult = field(default_factory=TrainResult)
    loss_fn: Objective = field(default_factory=lambda: nn.CrossEntropyLoss())
    _frozen: float | None = None  # digest of the frozen weights: they do not move during a phase, so computed once
    original: nn.Module | None = None  # --fsdp: the plain model whose sharded copy `module` is

    def changing_state(self) -> dict:
        """What training changes, whole: under --fsdp gathered from the shards (a collective), so the best epoch and
        checkpoints hold the same tensors whatever the number of processes."""
        if self.original is None:
            return _changing_state(self.accelerator.unwrap_model(self.module))
        changing = _changing_state(self.original).keys()
        return {k: v for k, v in full_state(self.module).items() if k in changing}

    def plain_module(self) -> nn.Module:
        """The model as one process sees it whole: the unwrapped module, or under --fsdp the plain original."""
        return self.original if self.original is not None else self.accelerator.unwrap_model(self.module)

    def frozen_digest(self) -> float:
        if self._frozen is None:
            self._frozen = _frozen_digest(self.plain_module())  # frozen weights: the copy's are the same
        return self._frozen

    def restore(self) -> dict | None:
        """Continue from this phase's checkpoint, if there is one; returns it (its RNG state is set later)."""
        saved = self.checkpointer.load(self.phase)
        if saved is None:
            return None
        module = self.plain_module()
        where = self.checkpointer.path(self.phase)
        if saved.get("frozen_digest") not in (None, self.frozen_digest()):
            raise ArtifactError(
                f"Checkpoint {str(where)!r} was made with other frozen weights than this run has (a different base "
                "model or module initialisation). Resume with the same model, or pass --overwrite to start over."
            )
        trainable = {name for name, p in module.named_parameters() if p.requires_grad}
        if self.original is not None:  # full tensors by name, into each process's shards
            missing, unexpected = load_full_state(self.module, saved["module"])
        else:
            missing, unexpected = module.load_state_dict(saved["module"], strict=False)
        if unexpected or trainable & set(missing):
            raise ArtifactError(
                f"Checkpoint {str(where)!r} does not match this model (unexpected: {unexpected[:3]}, missing: "
                f"{sorted(trainable & set(missing))[:3]}). Resume with the same options, or pass --overwrite."
            )
        if self.original is not None:
            load_full_optimizer_state(self.module, self.optimizer, saved["optimizer"])
        else:
            self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.state = LoopState(**saved["loop"])
        if not is_main():  # the checkpoint's loss totals are every process's: rank 0 carries them on
            self.state.running, self.state.seen = 0.0, 0
        self.result = TrainResult(**saved["result"])
        self.result.resumed_from_step = self.result.optimizer_steps
        if self.log:
            self.log(f"  resumed {self.phase} at epoch {self.state.epoch}, step {self.result.optimizer_steps}")
        return saved

    def save_checkpoint(self) -> None:
        if not self.checkpointer.enabled:
            return
        running, seen = sum_across(self.state.running, self.state.seen)  # every process's totals, counted once
        module_state = self.changing_state()  # --fsdp: every process gathers the whole state, rank 0 writes
        if self.original is not None:
            optimizer_state = full_optimizer_state(self.module, self.optimizer)
        else:
            optimizer_state = self.optimizer.state_dict()
        if is_main():  # only rank 0 writes; every process holds the same weights and optimizer state
            self.checkpointer.save(
                self.phase,
                {
                    # frozen weights never move (they are rebuilt identically on resume): only what trains is saved
                    "module": module_state,
                    "frozen_digest": self.frozen_digest(),
                    "optimizer": optimizer_state,
                    "scheduler": self.scheduler.state_dict(),
                    "loop": {**vars(self.state), "running": running, "seen": int(seen)},
                    "result": {k: v for k, v in vars(self.result).items() if k not in ("resumed_from_step", "seconds")},
                    "rng": rng_state(),
                },
            )

    def train_epoch(self, train_mode: Callable[[], None] | None, saved: dict | None) -> None:
        from tqdm.auto import tqdm

        state, epoch = self.state, self.state.epoch
        self.batches.set_epoch(epoch)
        rank, size = world()
        # each piece's loss weight (n_r * N / n: the DDP-averaged gradient is the one-process one); 1 alone
        weights = [piece_of(b, rank, size)[1] for b in self.batches] if size > 1 else [1.0] * len(self.batches)
        self.module.train()
        if self.original is not None:  # the strategy sets modes on the plain model; the sharded copy follows
            self.original.train()
        if train_mode:
            train_mode()
        if self.original is not None:
            mirror_modes(self.original, self.module)
        iterator = iter(self.loader)
        for _ in range(state.batches_done):  # resuming inside an epoch: same order, skip what was trained
            next(iterator)
        if saved is not None:
            set_rng_state(saved["rng"])  # after skipping, so dropout continues exactly where it stopped
        bar = tqdm(
            iterator,
            total=len(self.batches),
            initial=state.batches_done,
            desc=f"{self.phase} epoch {epoch}/{self.epochs}",
            leave=False,
            unit="batch",
            disable=None if self.log else True,
        )
        device = self.accelerator.device
        for inputs, targets in bar:
            inputs, targets = move(inputs, device), targets.to(device)
            weight = weights[state.batches_done]
            stepped, loss = self.step(inputs, targets, weight)
            state.batches_done += 1
            rows = len(targets) if weight else 0  # a weight-0 stand-in row (empty piece) is not counted
            state.running += loss * rows
            state.seen += rows
            bar.set_postfix(loss=f"{state.running / max(state.seen, 1):.4f}")
            if stepped:
                self.result.optimizer_steps += 1
                every = self.checkpointer.every_steps
                if every and self.result.optimizer_steps % every == 0 and state.batches_done < len(self.batches):
                    self.save_checkpoint()

    def step(self, inputs, targets, weight: float = 1.0) -> tuple[bool, float]:
        """Forward + backward on one micro-batch (its loss scaled by `weight`); an optimizer step when accumulation
        completes: every `grad_accum_steps` micro-batches and at the epoch's end (accelerate's rule, made explicit
        because the loader is not accelerate's)."""
        done = self.state.batches_done + 1
        stepped = done % self.train.grad_accum_steps == 0 or done == len(self.batches)
        between = getattr(self.module, "no_sync", None) if not stepped else None  # DDP: all-reduce on the last only
        with between() if between else contextlib.nullcontext():
            loss = self.loss_fn(self.module(inputs), targets)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"The training loss became {loss.item()} at epoch {self.state.epoch}, step "
                    f"{self.result.optimizer_steps + 1}. Lower the learning rate (--lr / --head-lr), or check the "
                    "data for broken examples. The last good checkpoint was kept."
                )
            self.accelerator.backward(loss * weight if weight != 1.0 else loss)  # divides by grad_accum_steps
        if stepped:
            scaler = self.accelerator.scaler  # fp16: gradients are scaled; unscale before clipping
            if scaler is not None:
                scaler.unscale_(self.optimizer)
            if self.train.max_grad_norm:
                nn.utils.clip_grad_norm_(self.module.parameters(), self.train.max_grad_norm)
            if scaler is None:
                self.optimizer.step()
                self.scheduler.step()
            else:  # a step with inf/nan gradients is skipped (and the scale lowered): the schedule waits for it
                scale = scaler.get_scale()
                scaler.step(self.optimizer)
                scaler.update()
                if scaler.get_scale() >= scale:
                    self.scheduler.step()
            self.optimizer.zero_grad()
        return stepped, loss.item()

    def score_as_set(self) -> None:
        """A phase of no epoch: its module as set is the result, so its validation metrics (when there is validation
        data) are the phase's history row "epoch 0" and its best epoch, which the run reports as its validation
        score (auto compares candidates on it)."""
        if self.val is None or not len(self.val.items):
            return
        metrics, _ = self.validate(self.module, self.val, self.accelerator.device)
        self.result.best_epoch = 0
        self.write_row({"epoch": 0, **metrics})

    def write_row(self, row: dict[str, Any]) -> None:
        """One row of the phase's history: kept, passed to `on_epoch` (experiment tracking), logged."""
        self.result.history.append(row)
        if self.on_epoch:
            self.on_epoch(self.phase, row)
        if self.log:
            self.log("  " + "  ".join(f"{k}={v}" for k, v in row.items()))

    def end_epoch(self, patience: int | None) -> None:
        """Validate, keep the best state, log, decide on early stopping, checkpoint."""
        state, result, epoch = self.state, self.result, self.state.epoch
        running, seen = sum_across(state.running, state.seen)  # every process's rows, each counted once
        row: dict[str, Any] = {"epoch": epoch, "train_loss": round(running / max(seen, 1), 6)}
        if self.val is not None and len(self.val.items):
            metrics, score = self.validate(self.module, self.val, self.accelerator.device)
            row.update(metrics)
            if score > state.best_score:
                state.best_score, state.stale, result.best_epoch = score, 0, epoch
                state.best_state = self.changing_state()
            else:
                state.stale += 1
        self.write_row(row)
        state.epoch, state.batches_done, state.running, state.seen = epoch + 1, 0, 0.0, 0
        if patience and state.stale >= patience and epoch < self.epochs:
            result.stopped_early = state.done = True
            if self.log:
                self.log(
                    f"  early stop: no validation gain for {state.stale} epoch(s); best was epoch {result.best_epoch}"
                )
        state.done = state.done or epoch >= self.epochs
        self.save_checkpoint()
