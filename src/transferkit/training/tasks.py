"""What the task changes in a fit: how labels become targets, the head's width, the loss, the validation score,
and how the head's outputs become predictions. One class per task; fit.py and api.py dispatch through them.

* classification: one class per example, softmax + cross-entropy (the training loop's defaults).
* multilabel: a set of labels per example, one sigmoid output per label + binary cross-entropy on multi-hot
  targets; after training, one decision threshold per label tuned on the validation set.
* regression: a number per example, one output; targets are standardised with the training mean and standard
  deviation (so the head's initial scale and the learning rates fit any unit), MSE or Huber loss, and
  predictions are mapped back to the original unit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from transferkit.config import RunConfig, TrainConfig
from transferkit.data.examples import ExampleSet
from transferkit.errors import DataError
from transferkit.training.inference import run_batched


def _sort_key(value: Any) -> tuple:
    return (str(type(value)), value)


def _outputs(module: nn.Module, val, train: TrainConfig, device) -> torch.Tensor:
    module.eval()
    return run_batched(module, val.items, val.collate, val.lengths, train.eval_batch_size, device)


class ClassificationTask:
    """Single-label classification: the loop's default objective (cross-entropy) and validator."""

    name = "classification"

    def __init__(self, labels: list[Any]) -> None:
        self.labels = labels

    @classmethod
    def from_training(cls, train: ExampleSet, config: RunConfig) -> ClassificationTask:
        labels = sorted(set(train.labels or []), key=_sort_key)
        if len(labels) < 2:
            raise DataError(
                f"{train.source} has a single class ({labels[0]!r} for all {len(train)} rows); a classifier needs at "
                "least two. Add examples of other classes, or check that --label-column names the right column."
            )
        return cls(labels)

    @property
    def num_outputs(self) -> int:
        return len(self.labels)

    @property
    def output_names(self) -> list[Any]:
        return list(self.labels)

    def describe(self) -> str:
        return f"{len(self.labels)} classes"

    def targets(self, examples: ExampleSet) -> list[int]:
        index = {label: i for i, label in enumerate(self.labels)}
        return [index[y] for y in examples.labels]

    def objective(self):
        return None  # the loop's cross-entropy

    def validator(self, train: TrainConfig):
        return None  # the loop's classification_validator

    def calibrate(self, logits: torch.Tensor, targets: list[Any]) -> None:
        pass

    def decode(self, logits: torch.Tensor) -> np.ndarray:
        """Class probabilities [N, classes]."""
        return torch.softmax(logits.float(), dim=-1).numpy()

    def predict(self, outputs: np.ndarray) -> list[Any]:
        return [self.labels[i] for i in outputs.argmax(axis=1)]

    def state(self) -> dict[str, Any]:
        return {}


class MultilabelTask(ClassificationTask):
    """A set of labels per example: one sigmoid output per label, a threshold per label."""

    name = "multilabel"

    def __init__(self, labels: list[Any], thresholds: list[float] | None = None, source: str = "default") -> None:
        super().__init__(labels)
        self.thresholds = thresholds or [0.5] * len(labels)
        self.threshold_source = source  # "validation" when tuned, "default" (0.5 each) otherwise

    @classmethod
    def from_training(cls, train: ExampleSet, config: RunConfig) -> MultilabelTask:
        labels = sorted({one for row in train.labels or [] for one in row}, key=_sort_key)
        if not labels:
            raise DataError(
                f"{train.source} has no labels at all (every label cell is empty). Check --label-column and "
                f"--label-separator (now {config.task.label_separator!r})."
            )
        return cls(labels)

    def describe(self) -> str:
        return f"{len(self.labels)} labels (multi-label)"

    def targets(self, examples: ExampleSet) -> list[list[float]]:
        index = {label: i for i, label in enumerate(self.labels)}
        rows = []
        for labels in examples.labels:
            row = [0.0] * len(self.labels)
            for one in labels:
                row[index[one]] = 1.0
            rows.append(row)
        return rows

    def objective(self):
        return nn.BCEWithLogitsLoss()

    def validator(self, train: TrainConfig):
        from transferkit.evaluation.multilabel_metrics import multilabel_scores

        def validate(module: nn.Module, val, device) -> tuple[dict, tuple[float, float]]:
            logits = _outputs(module, val, train, device)
            true = torch.tensor(list(val.labels), dtype=torch.float32)
            loss = nn.functional.binary_cross_entropy_with_logits(logits, true).item()
            scores = multilabel_scores(true.numpy() > 0.5, logits.numpy() > 0, true.numpy().any(axis=0))
            row = {"val_loss": round(loss, 6)}
            row.update({f"val_{k}": round(float(scores[k]), 6) for k in ("micro_f1", "macro_f1", "subset_accuracy")})
            chosen = "macro_f1" if train.metric == "macro_f1" else "micro_f1"
            return row, (float(scores[chosen]), -loss)

        return validate

    def calibrate(self, logits: torch.Tensor, targets: list[Any]) -> None:
        """One threshold per label, maximising its F1 on the validation outputs."""
        from transferkit.evaluation.multilabel_metrics import tune_thresholds

        self.thresholds = tune_thresholds(np.asarray(targets) > 0.5, self.decode(logits))
        self.threshold_source = "validation"

    def decode(self, logits: torch.Tensor) -> np.ndarray:
        """Per-label probabilities [N, labels] (independent sigmoids)."""
        return torch.sigmoid(logits.float()).numpy()

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """Multi-hot decisions [N, labels]: each label's probability at or above its threshold."""
        return probabilities >= np.asarray(self.thresholds)[None, :]

    def predict(self, outputs: np.ndarray) -> list[tuple]:
        return [tuple(self.labels[j] for j in np.flatnonzero(row)) for row in self.decide(outputs)]

    def state(self) -> dict[str, Any]:
        return {"thresholds": [round(t, 4) for t in self.thresholds], "threshold_source": self.threshold_source}


