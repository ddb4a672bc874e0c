"""FineTuner: the scikit-learn style facade (fit / predict / predict_proba / score / evaluate / save)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from transferkit.config import RunConfig
from transferkit.data.examples import ExampleSet, load_examples
from transferkit.data.labels import check_known_labels
from transferkit.errors import ConfigError, NotFittedError, UnsupportedTaskError


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def as_inputs(inputs: Any, modality: str, **options: Any) -> list[Any]:
    """Inputs to predict: one text/image, a list, a Series, a DataFrame/file/Dataset (input column).

    For an image model, strings are image paths, and a folder means every image in it.
    """
    from transferkit.data.audio import AUDIO_SUFFIXES, is_audio_object
    from transferkit.data.images import IMAGE_SUFFIXES, is_image_object

    options = {"need_labels": False, "modality": modality, **options}
    if modality == "vector":
        return _vector_inputs(inputs, options)
    one = is_audio_object(inputs) if modality == "audio" else is_image_object(inputs)
    if isinstance(inputs, str) or one:
        inputs = [inputs]
    if isinstance(inputs, Path) and inputs.is_dir():
        suffixes = AUDIO_SUFFIXES if modality == "audio" else IMAGE_SUFFIXES
        inputs = sorted(str(p) for p in inputs.iterdir() if p.suffix.lower() in suffixes)
    if isinstance(inputs, Path) or hasattr(inputs, "columns") or hasattr(inputs, "features"):
        return load_examples(inputs, **options).inputs
    return load_examples(list(inputs), **options).inputs


def _vector_inputs(inputs: Any, options: dict[str, Any]) -> list[Any]:
    """Rows to predict: one row (1-D), a matrix, a list of rows, a table or a .npy/.npz/CSV/Parquet file."""
    import numpy as np

    from transferkit.data.vectors import is_vector_row

    if is_vector_row(inputs) and not is_vector_row(inputs[0]):
        inputs = np.asarray(inputs, dtype=np.float32)[None, :]  # one example
    if isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], np.ndarray):
        inputs = list(inputs)
    return load_examples(Path(inputs) if isinstance(inputs, str) else inputs, **options).inputs


def _module_argument(params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """A torch.nn.Module passed as `backbone` (or `module=` for a saved run of a custom class): kept out of the
    config, which records its class name instead."""
    module = params.pop("module", None)
    backbone = params.get("backbone")
    if hasattr(backbone, "named_modules") and hasattr(backbone, "state_dict"):
        module = backbone
        kind = type(module)
        params["backbone"] = f"module:{kind.__module__}.{kind.__qualname__}"
    return module, params


def split_folders(data: Any, val: Any) -> tuple[Any, Any]:
    """An image folder holding train/ (and val/): train on train/, validate on val/ unless val is given."""
    if isinstance(data, (str, Path)) and Path(data).is_dir() and (Path(data) / "train").is_dir():
        root = Path(data)
        named_val = next((root / n for n in ("val", "valid", "validation") if (root / n).is_dir()), None)
        return root / "train", val if val is not None else named_val
    return data, val


class FineTuner:
    """Fine-tune a pretrained backbone with a new head on your labels.

    Parameters are any keys of `RunConfig` (see `transferkit fit --help`), e.g. `backbone="minilm"`,
    `strategy="full"`, `epochs=3`, `lr=5e-5`, `pooling="mean"`, `text_column="review"`.
    """

    def __new__(cls, *args: Any, **params: Any):
        if cls is FineTuner and params.get("task") == "generation":  # prompt -> response pairs: a causal LM
            from transferkit.generation.tuner import GenerativeFineTuner

            return super().__new__(GenerativeFineTuner)
        return super().__new__(cls)

    def __init__(self, backbone: str | None = None, strategy: str = "full", **params: Any) -> None:
        self.params = {"backbone": backbone, "strategy": strategy, **params}

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return dict(self.params)

    def set_params(self, **params: Any) -> FineTuner:
        self.params.update(params)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"FineTuner({args})"

    # -- training ---------------------------------------------------------------------------------
    def fit(
        self,
        data: Any,
        labels: Sequence[Any] | None = None,
        *,
        text: str | None = None,
        label: str | None = None,
        val: Any = None,
        val_labels: Sequence[Any] | None = None,
        verbose: bool = True,
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
        on_epoch: Callable[[str, dict], None] | None = None,
    ) -> FineTuner:
        """Train on `data` (path, DataFrame, datasets.Dataset, or texts + `labels`); returns self.

        With `checkpoint_dir`, training state is checkpointed every epoch (and every `checkpoint_steps`
        optimizer steps); `resume=True` continues from there and ends with the same weights as an
        uninterrupted run. `on_epoch(phase, row)` receives each epoch's history row as it is written
        (hyperparameter tuning reports validation scores through it), after any experiment tracking.
        """
        from transferkit.training.fit import fit_run

        module, params = _module_argument(dict(self.params))
        if text is not None:
            params["text_column"] = text
        if label is not None:
            params["label_column"] = label
        config = RunConfig.from_dict(params)
        if config.task.task == "generation":
            raise ConfigError(
                'task="generation" must be given when the model is created: FineTuner(task="generation").'
            )
        load_options = self._load_options(config)
        data, val = split_folders(data, val)
        train_set = load_examples(data, labels, **load_options)
        val_set = load_examples(val, val_labels, **load_options) if val is not None else None
        if config.strategy.strategy == "auto":  # pilots each strategy, trains what fits the budgets
            from transferkit.strategies.auto import fit_auto

            fit_auto(
                self,
                params,
                train_set,
                val_set,
                verbose=verbose,
                checkpoint_dir=checkpoint_dir,
                resume=resume,
                on_epoch=on_epoch,
                module=module,
            )
            self.run_info_["data"]["sources"] = {"train": _file_source(data), "val": _file_source(val)}
            return self
        started = time.perf_counter()
        log = _stderr if verbose else None
        checks = _check_before_training(config, train_set, val_set, log) if config.data.check_data else None
        from transferkit.training.distributed import is_main

        tracking = _start_tracking(config, checkpoint_dir) if is_main() else None  # rank 0 reports for all
        hooks = [hook for hook in (tracking.log_epoch if tracking else None, on_epoch) if hook]
        each_epoch = (lambda phase, row: [hook(phase, row) for hook in hooks]) if hooks else None
        run = fit_run(config, train_set, val_set, log, checkpoint_dir, resume, module, on_epoch=each_epoch)
        self.tracking_ = tracking
        self.config_ = config
        self.model_ = run.model
        self.labels_ = run.labels
        self.task_ = run.task
        self.device_ = run.device
        self.run_info_ = {**run.info, "wall_time_s": round(time.perf_counter() - started, 2)}
        self.run_info_["data"]["sources"] = {"train": _file_source(data), "val": _file_source(val)}
        self.run_info_["data_checks"] = checks
        if tracking:
            self.run_info_["tracking"] = tracking.describe()
            tracking.finish()
        return self

    @staticmethod
    def _load_options(config: RunConfig, **overrides: Any) -> dict[str, Any]:
        d = config.data
        options = {
            "text": d.text_column,
            "label": d.label_column,
            "image": d.image_column,
            "audio": d.audio_column,
            "max_audio_seconds": d.max_audio_seconds,
            "skip_bad_files": d.skip_bad_files,
            "allow_outside_paths": d.allow_outside_paths,
            "features": [c.strip() for c in d.feature_columns.split(",")] if d.feature_columns else None,
            "task": config.task.task,
            "label_separator": config.task.label_separator,
        }
        return {**options, **{k: v for k, v in overrides.items() if v is not None}}

    @property
    def modality_(self) -> str:
        return self.run_info_.get("modality", "text")

    # -- prediction -------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(
                "This FineTuner is not fitted yet: call fit(data) first, or load a saved run with transferkit.load(dir)."
            )

    def read_inputs(self, inputs: Any, *, text: str | None = None) -> list[Any]:
        """Inputs to predict, read like the training data: texts, image paths/objects or feature rows."""
        self._check_fitted()
        names = getattr(self.model_.backbone, "feature_names", None)  # vectors from a table: the training columns
        options = self._load_options(self.config_, text=text, features=names)
        return as_inputs(inputs, self.modality_, **options)

    def predict_proba(self, inputs: Any, *, text: str | None = None, batch_size: int | None = None):
        """Class probabilities [N, num_classes] (columns in the order of `classes_`); for a multi-label model, each
        label's own (sigmoid) probability [N, num_labels]. Regression models have no probabilities: use predict."""
        self._check_fitted()
        if self.task_.name == "regression":
            raise UnsupportedTaskError(
                "A regression model predicts numbers, not class probabilities: call predict(inputs) instead."
            )
        return self._probabilities(self.read_inputs(inputs, text=text), batch_size)

    def _probabilities(self, inputs: list[Any], batch_size: int | None = None, cached: bool = False):
        """The task's decoded outputs: probabilities (classification, multilabel) or values (regression)."""
        return self.task_.decode(self._outputs(inputs, batch_size, cached))

    def _outputs(self, inputs: list[Any], batch_size: int | None = None, cached: bool = False):
        """The head's raw outputs [N, outputs]; with `cached` and a frozen backbone (probe), features come from the
        feature cache."""
        import torch

        from transferkit.training.inference import run_batched

        backbone = self.model_.backbone
        items = backbone.encode(inputs)
        lengths = [backbone.item_length(i) for i in items]
        size = batch_size or self.config_.train.eval_batch_size
        if getattr(self, "runner_", None) is not None:  # an ONNX Runtime session (load(runtime="onnx")) on CPU
            return run_batched(self.runner_, items, backbone.collate, lengths, size, torch.device("cpu"))
        self.model_.eval()
        if cached and self.config_.strategy.strategy == "probe" and self.config_.train.feature_cache:
            from transferkit.training.feature_cache import FeatureSource
            from transferkit.training.loop import Batches

            features = FeatureSource(self.config_, backbone, self.device_, None)(
                Batches(items, [0] * len(items), backbone.collate, lengths), "evaluation"
            )
            with torch.inference_mode():
                return self.model_.head(torch.stack(list(features.items)).to(self.device_)).float().cpu()
        return run_batched(self.model_, items, backbone.collate, lengths, size, self.device_)

    def predict(self, inputs: Any, *, text: str | None = None) -> list[Any]:
        """Predicted labels, in the type of the training labels (strings stay strings, ints stay ints); for a
        multi-label model a tuple of labels per input (each label at or above its tuned threshold); for a
        regression model a float per input."""
        self._check_fitted()
        return self.task_.predict(self._probabilities(self.read_inputs(inputs, text=text)))

    def predict_file(
        self,
        data: str | Path,
        output: str | Path,
        *,
        chunk_rows: int = 10_000,
        text: str | None = None,
        progress: bool = True,
    ) -> int:
        """Predict every row of a .csv/.tsv/.jsonl/.parquet file into `output` (.csv/.tsv/.parquet) `chunk_rows` rows
        at a time, so memory stays bounded whatever the file size; the output appears only when complete. The
        columns are those of `transferkit predict --output`; returns the number of rows written."""
        from transferkit.predictions import predict_file

        return predict_file(self, data, output, chunk_rows=chunk_rows, text=text, progress=progress)

    @property
    def classes_(self) -> list[Any]:
        """The classes (classification) or the labels (multilabel), in the order of predict_proba's columns."""
        self._check_fitted()
        if self.task_.name == "regression":
            raise UnsupportedTaskError("A regression model has no classes_: it predicts numbers (see predict).")
        return list(self.labels_)

    # -- evaluation -------------------------------------------------------------------------------
    def evaluate(
        self, data: Any, labels: Sequence[Any] | None = None, *, text: str | None = None, label: str | None = None
    ) -> dict[str, Any]:
        """Every headline metric with a 95% bootstrap interval over the examples, a baseline and the worst examples.

        Classification: accuracy, balanced accuracy, macro/weighted F1, log loss, calibration error and reliability
        bins, per-class precision/recall/F1, confusion matrix, the majority-class baseline. Multilabel: micro/macro
        F1, subset accuracy, Hamming loss, per-label precision/recall/F1/threshold. Regression: MAE, RMSE, R², the
        training-mean baseline, the largest errors."""
        self._check_fitted()
        names = getattr(self.model_.backbone, "feature_names", None)
        options = self._load_options(self.config_, text=text, label=label, features=names)
        examples = load_examples(data, labels, modality=self.modality_, **options)
        check_known_labels(examples, self.labels_)
        outputs = self._probabilities(examples.inputs, cached=True)  # eval sets recur: cached features
        if self.task_.name == "multilabel":
            from transferkit.evaluation.multilabel_metrics import evaluate_multilabel

            separator = self.config_.task.label_separator
            metrics = evaluate_multilabel(examples, outputs, self.task_, self.modality_, separator)
        elif self.task_.name == "regression":
            from transferkit.evaluation.regression_metrics import evaluate_regression

            metrics = evaluate_regression(examples, outputs, self.task_.mean, self.modality_)
        else:
            from transferkit.evaluation.metrics import evaluate_classification

            counts = self.run_info_.get("data", {}).get("train_class_counts")
            metrics = evaluate_classification(examples, outputs, self.labels_, self.modality_, counts)
        metrics["data_fingerprint"] = examples.fingerprint()
        if getattr(self, "tracking_", None):
            self.tracking_.log_evaluation(Path(data).stem if isinstance(data, (str, Path)) else "data", metrics)
        return metrics

    def score(self, data: Any, labels: Sequence[Any] | None = None, **kwargs: Any) -> float:
        """scikit-learn's `score`: accuracy (classification), subset accuracy (multilabel) or R² (regression)."""
        self._check_fitted()
        key = {"multilabel": "subset_accuracy", "regression": "r2"}.get(self.task_.name, "accuracy")
        return self.evaluate(data, labels, **kwargs)[key]

    # -- persistence ------------------------------------------------------------------------------
    def save(self, directory: str | Path, overwrite: bool = False, check_inputs: list[Any] | None = None) -> Path:
        """Write the artifact directory (atomically); see transferkit.export.artifact for the layout."""
        from transferkit.export.artifact import save_artifact
        from transferkit.export.native import export_native
        from transferkit.report.html import refresh_report
        from transferkit.strategies import build_strategy
        from transferkit.strategies.lora import has_adapters, merge_adapters

        self._check_fitted()
        if self.config_.lora.merge_adapters and has_adapters(self.model_.backbone):
            merge_adapters(self.model_.backbone)  # in place, so this model and the saved one stay identical
        self.run_info_["strategy_info"] = build_strategy(self.config_.strategy.strategy).artifact_info(
            self.model_, self.config_
        )
        check = check_inputs or self.run_info_.get("check_inputs") or ["a short example", "another, longer example"]
        manifest = {
            **{k: v for k, v in self.run_info_.items() if k != "check_inputs"},
            "trust_remote_code": self.config_.backbone.trust_remote_code,  # load asks for it again (see `load`)
            "labels": list(self.labels_),
            "config": self.config_.to_dict(),
        }

        def exports(model, tmp: Path) -> dict[str, Any]:
            if has_adapters(model.backbone):  # also in peft's own format: adapter_config.json + weights
                model.backbone.model.save_pretrained(tmp / "adapter")
            return export_native(model, tmp, self.task_.output_names, check, self.task_)

        saved = save_artifact(directory, self.model_, manifest, overwrite, native_export=exports)
        refresh_report(saved)
        if getattr(self, "tracking_", None):
            self.tracking_.log_artifact(saved)
        return saved


