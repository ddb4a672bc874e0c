"""One phase of a fit: which parameters train, on which data (batches or cached features), under which objective.

Most phases train the whole model (or, on cached features, the head) on the task's loss. A phase with its own
`objective` (strategies.base.PhaseObjective) trains another module on another loss through the same loop: the
contrastive strategy trains the backbone's embeddings on pairs. A phase's `init` hook sees its training data
before the first epoch (e.g. a head started at the class centroids of the features).
"""

from __future__ import annotations

import dataclasses
from typing import Any

HEAD_ONLY_PATIENCE_FACTOR = 3  # head-only epochs are short and their validation scores noisy: wait longer


def _parameter_counts(model, head_only: bool) -> dict[str, Any]:
    from transferkit.model import count_parameters

    trainable, _ = count_parameters(model.head if head_only else model)
    _, total = count_parameters(model)
    return {"trainable": trainable, "total": total, "trainable_share": round(trainable / total, 6)}


def _train_mode(model, phase, batchnorm: str) -> None:
    """After module.train(): the phase's frozen parts, and with batchnorm="frozen" every BatchNorm, back to eval.

    Small fine-tuning batches give noisy batch statistics that overwrite the pretrained running statistics;
    keeping BatchNorm in inference mode is the usual advice for fine-tuning on little data (Keras' transfer
    learning guide; keras#9214).
    """
    from torch import nn

    from transferkit.strategies.base import frozen_backbone_eval

    if phase.train_mode:
        phase.train_mode(model)
    frozen_backbone_eval(model)  # every phase: fully frozen parts run in inference mode (dropout off, BatchNorm fixed)
    if batchnorm == "frozen":
        for module in model.backbone.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()


def _new_layer_groups(model, groups: list[dict], train) -> list[dict]:
    """Layers transferkit added in front of the backbone (an input projection) train in every phase."""
    from transferkit.strategies.base import decay_groups

    added = getattr(model.backbone, "new_layers", list)()
    for layer in added:
        layer.requires_grad_(True)
    in_groups = {id(p) for g in groups for p in g["params"]}
    named = [(n, p) for layer in added for n, p in layer.named_parameters() if id(p) not in in_groups]
    return decay_groups(named, train.head_lr, train.weight_decay)


def _what_trains(phase, model, run, config, features, cached: bool) -> dict[str, Any]:
    """The loop's module, data, validation data, objective, validator and training options for this phase."""
    if cached:
        data, val = features(run.batches, "train"), features(run.val_batches, "validation") if run.val_batches else None
        module = model.head
    else:
        data, val, module = run.batches, run.val_batches, model
    if phase.init:
        phase.init(model, data if cached else features(run.batches, "train"))
    if phase.objective is None:
        objective, validate = run.task.objective(), run.task.validator(config.train)
        return dict(module=module, data=data, val=val, objective=objective, validate=validate, train=config.train)
    custom = phase.objective(model, data, config.train)
    return dict(
        module=custom.module,
        data=data,
        val=val if custom.validate else None,  # no validator: the loop's classification default does not apply
        objective=custom.loss,
        validate=custom.validate,
        train=dataclasses.replace(config.train, group_by_length=custom.group_by_length),
    )


def run_phase(phase, model, run, config, accelerator, features, checkpointer, resume, log, on_epoch=None):
    """Train one phase of `run` (fit.RunData) through the one training loop; returns (TrainResult, counts)."""
    from transferkit.training.loop import train_loop

    phase.prepare(model)
    groups = phase.param_groups(model, config.train)
    groups += _new_layer_groups(model, groups, config.train)
    cached = phase.cached_features and not getattr(model.backbone, "new_layers", list)()
    counts = _parameter_counts(model, cached)
    if log:
        log(
            f"{phase.name}: {len(run.train)} rows, {run.task.describe()}; validation: {run.val_source}; backbone "
            f"{config.backbone.backbone} ({model.backbone.data_config}); trainable parameters {counts['trainable']:,} "
            f"of {counts['total']:,} ({100 * counts['trainable_share']:.2f}%)"
        )
    trains = _what_trains(phase, model, run, config, features, cached)
    patience = config.train.early_stopping_patience
    if patience and cached:
        patience *= HEAD_ONLY_PATIENCE_FACTOR
    result = train_loop(
        trains["module"],
        groups,
        trains["data"],
        trains["val"],
        trains["train"],
        phase.epochs,
        run.task.num_outputs,
        accelerator,
        log=log,
        phase=phase.name,
        patience=patience,
        train_mode=lambda: _train_mode(model, phase, config.train.batchnorm),
        checkpointer=checkpointer,
        resume=resume,
        head_only=cached,
        objective=trains["objective"],
        validate=trains["validate"],
        on_epoch=on_epoch,
    )
    return result, counts