class RegressionTask:
    """A number per example: one output, trained on standardised targets and mapped back at prediction."""

    name = "regression"
    labels: list[Any] = []

    def __init__(self, mean: float, std: float, loss: str = "mse", delta: float = 1.0) -> None:
        self.mean, self.std, self.loss, self.delta = float(mean), float(std), loss, float(delta)

    @classmethod
    def from_training(cls, train: ExampleSet, config: RunConfig) -> RegressionTask:
        values = np.asarray(train.labels or [], dtype=float)
        if len(values) < 2 or float(values.std()) == 0.0:
            shown = f"{values[0]:g} for all {len(values)} rows" if len(values) else "no rows"
            raise DataError(
                f"{train.source} has a constant regression target ({shown}): there is nothing to learn. Check that "
                "--label-column names the target column."
            )
        return cls(values.mean(), values.std(), config.task.regression_loss, config.task.huber_delta)

    num_outputs = 1
    output_names = ["value"]

    def describe(self) -> str:
        return f"a numeric target (mean {self.mean:.4g}, std {self.std:.4g}; {self.loss} loss)"

    def targets(self, examples: ExampleSet) -> list[float]:
        return [(float(y) - self.mean) / self.std for y in examples.labels]

    def objective(self):
        loss = nn.HuberLoss(delta=self.delta) if self.loss == "huber" else nn.MSELoss()
        return lambda output, target: loss(output[:, 0].float(), target.float())

    def validator(self, train: TrainConfig):
        from transferkit.evaluation.regression_metrics import regression_scores

        objective = self.objective()

        def validate(module: nn.Module, val, device) -> tuple[dict, tuple[float, float]]:
            outputs = _outputs(module, val, train, device)
            target = torch.tensor(list(val.labels), dtype=torch.float32)
            loss = objective(outputs, target).item()
            scores = regression_scores(target.numpy() * self.std + self.mean, self.decode(outputs))
            row = {"val_loss": round(loss, 6), **{f"val_{k}": round(float(v), 6) for k, v in scores.items()}}
            return row, (-float(scores["rmse"]), -loss)

        return validate

    def calibrate(self, logits: torch.Tensor, targets: list[Any]) -> None:
        pass

    def decode(self, outputs: torch.Tensor) -> np.ndarray:
        """Predictions [N] in the target's own unit."""
        return outputs[:, 0].double().numpy() * self.std + self.mean

    def predict(self, outputs: np.ndarray) -> list[float]:
        return [float(v) for v in outputs]

    def state(self) -> dict[str, Any]:
        return {"target": {"mean": self.mean, "std": self.std, "loss": self.loss, "huber_delta": self.delta}}


TASKS = {"classification": ClassificationTask, "multilabel": MultilabelTask, "regression": RegressionTask}


def task_for_training(config: RunConfig, train: ExampleSet):
    """The task of `config`, with what it learns from the training rows (labels, target scale)."""
    return TASKS[config.task.task].from_training(train, config)


def task_from_manifest(config: RunConfig, manifest: dict[str, Any]):
    """The task of a saved run, as it was at the end of training (labels, thresholds, target scale)."""
    name = manifest.get("task", "classification")
    if name == "regression":
        target = manifest["target"]
        return RegressionTask(target["mean"], target["std"], target.get("loss", "mse"), target.get("huber_delta", 1))
    if name == "multilabel":
        return MultilabelTask(
            manifest["labels"], manifest.get("thresholds"), manifest.get("threshold_source", "default")
        )
    return ClassificationTask(manifest["labels"])