def _check_before_training(
    config: RunConfig, train: ExampleSet, val: ExampleSet | None, log, test: ExampleSet | None = None
) -> dict[str, Any]:
    """The data checks on train (and val, test): warnings and errors printed, the report recorded in the manifest;
    with `strict_checks`, errors (overlap included) stop the run before any compute is spent."""
    from transferkit.data.checks import check_data

    report = check_data(train, val, test, strict=config.data.strict_checks, **_token_counting(config, train))
    for problem in report.problems:
        if log and problem.severity != "info":
            log(f"data check ({problem.severity}): {problem.message}")
    if config.data.strict_checks:
        report.raise_if_errors()
    return report.to_dict()


def _token_counting(config: RunConfig, train: ExampleSet) -> dict[str, Any]:
    """For text: the backbone's tokenizer (only it loads) and max length, so the checks report truncated texts."""
    from transferkit.backbones import DEFAULT_BACKBONES
    from transferkit.backbones.text_tokenizer import token_counter
    from transferkit.errors import TransferkitError

    if train.modality != "text":
        return {}
    try:
        found = token_counter(config.backbone.backbone or DEFAULT_BACKBONES["text"], config.backbone.trust_remote_code)
    except TransferkitError:
        return {}  # building the backbone names the problem, with its own message
    if found is None:
        return {}
    count_tokens, max_length = found
    return {"count_tokens": count_tokens, "max_length": config.backbone.max_length or max_length}


