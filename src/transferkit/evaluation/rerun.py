"""`transferkit rerun runs/x`: train the recorded run again from its manifest and check the numbers match.

transferkit.json records the configuration (seeds included), the training/validation files and their content
fingerprints, and every evaluation written into the run. A rerun reads the same files, refuses quietly
changed data (fingerprints differ), retrains, and compares validation and test metrics within a tolerance.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transferkit.errors import ArtifactError

COMPARED = (
    *("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", "log_loss", "loss"),
    *("micro_f1", "subset_accuracy", "mae", "rmse", "r2"),  # multilabel and regression runs
)


@dataclass
class RerunCheck:
    what: str  # e.g. "validation accuracy", "test.csv macro_f1", "training data fingerprint"
    recorded: Any
    rerun: Any
    match: bool


@dataclass
class RerunReport:
    run_dir: str
    checks: list[RerunCheck] = field(default_factory=list)
    saved_to: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.match for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run_dir,
            "ok": self.ok,
            "saved_to": self.saved_to,
            "checks": [c.__dict__ for c in self.checks],
        }

    def format(self) -> str:
        lines = [f"{'check':44}{'recorded':>16}{'rerun':>16}  match"]
        for c in self.checks:
            shown = [f"{v:.6f}" if isinstance(v, float) else str(v) for v in (c.recorded, c.rerun)]
            lines.append(f"{c.what[:44]:44}{shown[0][:16]:>16}{shown[1][:16]:>16}  {'yes' if c.match else 'NO'}")
        verdict = "the rerun reproduces the recorded run" if self.ok else "the rerun does NOT match the recorded run"
        return "\n".join([*lines, "", verdict])


def _sources(manifest: dict[str, Any], run_dir: Path) -> tuple[str, str | None]:
    sources = (manifest.get("data") or {}).get("sources") or {}
    train, val = sources.get("train"), sources.get("val")
    if not train:
        raise ArtifactError(
            f"{run_dir} was trained from in-memory data (a DataFrame or lists), so there is no file to read again. "
            "Rerun needs runs trained from files or folders (transferkit fit --data FILE)."
        )
    missing = [p for p in (train, val) if p and not Path(p).exists()]
    if missing:
        raise ArtifactError(f"The data of {run_dir} is gone: {', '.join(missing)}. Restore it to rerun the run.")
    return train, val


def _close(a: Any, b: Any, tolerance: float) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(float(a) - float(b)) <= tolerance
    return a == b


def rerun(
    run_dir: str | Path,
    out: str | Path | None = None,
    tolerance: float = 1e-6,
    log: Callable[[str], None] | None = None,
    trust_remote_code: bool = False,
) -> RerunReport:
    """Retrain `run_dir` from its manifest; compare data fingerprints, validation and recorded test metrics.

    `trust_remote_code`: needed again for a run trained with it (retraining runs its backbone's own code)."""
    from transferkit.api import FineTuner
    from transferkit.backbones.safety import check_run_trusted
    from transferkit.config import RunConfig
    from transferkit.export.artifact import read_manifest

    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    check_run_trusted(run_dir, manifest, trust_remote_code)
    if manifest.get("task", "classification") == "generation":
        raise ArtifactError(
            f"{run_dir} is a generation run; rerun checks classification, multilabel and regression runs."
        )
    if str((manifest.get("backbone") or {}).get("source", "")).startswith("module"):
        raise ArtifactError(f"{run_dir} used a user torch module as backbone; rerun cannot rebuild it from files.")
    train, val = _sources(manifest, run_dir)
    config = RunConfig.from_dict(manifest["config"])
    model = FineTuner(**config.to_flat_dict()).fit(train, val=val, verbose=log is not None)
    report = RerunReport(str(run_dir))
    recorded_data, new_data = manifest["data"], model.run_info_["data"]
    for key in ("train_fingerprint", "val_fingerprint"):
        recorded, again = recorded_data.get(key), new_data.get(key)
        report.checks.append(RerunCheck(key.replace("_", " "), recorded, again, recorded == again))
    recorded_val = (manifest.get("metrics") or {}).get("validation") or {}
    new_val = model.run_info_["metrics"].get("validation") or {}
    for key in COMPARED:
        if key in recorded_val:
            value = new_val.get(key)
            report.checks.append(
                RerunCheck(f"validation {key}", recorded_val[key], value, _close(recorded_val[key], value, tolerance))
            )
    for path in sorted(run_dir.glob("eval_*.json")):
        report.checks.extend(_compare_eval(model, json.loads(path.read_text()), tolerance))
    if out is not None:
        report.saved_to = str(model.save(out))
    return report


def _compare_eval(model, recorded: dict[str, Any], tolerance: float) -> list[RerunCheck]:
    source = recorded.get("data")
    if recorded.get("task") == "generation" or not source or not Path(source).exists():
        return []
    metrics = model.evaluate(source)
    name = Path(source).name
    checks = []
    if recorded.get("data_fingerprint"):
        same = recorded["data_fingerprint"] == metrics["data_fingerprint"]
        checks.append(
            RerunCheck(f"{name} fingerprint", recorded["data_fingerprint"], metrics["data_fingerprint"], same)
        )
    for key in COMPARED:
        if key in recorded:
            checks.append(
                RerunCheck(f"{name} {key}", recorded[key], metrics[key], _close(recorded[key], metrics[key], tolerance))
            )
    return checks
