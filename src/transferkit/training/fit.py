"""One fit: check data, build backbone + head, run the strategy's phases, and describe the run. What depends on
the task (classification, multilabel, regression: targets, head width, loss, validation) comes from tasks.py."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transferkit.config import RunConfig
from transferkit.data.examples import ExampleSet
from transferkit.data.splits import stratified_split, stratified_subsample
from transferkit.errors import BackboneError, ConfigError, DataError

TaskLike = Any  # a training.tasks task object (imported lazily: it needs torch)

MIN_ROWS_FOR_AUTO_VAL = 20  # below this, holding out validation rows costs more than early stopping gains
CHECK_INPUTS = 16  # validation inputs kept to check exports against the trained model


@dataclass
class FitRun:
    model: Any
    labels: list[Any]
    device: Any
    info: dict[str, Any]
    task: TaskLike = None  # the trained task: labels, thresholds or target scale


def pick_device(device: str = "auto"):
    import torch

    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def make_accelerator(config: RunConfig):
    """accelerate's Accelerator for the configured device and gradient accumulation."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    from transferkit.training.distributed import init_from_env

    init_from_env()  # several processes (--nproc, torchrun): join their group before accelerate looks for it
    cpu = pick_device(config.train.device).type == "cpu"
    # Parts of a backbone that a forward pass skips (e.g. BERT's pooler under mean pooling) get no gradient: DDP
    # must be told, or it waits for them forever.
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    precision = config.train.mixed_precision
    if precision == "fp16" and (cpu or config.train.fsdp):
        raise ConfigError(
            "--mixed-precision fp16 needs a GPU and plain data parallelism (float16 loss scaling); on CPU, or with "
            "--fsdp, use --mixed-precision bf16 (or no)."
        )
    return Accelerator(
        cpu=cpu,
        gradient_accumulation_steps=config.train.grad_accum_steps,
        mixed_precision="no" if config.train.fsdp else precision,  # --fsdp: FSDP's own policy (training/sharding.py)
        kwargs_handlers=[ddp],
    )


def run_fingerprint(config: RunConfig, train, val) -> str:
    """Options + training + validation data (anything with `fingerprint()`): a checkpoint resumes only the same run."""
    key = f"{config.fingerprint()}{train.fingerprint()}{val.fingerprint() if val is not None else ''}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _split_data(
    config: RunConfig, train: ExampleSet, val: ExampleSet | None, log
) -> tuple[ExampleSet, ExampleSet | None, str, dict[str, list[int]]]:
    """(train, val, where val came from, the row indices chosen: `subsample` of the given training rows, then
    `train`/`val` within those), so the manifest records exactly which rows trained and which validated."""
    seed, split = config.train.seed, {}
    if config.data.max_train_rows and len(train) > config.data.max_train_rows:
        split["subsample"] = stratified_subsample(train, config.data.max_train_rows, seed)
        train = train.subset(split["subsample"])
        log and log(f"subsampled training data to {len(train)} rows (max_train_rows={config.data.max_train_rows})")
    if val is not None:
        return train, val, val.source, split
    if config.data.val_fraction > 0 and len(train) >= MIN_ROWS_FOR_AUTO_VAL:
        keep, held = stratified_split(train, config.data.val_fraction, seed)
        if held:
            split.update(train=keep, val=held)
            how = "stratified" if train.task == "classification" else "random"
            return train.subset(keep), train.subset(held), f"{len(held)} rows held out of training ({how})", split
    return train, None, "none", split


def build_model(config: RunConfig, num_classes: int, train: ExampleSet | None = None, module=None, log=None):
    """Backbone (the default for the data's modality unless named) + new head (`num_classes` outputs: classes,
    labels, or 1 for regression) + the strategy's changes.

    `module`: a user `torch.nn.Module` to use as the backbone (its output layer is removed).
    """
    from transferkit.heads import build_head
    from transferkit.model import TransferModel
    from transferkit.strategies import build_strategy

    backbone = _build_backbone(config, train, module)
    if train is not None:
        _fit_input(backbone, train, config, log)
    model = TransferModel(backbone, build_head(config.head, backbone.num_features, num_classes))
    strategy = build_strategy(config.strategy.strategy)
    strategy.setup(model, config)
    return model, strategy


