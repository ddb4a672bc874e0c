"""One fit: check data, build backbone + head, apply the strategy, train, and describe the run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transferkit.config import RunConfig
from transferkit.data.examples import ExampleSet
from transferkit.data.splits import stratified_split, stratified_subsample
from transferkit.errors import DataError

MIN_ROWS_FOR_AUTO_VAL = 20  # below this, holding out validation rows costs more than early stopping gains
HEAD_ONLY_PATIENCE_FACTOR = 3  # head-only epochs are short and their validation scores noisy: wait longer
CHECK_TEXTS = 16  # validation texts kept to check exports against the trained model


@dataclass
class FitRun:
    model: Any
    labels: list[Any]
    device: Any
    info: dict[str, Any]


def pick_device(device: str = "auto"):
    import torch

    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def _check_train(train: ExampleSet) -> list[Any]:
    labels = sorted(set(train.labels or []), key=lambda v: (str(type(v)), v))
    if len(labels) < 2:
        raise DataError(
            f"{train.source} has a single class ({labels[0]!r} for all {len(train)} rows); a classifier needs at least "
            "two. Add examples of other classes, or check that --label-column names the right column."
        )
    return labels


def _split_data(
    config: RunConfig, train: ExampleSet, val: ExampleSet | None, log
) -> tuple[ExampleSet, ExampleSet | None, str]:
    seed = config.train.seed
    if config.data.max_train_rows and len(train) > config.data.max_train_rows:
        train = train.subset(stratified_subsample(train, config.data.max_train_rows, seed))
        log and log(f"subsampled training data to {len(train)} rows (max_train_rows={config.data.max_train_rows})")
    if val is not None:
        return train, val, val.source
    if config.data.val_fraction > 0 and len(train) >= MIN_ROWS_FOR_AUTO_VAL:
        keep, held = stratified_split(train, config.data.val_fraction, seed)
        if held:
            return train.subset(keep), train.subset(held), f"{len(held)} rows held out of training (stratified)"
    return train, None, "none"


def fit_run(config: RunConfig, train: ExampleSet, val: ExampleSet | None, log: Callable[[str], None] | None) -> FitRun:
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from transferkit.api import check_known_labels
    from transferkit.backbones import build_backbone
    from transferkit.export.manifest import command_line, hardware, now_iso, package_versions
    from transferkit.heads import build_head
    from transferkit.model import TransferModel, count_parameters
    from transferkit.strategies import build_strategy
    from transferkit.training.inference import run_batched
    from transferkit.training.loop import Batches, train_loop

    labels = _check_train(train)
    train, val, val_source = _split_data(config, train, val, log)
    if val is not None:
        check_known_labels(val, labels)
    index = {label: i for i, label in enumerate(labels)}
    set_seed(config.train.seed)
    bc = config.backbone
    backbone = build_backbone(bc.backbone, pooling=bc.pooling, max_length=bc.max_length)
    model = TransferModel(backbone, build_head(config.head, backbone.num_features, len(labels)))
    strategy = build_strategy(config.strategy.strategy)
    strategy.prepare(model)
    trainable, total = count_parameters(model)
    if log:
        log(
            f"training {config.strategy.strategy} on {len(train)} rows, {len(labels)} classes; validation: {val_source}; "
            f"backbone {bc.backbone} ({backbone.data_config}); trainable parameters {trainable:,} of {total:,} "
            f"({100 * trainable / total:.2f}%)"
        )

    accelerator = Accelerator(
        cpu=pick_device(config.train.device).type == "cpu", gradient_accumulation_steps=config.train.grad_accum_steps
    )
    model.to(accelerator.device)

    def batches_of(examples: ExampleSet) -> Batches:
        items = backbone.encode(examples.texts)
        return Batches(
            items, [index[y] for y in examples.labels], backbone.collate, [backbone.item_length(i) for i in items]
        )

    data, val_data = batches_of(train), (batches_of(val) if val is not None else None)
    if strategy.caches_features:
        model.eval()

        def features_of(b: Batches, what: str) -> Batches:
            feats = run_batched(
                backbone.forward_features,
                b.items,
                b.collate,
                b.lengths,
                config.train.eval_batch_size,
                accelerator.device,
                progress=f"features ({what})" if log else None,
            )
            return Batches(list(feats), b.labels, torch.stack, [1] * len(feats))

        data = features_of(data, "train")
        val_data = features_of(val_data, "validation") if val_data is not None else None
        module, epochs = model.head, config.train.head_epochs
    else:
        module, epochs = model, config.train.epochs
    patience = config.train.early_stopping_patience
    if patience and strategy.caches_features:
        patience *= HEAD_ONLY_PATIENCE_FACTOR
    result = train_loop(
        module,
        strategy.param_groups(model, config.train),
        data,
        val_data,
        config.train,
        epochs,
        len(labels),
        accelerator,
        log=log,
        desc=config.strategy.strategy,
        patience=patience,
    )
    model.eval()
    best = next((row for row in result.history if row["epoch"] == result.best_epoch), None)
    info = {
        "task": "classification",
        "backbone": backbone.spec(),
        "strategy": config.strategy.strategy,
        "parameters": {"trainable": trainable, "total": total, "trainable_share": round(trainable / total, 6)},
        "training": {
            "history": result.history,
            "best_epoch": result.best_epoch,
            "stopped_early": result.stopped_early,
            "optimizer_steps": result.optimizer_steps,
        },
        "metrics": {"validation": {k[4:]: v for k, v in best.items() if k.startswith("val_")} if best else None},
        "data": {
            "train_rows": len(train),
            "train_fingerprint": train.fingerprint(),
            "train_class_counts": [train.class_counts().get(label, 0) for label in labels],
            "val_rows": len(val) if val is not None else 0,
            "val_source": val_source,
            "val_fingerprint": val.fingerprint() if val is not None else None,
        },
        "seed": config.train.seed,
        "packages": package_versions(),
        "hardware": hardware(),
        "command": command_line(),
        "created": now_iso(),
        "check_texts": (val or train).texts[:CHECK_TEXTS],
    }
    return FitRun(model, labels, accelerator.device, info)
