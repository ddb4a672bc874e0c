"""Rank candidate backbones for a dataset before fine-tuning any of them.

Each candidate's frozen features are extracted once (through the feature cache, so a second ranking or a
later probe costs nothing) and scored two ways: LogME (evidence of a Bayesian linear model, no training; see
logme.py) and a k-fold linear probe (what a trained linear head reaches). Candidates: any backbone transferkit
can build (a registered name, a model directory, a saved run), `random:<backbone>` (the same architecture with
freshly initialised weights: what pretraining is worth), and the classical baseline of the modality (`tfidf`,
`pixels`, `waveform`, `raw`): what any pretrained model is worth.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transferkit.errors import ConfigError
from transferkit.selection.baselines import BASELINES, baseline_features

PROBE_METRIC = {"classification": "accuracy", "multilabel": "micro_f1", "regression": "r2"}


@dataclass
class RankResult:
    rows: list[dict[str, Any]]  # best first
    task: str
    rows_used: int
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "rows_used": self.rows_used, "settings": self.settings, "ranking": self.rows}


def _targets(task, train) -> tuple[np.ndarray, np.ndarray]:
    """(LogME target columns [N, K], probe targets): one-hot / multi-hot / the standardised value."""
    targets = task.targets(train)
    if task.name == "classification":
        ids = np.asarray(targets, dtype=np.int64)
        return np.eye(len(task.labels))[ids], ids
    values = np.asarray(targets, dtype=np.float64)
    if task.name == "regression":
        values = (values - values.mean()) / (values.std() or 1.0)
        return values[:, None], values
    return values, values


def _backbone_features(name: str, train, params: dict[str, Any], log) -> tuple[np.ndarray, int, dict]:
    import torch

    from transferkit.backbones import reinitialise
    from transferkit.config import RunConfig
    from transferkit.training.feature_cache import FeatureSource
    from transferkit.training.fit import _build_backbone, _fit_input, pick_device
    from transferkit.training.loop import Batches

    config = RunConfig.from_dict({**params, "backbone": name.removeprefix("random:")})
    backbone = _build_backbone(config, train, None)
    _fit_input(backbone, train, config, None)
    if name.startswith("random:"):  # drawn with the run's seed (`fit --backbone random:x` uses a fixed one)
        reinitialise(backbone, config.train.seed)
    device = pick_device(config.train.device)
    backbone.to(device)
    items = backbone.encode(train.inputs)
    batches = Batches(items, [0] * len(items), backbone.collate, [backbone.item_length(i) for i in items])
    source = FeatureSource(config, backbone, device, log)
    features = source(batches, f"rank {name}")
    parameters = sum(p.numel() for p in backbone.parameters())
    return torch.stack(list(features.items)).float().cpu().numpy(), parameters, source.stats


def _candidate(name: str, train, task, params, folds: int, seed: int, log) -> dict[str, Any]:
    started = time.perf_counter()
    if name in BASELINES.values():
        if BASELINES[train.modality] != name:
            raise ConfigError(
                f"{name!r} is the baseline for {[m for m, b in BASELINES.items() if b == name][0]} data; this data is "
                f"{train.modality}: use {BASELINES[train.modality]!r}."
            )
        features, parameters, stats, kind = baseline_features(name, train.inputs), 0, {}, "baseline"
    else:
        features, parameters, stats = _backbone_features(name, train, params, log)
        kind = "random init" if name.startswith("random:") else "pretrained"
    extracted = time.perf_counter() - started
    from transferkit.selection.logme import logme_score
    from transferkit.selection.probe import kfold_probe_score

    logme_targets, probe_targets = _targets(task, train)
    logme = logme_score(features, logme_targets)
    probe, spread = kfold_probe_score(features, probe_targets, task.name, folds, seed)
    return {
        "candidate": name,
        "kind": kind,
        "logme": round(logme, 4),
        "probe": round(probe, 4),
        "probe_std": round(spread, 4),
        "dims": int(features.shape[1]),
        "parameters": int(parameters),
        "features_s": round(extracted, 2),
        "from_cache": bool(stats.get("hits")) and not stats.get("computed"),
        "scoring_s": round(time.perf_counter() - started - extracted, 2),
    }


def rank_backbones(
    data: Any,
    backbones: Sequence[str],
    *,
    folds: int = 5,
    max_rows: int | None = 2000,
    by: str = "logme",
    log: Callable[[str], None] | None = None,
    **params: Any,
) -> RankResult:
    """Score every candidate on `data` (at most `max_rows` rows, stratified) and sort them, best first.

    `params` are FineTuner options that shape the features (text_column, max_length, pooling, task, ...).
    `by`: "logme" (default; no training at all) or "probe" (the k-fold linear probe's score).
    """
    from transferkit.api import FineTuner
    from transferkit.config import RunConfig
    from transferkit.data.examples import load_examples
    from transferkit.data.splits import stratified_subsample
    from transferkit.training.tasks import task_for_training

    if by not in ("logme", "probe"):
        raise ConfigError(f"rank by 'logme' or 'probe', got {by!r}.")
    if folds < 2:
        raise ConfigError(f"folds must be >= 2 for a k-fold probe, got {folds}.")
    if not backbones:
        raise ConfigError("No candidates: pass backbones, e.g. minilm,random:minilm,tfidf.")
    config = RunConfig.from_dict(params)
    train = load_examples(data, **FineTuner._load_options(config))
    if max_rows and len(train) > max_rows:
        train = train.subset(stratified_subsample(train, max_rows, config.train.seed))
    task = task_for_training(config, train)
    rows = []
    for name in backbones:
        if log:
            log(f"ranking {name} on {len(train)} rows")
        rows.append(_candidate(name, train, task, params, folds, config.train.seed, log))
    rows.sort(key=lambda row: -row[by])
    settings = {"folds": folds, "by": by, "metric": PROBE_METRIC[task.name], "max_rows": max_rows}
    return RankResult(rows, task.name, len(train), settings)


def _count(parameters: int) -> str:
    return "-" if not parameters else f"{parameters / 1e6:.1f}M" if parameters >= 100_000 else f"{parameters:,}"


def format_rank_table(result: RankResult) -> str:
    metric = result.settings["metric"]
    lines = [
        f"{result.rows_used} rows, {result.task}; LogME: evidence per example (higher is better, no training); "
        f"probe: {result.settings['folds']}-fold linear-probe {metric}",
        f"{'#':>2}  {'candidate':28}{'kind':>12}{'LogME':>9}{'probe ' + metric:>22}{'dims':>7}{'params':>11}{'features':>11}",
    ]
    for i, row in enumerate(result.rows, 1):
        seconds = "cached" if row["from_cache"] else f"{row['features_s']:.1f} s"
        probe = f"{row['probe']:.3f} ± {row['probe_std']:.3f}"
        lines.append(
            f"{i:>2}  {row['candidate'][:28]:28}{row['kind']:>12}{row['logme']:>9.3f}{probe:>22}{row['dims']:>7}"
            f"{_count(row['parameters']):>11}{seconds:>11}"
        )
    return "\n".join(lines)
