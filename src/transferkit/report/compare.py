"""Runs side by side (`transferkit runs compare runs/*`): one flat row per run directory, from its
transferkit.json and eval_*.json files, printable as a table or written as JSON / CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transferkit.errors import ArtifactError

BASE_COLUMNS = {  # row key -> table header
    "run": "run",
    "task": "task",
    "modality": "modality",
    "backbone": "backbone",
    "strategy": "strategy",
    "trainable_params": "trainable",
    "train_rows": "train rows",
    "wall_time_s": "wall s",
    "val_score": "best val",
}
CLASSIFICATION_SCORES = ("accuracy", "macro_f1")
TASK_SCORES = ("micro_f1", "subset_accuracy", "mae", "rmse", "r2")  # multilabel and regression runs
VALIDATION_METRIC = {"multilabel": "micro_f1", "regression": "rmse"}  # what those tasks select epochs by
GENERATION_SCORES = ("exact_match", "token_f1")


def _scores(metrics: dict[str, Any]) -> dict[str, Any]:
    """{metric: value, metric_low, metric_high} from an eval file or the manifest's headline of one."""
    models = metrics.get("models", metrics if "fine-tuned" in metrics else None)
    if isinstance(models, dict):  # generation: the fine-tuned model's scores
        row = models.get("fine-tuned") or next(iter(models.values()), {})
        intervals = {k: row.get(f"{k}_ci95") for k in GENERATION_SCORES}
        names = GENERATION_SCORES
    else:
        row, intervals, names = metrics, metrics.get("ci95") or {}, CLASSIFICATION_SCORES + TASK_SCORES
    scores: dict[str, Any] = {}
    for name in names:
        if isinstance(row.get(name), (int, float)):
            scores[name] = round(float(row[name]), 4)
            bounds = intervals.get(name)
            if isinstance(bounds, (list, tuple)) and len(bounds) == 2:
                scores[f"{name}_low"], scores[f"{name}_high"] = bounds
    return scores


def _best_validation(manifest: dict[str, Any]) -> tuple[str | None, float | None]:
    """The model-selection metric at the best epoch (validation loss for generative runs)."""
    from transferkit.report.sections import training_phases

    metric = ((manifest.get("config") or {}).get("train") or {}).get("metric") or "accuracy"
    if manifest.get("task") in VALIDATION_METRIC and metric != "macro_f1":
        metric = VALIDATION_METRIC[manifest["task"]]
    validation = (manifest.get("metrics") or {}).get("validation")
    if isinstance(validation, dict) and isinstance(validation.get(metric), (int, float)):
        return f"val_{metric}", validation[metric]
    phases = list(training_phases(manifest).values())
    if phases:
        last = phases[-1]
        best = next((r for r in last.get("history") or [] if r.get("epoch") == last.get("best_epoch")), None)
        if best and isinstance(best.get("val_loss"), (int, float)):
            return "val_loss", best["val_loss"]
    return None, None


def run_row(run_dir: Path) -> dict[str, Any]:
    """One run's row; raises ArtifactError for a directory that is not a readable run."""
    from transferkit.export.artifact import read_manifest
    from transferkit.report.html import read_evaluations

    manifest = read_manifest(run_dir)
    backbone = manifest.get("backbone")
    data = manifest.get("data") or {}
    metric, score = _best_validation(manifest)
    row: dict[str, Any] = {
        "run": run_dir.name,
        "path": str(run_dir),
        "task": manifest.get("task", "classification"),
        "modality": manifest.get("modality", "text" if manifest.get("task") == "generation" else None),
        "backbone": backbone.get("name") if isinstance(backbone, dict) else backbone or manifest.get("base_model"),
        "strategy": manifest.get("strategy"),
        "trainable_params": (manifest.get("parameters") or {}).get("trainable"),
        "train_rows": data.get("train_rows", data.get("examples")),
        "wall_time_s": manifest.get("wall_time_s"),
        "val_metric": metric,
        "val_score": score,
    }
    recorded = {k: v for k, v in (manifest.get("metrics") or {}).items() if k != "validation" and isinstance(v, dict)}
    files = {k: v for k, v in read_evaluations(run_dir).items() if "error" not in v}
    for stem, metrics in {**recorded, **files}.items():  # an eval file is the full record of its evaluation
        row.update({f"{stem}_{key}": value for key, value in _scores(metrics).items()})
    return row


def compare_runs(run_dirs: list[Path]) -> list[dict[str, Any]]:
    """A row per run directory, in the order given; a directory that is not a run gets a row with a `note`."""
    rows = []
    for run_dir in map(Path, run_dirs):
        try:
            rows.append(run_row(run_dir))
        except ArtifactError as exc:
            rows.append({"run": run_dir.name, "path": str(run_dir), "note": f"skipped: {exc}"})
    return rows


def _cell(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None:
        return "-"
    if key == "val_score":
        return f"{value:.4f} ({str(row.get('val_metric', ''))[4:]})"
    if isinstance(value, float):
        text = f"{value:.1f}" if key == "wall_time_s" else f"{value:.4f}"
        if f"{key}_low" in row:
            text += f" [{row[f'{key}_low']:.3f}, {row[f'{key}_high']:.3f}]"
        return text
    return f"{value:,}" if isinstance(value, int) else str(value)


def format_compare_table(rows: list[dict[str, Any]]) -> str:
    """Runs as aligned text columns (scores with their 95% interval), then a note per skipped directory."""
    runs = [row for row in rows if "note" not in row]
    columns = dict(BASE_COLUMNS)
    for row in runs:
        for key in row:
            if key not in columns and key not in ("path", "val_metric") and not key.endswith(("_low", "_high")):
                columns[key] = key.replace("_", " ")
    lines = []
    if runs:
        cells = [[_cell(row, key) for key in columns] for row in runs]
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(columns.values())]
        lines.append("  ".join(h.ljust(w) for h, w in zip(columns.values(), widths)).rstrip())
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in cells]
    lines += [f"{row['path']}: {row['note']}" for row in rows if "note" in row]
    return "\n".join(lines)
