"""The loaded model as the server sees it: check inputs, run a batch, shape each prediction as JSON, describe it.

Only the public predictor interface is used (read_inputs, predict_proba, predict, classes_, task_, modality_,
run_info_), so any runtime behind `transferkit.load` serves the same way.
"""

from __future__ import annotations

import math
from typing import Any

from transferkit.errors import TransferkitError


def plain(value: Any) -> Any:
    """NumPy scalars (labels, probabilities) as JSON-ready Python values."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


def json_ready(value: Any) -> Any:
    """Recorded metrics as strict JSON: NumPy values as Python ones, NaN/infinity (an undefined score) as None."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    value = plain(value)
    return None if isinstance(value, float) and not math.isfinite(value) else value


class Predictor:
    """Wraps a fitted or loaded FineTuner for the HTTP app."""

    def __init__(self, model: Any, name: str | None = None) -> None:
        if hasattr(model, "generate"):
            raise TransferkitError(
                "This is a generative run (task 'generation'): the server serves classifiers and regressors only. "
                "Use `transferkit generate RUN` (or `transferkit predict RUN`) to generate text."
            )
        self.model = model
        self.task = model.task_.name
        self.modality = model.modality_
        self.labels = [] if self.task == "regression" else [plain(c) for c in model.classes_]
        info = model.run_info_
        self.name = name or str(info.get("backbone", {}).get("name") or "model")
        self.features = (info.get("backbone_input") or {}).get("features") if self.modality == "vector" else None

    def check(self, items: list[Any]) -> list[Any]:
        """The inputs as the model reads them; raises DataError (-> 422) for e.g. an empty text or a NaN feature."""
        return self.model.read_inputs(items)

    def run(self, items: list[Any]) -> list[Any]:
        """One model call: a probability row per input (classification, multilabel) or a number (regression)."""
        if self.task == "regression":
            return [float(v) for v in self.model.predict(items)]
        return list(self.model.predict_proba(items))

    def format(self, rows: list[Any], top_k: int) -> list[dict[str, Any]]:
        """Each input's prediction: the label and the top-k probabilities; the chosen label set; or the value."""
        if self.task == "regression":
            return [{"value": float(v)} for v in rows]
        import numpy as np

        probabilities = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(self.labels))
        k = min(top_k, len(self.labels))
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
        if self.task == "multilabel":
            chosen = self.model.task_.predict(probabilities)
            return [
                {
                    "labels": [plain(label) for label in labels],
                    "top": [self._ranked(row, j) for j in top],
                }
                for row, top, labels in zip(probabilities, order, chosen)
            ]
        return [
            {
                "label": self.labels[top[0]],
                "probability": round(float(row[top[0]]), 6),
                "top": [self._ranked(row, j) for j in top],
            }
            for row, top in zip(probabilities, order)
        ]

    def _ranked(self, row: Any, j: int) -> dict[str, Any]:
        return {"label": self.labels[j], "probability": round(float(row[j]), 6)}

    def metadata(self) -> dict[str, Any]:
        """What /metadata returns: the model's identity, labels and recorded metrics (no paths, no data)."""
        from transferkit import __version__

        info = self.model.run_info_
        backbone = info.get("backbone") or {}
        described = {
            "name": self.name,
            "task": self.task,
            "modality": self.modality,
            "labels": self.labels,
            "backbone": backbone.get("name"),
            "strategy": info.get("strategy"),
            "metrics": json_ready(info.get("metrics") or {}),
            "created": info.get("created"),
            "version": {
                "transferkit": __version__,
                "trained_with": (info.get("packages") or {}).get("transferkit"),
                "artifact_format": info.get("format_version"),
            },
        }
        if self.task == "multilabel":
            described["thresholds"] = [round(float(t), 4) for t in self.model.task_.thresholds]
        if self.features is not None:
            described["features"] = self.features
        return described
