"""Experiment tracking (`report_to`): a run's options, per-epoch metrics, evaluations and saved artifact.

TensorBoard gets event files (scalars `<phase>/<metric>` by epoch, the options as text); MLflow gets one run
in the experiment "transferkit" with the options as params, the same metrics, evaluation scores and the
saved run directory as an artifact. MLflow is driven through its client (no global active run), and
defaults to a local SQLite store, so no server is needed; any tracking URI works. Both are optional
packages (`pip install transferkit[tracking]`); asking for one that is missing is a clear error.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from transferkit.errors import ConfigError

EXPERIMENT = "transferkit"
DEFAULT_MLFLOW_URI = "sqlite:///mlflow.db"
MLFLOW_PARAM_CHARS = 6000  # longer values are cut: MLflow refuses them
EVALUATION_KEYS = (  # headline scores of an evaluation, whichever task produced it
    *("accuracy", "balanced_accuracy", "macro_f1", "log_loss", "ece"),
    *("micro_f1", "subset_accuracy", "hamming_loss", "mae", "rmse", "r2"),
)


def _require(module: str, target: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"report_to={target!r} needs the {target} package: pip install 'transferkit[tracking]' (or {target})."
        ) from None


def _scalars(row: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


class _TensorBoard:
    def __init__(self, directory: Path):
        _require("tensorboard", "tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.directory = directory
        self.writer = SummaryWriter(log_dir=str(directory))

    def params(self, params: dict[str, Any]) -> None:
        table = "\n".join(f"| {k} | {v} |" for k, v in sorted(params.items()))
        self.writer.add_text("options", "| option | value |\n|---|---|\n" + table)

    def metrics(self, prefix: str, values: dict[str, float], step: int) -> None:
        for key, value in values.items():
            self.writer.add_scalar(f"{prefix}/{key}", value, step)
        self.writer.flush()

    def artifact(self, directory: Path) -> None:
        self.writer.add_text("artifact", str(Path(directory).resolve()))
        self.writer.flush()

    def finish(self) -> None:
        self.writer.flush()


def _artifacts_beside(uri: str) -> str | None:
    """A SQLite store keeps its artifacts in mlruns/ next to the database file (MLflow's default is the current
    folder, wherever the process happens to run)."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri[len("sqlite:///") :]).resolve().parent / "mlruns").as_uri()


class _MLflow:
    def __init__(self, uri: str, name: str):
        mlflow = _require("mlflow", "mlflow")
        self.client = mlflow.MlflowClient(tracking_uri=uri)
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        experiment_id = (
            experiment.experiment_id
            if experiment
            else self.client.create_experiment(EXPERIMENT, _artifacts_beside(uri))
        )
        self.run_id = self.client.create_run(experiment_id, run_name=name).info.run_id
        self.uri = uri

    def params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        entries = [Param(k, str(v)[:MLFLOW_PARAM_CHARS]) for k, v in sorted(params.items())]
        for start in range(0, len(entries), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=entries[start : start + 100])

    def metrics(self, prefix: str, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        entries = [Metric(f"{prefix}/{k}", v, now, step) for k, v in values.items()]
        if entries:
            self.client.log_batch(self.run_id, metrics=entries)

    def artifact(self, directory: Path) -> None:
        self.client.log_artifacts(self.run_id, str(directory), artifact_path="run")

    def finish(self) -> None:
        self.client.set_terminated(self.run_id)


class Tracking:
    """The trackers `report_to` names, fed the same events; `None` from `from_config` when tracking is off."""

    def __init__(self, backends: list[Any]):
        self.backends = backends

    @classmethod
    def from_config(cls, train_config, name: str | None = None) -> Tracking | None:
        targets = [t.strip() for t in (train_config.report_to or "").split(",") if t.strip()]
        if not targets:
            return None
        name = name or time.strftime("run-%Y%m%d-%H%M%S")
        backends: list[Any] = []
        if "tensorboard" in targets:
            backends.append(_TensorBoard(Path(train_config.tracking_dir or Path("tensorboard") / name)))
        if "mlflow" in targets:
            backends.append(_MLflow(train_config.tracking_uri or DEFAULT_MLFLOW_URI, name))
        return cls(backends)

    def log_params(self, params: dict[str, Any]) -> None:
        for backend in self.backends:
            backend.params(params)

    def log_epoch(self, phase: str, row: dict[str, Any]) -> None:
        values = _scalars({k: v for k, v in row.items() if k != "epoch"})
        for backend in self.backends:
            backend.metrics(phase, values, int(row["epoch"]))

    def log_evaluation(self, name: str, metrics: dict[str, Any]) -> None:
        values = _scalars({k: metrics[k] for k in EVALUATION_KEYS if k in metrics})
        for backend in self.backends:
            backend.metrics(f"eval_{name}", values, 0)

    def log_artifact(self, directory: str | Path) -> None:
        for backend in self.backends:
            backend.artifact(Path(directory))

    def finish(self) -> None:
        for backend in self.backends:
            backend.finish()

    def describe(self) -> dict[str, Any]:
        """What the manifest records: where each tracker wrote."""
        info: dict[str, Any] = {}
        for backend in self.backends:
            if isinstance(backend, _TensorBoard):
                info["tensorboard"] = str(backend.directory.resolve())
            else:
                info["mlflow"] = {"tracking_uri": backend.uri, "run_id": backend.run_id, "experiment": EXPERIMENT}
        return info