def _build_backbone(config: RunConfig, train: ExampleSet | None, module):
    from transferkit.backbones import DEFAULT_BACKBONES, build_backbone
    from transferkit.backbones.torch_module import ModuleBackbone
    from transferkit.export.artifact import is_run_dir

    bc = config.backbone
    if bc.backbone and is_run_dir(bc.backbone):
        # module: a fresh instance of a custom class
        return backbone_from_run(Path(bc.backbone), module, trust_remote_code=bc.trust_remote_code)
    if module is not None and train is not None and train.modality == "image":
        from transferkit.backbones.torch_module import ImageModuleBackbone

        size = bc.image_size or 224
        return ImageModuleBackbone.from_module(module, bc.output_layer, bc.weights, size, config.data.augment)
    if module is not None:
        return ModuleBackbone.from_module(module, bc.output_layer, bc.weights)
    name = bc.backbone or DEFAULT_BACKBONES[train.modality if train is not None else "text"]
    width = len(train.inputs[0]) if train is not None and train.modality == "vector" else None
    return build_backbone(
        name,
        pooling=bc.pooling,
        max_length=bc.max_length,
        weights=bc.weights,
        augment=config.data.augment,
        clip_seconds=config.data.clip_seconds,
        trim_silence=config.data.trim_silence,
        data_width=width,
        trust_remote_code=bc.trust_remote_code,
    )


def backbone_from_run(directory: Path, module=None, trust_remote_code: bool = False):
    """The backbone of a saved transferkit run (adapters merged), to carry to a new task; its head is dropped."""
    from transferkit.api import load
    from transferkit.strategies.lora import has_adapters, merge_adapters

    loaded = load(directory, device="cpu", module=module, trust_remote_code=trust_remote_code)
    if not hasattr(loaded.model_, "backbone"):
        raise BackboneError(
            f"{str(directory)!r} is a generative run (a language model), not a classifier: it cannot be the backbone "
            "of a classification task. Continue it with --task generation --backbone <its base model> instead."
        )
    backbone = loaded.model_.backbone
    if has_adapters(backbone):
        merge_adapters(backbone)
    backbone.weights_id = None  # trained weights: the feature cache keys them by content
    return backbone.requires_grad_(True)


def _fit_input(backbone, train: ExampleSet, config: RunConfig, log) -> None:
    """Check the backbone takes this kind of data; for vectors, match the width and fit the standardisation."""
    expected = backbone.data_config.get("modality", "text")
    if expected != train.modality:
        raise DataError(
            f"{train.source} holds {train.modality} data but the backbone {config.backbone.backbone!r} takes "
            f"{expected} inputs. Pick a backbone for {train.modality} data (see `transferkit backbones`), or leave "
            "--backbone unset for the default."
        )
    if train.modality != "vector":
        return
    note = backbone.fit_to_data(len(train.inputs[0]), train.columns)
    if note and log:
        log(note)
    if backbone.standardize:
        log and log("features standardised with the statistics saved with the base model (same input width)")
    elif config.data.standardize:
        backbone.fit_standardizer(train.inputs)


@dataclass
class RunData:
    """The checked, split and encoded data of one fit."""

    task: TaskLike
    train: ExampleSet
    val: ExampleSet | None
    val_source: str
    batches: Any  # training Batches
    val_batches: Any  # validation Batches or None
    split: dict[str, list[int]] = field(default_factory=dict)  # row indices chosen by _split_data
    backbone_weights: list[dict[str, Any]] = field(default_factory=list)  # the pretrained weights' files + hashes


def _encode(backbone, examples: ExampleSet, task: TaskLike, training: bool = False):
    from transferkit.training.loop import Batches

    items = backbone.encode(examples.inputs)
    lengths = [backbone.item_length(i) for i in items]
    augmenting = getattr(backbone, "train_collate", None) if training else None
    return Batches(items, task.targets(examples), backbone.collate, lengths, augmenting)


def _log_skipped(train: ExampleSet, val: ExampleSet | None, log) -> None:
    skipped = train.skipped + (val.skipped if val is not None else [])
    if skipped and log:
        log(f"skipped {len(skipped)} unreadable file(s) (--skip-bad-files); first: {skipped[0]}")


def _calibrate(model, run: RunData, config: RunConfig, features, last_phase, device) -> None:
    """Let the task tune its decisions on the final model's validation outputs (multilabel: thresholds).

    When only the head trained last, the backbone's validation features come from `features` (the cache)."""
    from transferkit.training.inference import run_batched

    if run.val_batches is None or not len(run.val_batches.items) or run.task.name != "multilabel":
        return
    module, val = model, run.val_batches
    if last_phase.cached_features and not getattr(model.backbone, "new_layers", list)():
        module, val = model.head, features(run.val_batches, "validation")
    logits = run_batched(module, val.items, val.collate, val.lengths, config.train.eval_batch_size, device)
    run.task.calibrate(logits, list(run.val_batches.labels))