def _start_tracking(config: RunConfig, checkpoint_dir: str | Path | None):
    """The trackers of `report_to` (None when off), named after the run directory, with the options logged."""
    from transferkit.training.tracking import Tracking

    name = Path(checkpoint_dir).resolve().parent.name if checkpoint_dir else None  # runs/x/.checkpoints -> x
    tracking = Tracking.from_config(config.train, name)
    if tracking:
        tracking.log_params(config.to_flat_dict())
    return tracking


def _file_source(data: Any) -> str | None:
    """The absolute path of data given as a file or folder (what `transferkit rerun` reads again), else None."""
    return str(Path(data).resolve()) if isinstance(data, (str, Path)) and Path(data).exists() else None


def load(
    directory: str | Path,
    device: str = "auto",
    module: Any = None,
    runtime: str = "torch",
    trust_remote_code: bool = False,
) -> FineTuner:
    """Load a saved run directory; predictions are identical to the model that was saved.

    `module`: for a run whose backbone was a custom `torch.nn.Module` class, a fresh instance of that class
    (transferkit never unpickles code, so it cannot rebuild such a class from files alone).
    `runtime`: "torch", or "onnx" / "onnx-int8" to predict through ONNX Runtime on CPU with the run's exported
    model.onnx / model.int8.onnx (`transferkit export DIR --format onnx`); preprocessing and decoding are shared.
    `trust_remote_code`: needed again for a run trained with it (its backbone runs Python code of its own).
    """
    from transferkit.backbones import rebuild_backbone
    from transferkit.backbones.safety import check_run_trusted
    from transferkit.export.artifact import BACKBONE_DIR, load_weights, read_manifest
    from transferkit.export.onnx_runtime import check_runtime, runner_for
    from transferkit.heads import build_head
    from transferkit.model import TransferModel
    from transferkit.strategies import build_strategy
    from transferkit.training.fit import pick_device
    from transferkit.training.tasks import task_from_manifest

    directory = Path(directory)
    manifest = read_manifest(directory)
    check_run_trusted(directory, manifest, trust_remote_code)
    runner = runner_for(directory, check_runtime(runtime), manifest)  # before the weights: a missing file fails fast
    if manifest.get("task") == "generation":
        from transferkit.generation.tuner import GenerativeFineTuner

        return GenerativeFineTuner.load_run(directory, manifest, device, trust_remote_code)
    config = RunConfig.from_dict(manifest["config"])
    labels = manifest["labels"]
    task = task_from_manifest(config, manifest)
    backbone = rebuild_backbone(directory / BACKBONE_DIR, manifest["backbone"], module, trust_remote_code)
    model = TransferModel(backbone, build_head(config.head, backbone.num_features, task.num_outputs))
    if not manifest.get("strategy_info", {}).get("merged", False):
        build_strategy(config.strategy.strategy).setup(model, config)  # e.g. re-create unmerged adapters
    load_weights(model, directory)
    model.requires_grad_(False)
    tuner = FineTuner(**config.to_flat_dict())
    tuner.config_ = config
    tuner.labels_ = labels
    tuner.task_ = task
    tuner.device_ = pick_device("cpu" if runner is not None else device)  # ONNX: PyTorch only preprocesses
    tuner.model_ = model.to(tuner.device_).eval()
    tuner.run_info_ = {k: v for k, v in manifest.items() if k not in ("labels", "config")}
    tuner.runtime_, tuner.runner_ = runtime, runner
    return tuner
