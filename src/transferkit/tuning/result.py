"""What a tuning study found: `TuneResult`, the per-trial table, and the "tuning" block of transferkit.json."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATES = ("complete", "pruned", "failed", "running")


def trial_row(trial) -> dict[str, Any]:
    """One Optuna FrozenTrial as a plain dict (JSON-ready)."""
    state = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}.get(trial.state.name, "running")
    seconds = trial.duration.total_seconds() if trial.duration is not None else None
    row = {
        "trial": trial.number,
        "state": state,
        "value": trial.value,
        "params": dict(trial.params),
        "epochs": len(trial.intermediate_values),  # validated epochs reported (fewer when pruned or stopped early)
        "seconds": round(seconds, 2) if seconds is not None else None,
    }
    if trial.user_attrs.get("error"):
        row["error"] = trial.user_attrs["error"]
    return row


@dataclass
class TuneResult:
    """The outcome of `tune`: the best options, every trial, and the best options refit as a normal run."""

    best_params: dict[str, Any]  # the searched options of the best trial (pinned options are not repeated)
    best_value: float  # its validation score
    trials: list[dict[str, Any]]  # every trial in the study: trial, state, value, params, epochs, seconds
    model: Any  # the refit FineTuner (the best params, fit again on the same data with the same seed)
    path: Path | None  # where the refit run was saved (None without `out`)
    metric: str = "accuracy"  # the validation metric, e.g. accuracy, macro_f1, micro_f1, rmse
    direction: str = "maximize"  # "minimize" for regression (RMSE)
    best_trial: int = 0  # number of the best trial
    storage: str | None = None  # Optuna storage URL (password masked); None: in memory
    study_name: str = ""
    space: dict[str, str] = field(default_factory=dict)  # searched option -> its range, as text
    refit_value: float | None = None  # the refit's validation score (equal to best_value on a deterministic device)

    def counts(self) -> dict[str, int]:
        return {state: sum(row["state"] == state for row in self.trials) for state in STATES}

    def top(self, n: int = 5) -> list[dict[str, Any]]:
        """The n best finished trials, best first."""
        done = [row for row in self.trials if row["state"] == "complete"]
        return sorted(done, key=lambda r: r["value"], reverse=self.direction == "maximize")[:n]

    def to_dict(self) -> dict[str, Any]:
        """The "tuning" block of the run's transferkit.json (and `transferkit tune --json`)."""
        return {
            "storage": self.storage,
            "study_name": self.study_name,
            "metric": self.metric,
            "direction": self.direction,
            "trials": self.counts(),
            "best_trial": self.best_trial,
            "best_value": self.best_value,
            "best_params": self.best_params,
            "refit_value": self.refit_value,
            "space": self.space,
            "table": self.trials,
        }


def format_trials_table(result: TuneResult, n: int = 5) -> str:
    """The top trials as an aligned text table, then the trial counts."""
    rows = result.top(n)
    names = sorted({name for row in rows for name in row["params"]})
    header = ["rank", "trial", result.metric, "epochs", *names]
    lines = [header]
    for rank, row in enumerate(rows, 1):
        values = [_short(row["params"].get(name)) for name in names]
        lines.append([str(rank), str(row["trial"]), f"{row['value']:.4f}", str(row["epochs"]), *values])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.rjust(w) for cell, w in zip(line, widths)) for line in lines]
    counts = ", ".join(f"{v} {k}" for k, v in result.counts().items() if v)
    return "\n".join(
        [*text, f"trials: {counts}; best: trial {result.best_trial} ({result.metric}={result.best_value:.4f})"]
    )


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "-" if value is None else str(value)