def _describe(config: RunConfig, model, strategy, phases, results, counts, run: RunData, features) -> dict[str, Any]:
    """What transferkit.json records about the run (the artifact adds labels and config)."""
    from transferkit.export.manifest import command_line, hardware, now_iso, package_versions

    last = results[-1]
    best = next((row for row in last.history if row["epoch"] == last.best_epoch), None)
    train, val = run.train, run.val
    counts_by_label = train.class_counts()
    return {
        "task": run.task.name,
        **run.task.state(),
        "modality": train.modality,
        "backbone": model.backbone.spec(),
        "backbone_weights": run.backbone_weights,
        "backbone_input": model.backbone.data_config,
        "strategy": config.strategy.strategy,
        "strategy_info": strategy.artifact_info(model, config),
        "parameters": counts[phases[-1].name],
        "phase_parameters": counts,
        "training": {
            phase.name: {
                "history": r.history,
                "best_epoch": r.best_epoch,
                "stopped_early": r.stopped_early,
                "optimizer_steps": r.optimizer_steps,
                "resumed_from_step": r.resumed_from_step,
                "seconds": r.seconds,
            }
            for phase, r in zip(phases, results)
        },
        "feature_cache": features.stats,
        "metrics": {"validation": {k[4:]: v for k, v in best.items() if k.startswith("val_")} if best else None},
        "data": {
            "train_rows": len(train),
            "train_fingerprint": train.fingerprint(),
            "train_class_counts": [counts_by_label.get(label, 0) for label in run.task.labels],
            "val_rows": len(val) if val is not None else 0,
            "val_source": run.val_source,
            "val_fingerprint": val.fingerprint() if val is not None else None,
            "skipped_files": train.skipped + (val.skipped if val is not None else []),
            "split_indices": run.split,
        },
        "seed": config.train.seed,
        "packages": package_versions(),
        "hardware": hardware(),
        "command": command_line(),
        "created": now_iso(),
        "check_inputs": (val or train).inputs[:CHECK_INPUTS],
    }


def fit_run(
    config: RunConfig,
    train: ExampleSet,
    val: ExampleSet | None,
    log: Callable[[str], None] | None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    module=None,
    on_epoch: Callable[[str, dict], None] | None = None,
) -> FitRun:
    """Check and split the data, build the model, run the strategy's phases, describe the run.

    `on_epoch(phase, row)` receives every epoch's metrics as they come (experiment tracking)."""
    from accelerate.utils import set_seed

    from transferkit.data.labels import check_known_labels
    from transferkit.export.manifest import backbone_weights
    from transferkit.training.checkpoint import Checkpointer
    from transferkit.training.distributed import all_ranks, init_from_env, is_main
    from transferkit.training.feature_cache import FeatureSource
    from transferkit.training.phases import run_phase
    from transferkit.training.tasks import task_for_training

    init_from_env()  # started by torchrun / accelerate launch: join the other processes
    if not is_main():  # several processes (--nproc, torchrun): rank 0 speaks for all of them
        log, on_epoch = None, None
    train, val, val_source, split = _split_data(config, train, val, log)
    task = task_for_training(config, train)  # after the split: regression scales by the training rows only
    if val is not None:
        check_known_labels(val, task.labels)
    set_seed(config.train.seed)
    model, strategy = build_model(config, task.num_outputs, train, module, log)
    _log_skipped(train, val, log)
    run = RunData(
        task,
        train,
        val,
        val_source,
        _encode(model.backbone, train, task, training=True),
        _encode(model.backbone, val, task) if val is not None else None,
        split,
        backbone_weights(model.backbone),
    )
    accelerator = make_accelerator(config)
    model.to(accelerator.device)
    if log and accelerator.num_processes > 1:
        log(
            f"data-parallel over {accelerator.num_processes} processes ({accelerator.distributed_type.value}, "
            f"{accelerator.device.type}): each global batch of {config.train.batch_size} is split between them"
        )
    checkpointer = Checkpointer(checkpoint_dir, run_fingerprint(config, train, val), config.train.checkpoint_steps)
    features = FeatureSource(config, model.backbone, accelerator.device, log)
    phases, results, counts = strategy.phases(config), [], {}
    with all_ranks():  # every process runs these same steps: inference in them is shared and gathered
        for phase in phases:
            started = time.perf_counter()
            result, counts[phase.name] = run_phase(
                phase, model, run, config, accelerator, features, checkpointer, resume, log, on_epoch
            )
            result.seconds = round(time.perf_counter() - started, 3)  # what benchmarks/scaling.py divides rows by
            results.append(result)
            if not phase.cached_features:  # the backbone trained: later features (a head phase after it) are its own
                model.backbone.weights_id = None  # from now on the feature cache hashes the weights' content
                features.invalidate()
        model.eval()
        model.requires_grad_(False)
        _calibrate(model, run, config, features, phases[-1], accelerator.device)
    if log and features.stats["hits"] + features.stats["computed"]:
        log(f"backbone features: {features.stats['computed']} computed, {features.stats['hits']} read from the cache")
    info = _describe(config, model, strategy, phases, results, counts, run, features)
    return FitRun(model, list(task.labels), accelerator.device, info, task)
