"""The few-shot protocol: how good is a strategy with K labelled examples per class, really?

One small training set lies: the same K gives scores that swing by many points from one draw to the next.
So the protocol draws `repeats` stratified K-per-class training sets with fixed seeds, trains every strategy
on the *same* draws (and the same model seed per draw), scores each on one fixed test set, and reports the
mean, standard deviation and a 95% interval per (K, strategy), plus paired differences between strategies
on the same draws, which cancel most of the draw-to-draw noise. Intervals over draws are Student-t intervals
of the mean (a bootstrap over 5-10 values is too narrow). Probing many draws is cheap: the feature
cache keeps each example's backbone features, so only new examples cost backbone time.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transferkit.data.examples import ExampleSet
from transferkit.errors import ConfigError, DataError

SCORES = ("accuracy", "balanced_accuracy", "macro_f1")


def kshot_draws(examples: ExampleSet, shots: int, repeats: int, seed: int = 0) -> list[list[int]]:
    """`repeats` training sets of `shots` examples per class (all of a class's examples when it has fewer).

    Draw r depends only on (seed, shots, r): every strategy sees the same draws, and rerunning gives them again.
    """
    groups: dict[Any, list[int]] = {}
    for i, label in enumerate(examples.labels or []):
        groups.setdefault(label, []).append(i)
    draws = []
    for repeat in range(repeats):
        rng = random.Random(f"kshot-{seed}-{shots}-{repeat}")  # str seeds are stable across processes
        chosen: list[int] = []
        for label in sorted(groups, key=str):
            members = groups[label]
            chosen.extend(rng.sample(members, min(shots, len(members))))
        draws.append(sorted(chosen))
    return draws


# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom (beyond: the normal's 1.96).
T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


def _interval(values: Sequence[float]) -> list[float]:
    """95% t-interval of the mean over draws. With 5-10 draws a bootstrap interval is too narrow (it ignores
    that the spread itself is estimated from few draws); Student's t accounts for it."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return [round(float(values[0]), 6)] * 2
    quantile = T_975[len(values) - 2] if len(values) - 1 <= len(T_975) else 1.96
    half = quantile * values.std(ddof=1) / np.sqrt(len(values))
    return [round(float(values.mean() - half), 6), round(float(values.mean() + half), 6)]


@dataclass
class KShotResult:
    """Every run of the protocol, and what they add up to (`summary`, `paired`)."""

    runs: list[dict[str, Any]]  # one per (shots, repeat, strategy): scores, train rows, seed, wall time
    shots: list[int]
    strategies: list[str]
    repeats: int
    metric: str = "accuracy"  # the score summarised and compared
    settings: dict[str, Any] = field(default_factory=dict)  # data, test, backbone, seed: what to rerun

    def scores(self, shots: int, strategy: str, metric: str | None = None) -> list[float]:
        """One score per repeat, in repeat order."""
        rows = [r for r in self.runs if r["shots"] == shots and r["strategy"] == strategy]
        return [r[metric or self.metric] for r in sorted(rows, key=lambda r: r["repeat"])]

    def summary(self) -> list[dict[str, Any]]:
        """Mean, standard deviation, min/max and a 95% t-interval of the mean over repeats, per (K, strategy)."""
        rows = []
        for shots, strategy in itertools.product(self.shots, self.strategies):
            values = self.scores(shots, strategy)
            if not values:
                continue
            rows.append(
                {
                    "shots": shots,
                    "strategy": strategy,
                    "repeats": len(values),
                    "mean": round(float(np.mean(values)), 6),
                    "std": round(float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, 6),
                    "min": round(min(values), 6),
                    "max": round(max(values), 6),
                    "ci95": _interval(values),
                }
            )
        return rows

    def paired(self) -> list[dict[str, Any]]:
        """For each K and pair of strategies (a, b): a - b on the same draws, its spread, interval and wins."""
        rows = []
        for shots in self.shots:
            for a, b in itertools.combinations(self.strategies, 2):
                first, second = self.scores(shots, a), self.scores(shots, b)
                if not first or len(first) != len(second):
                    continue
                diffs = np.asarray(first) - np.asarray(second)
                rows.append(
                    {
                        "shots": shots,
                        "a": a,
                        "b": b,
                        "mean_diff": round(float(diffs.mean()), 6),
                        "std_diff": round(float(diffs.std(ddof=1)) if len(diffs) > 1 else 0.0, 6),
                        "ci95": _interval(diffs.tolist()),
                        "a_wins": int((diffs > 0).sum()),
                        "b_wins": int((diffs < 0).sum()),
                        "ties": int((diffs == 0).sum()),
                    }
                )
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": "kshot",
            "metric": self.metric,
            "shots": self.shots,
            "repeats": self.repeats,
            "strategies": self.strategies,
            "settings": self.settings,
            "summary": self.summary(),
            "paired": self.paired(),
            "runs": self.runs,
        }


def _check_request(train: ExampleSet, shots: Sequence[int], repeats: int, strategies: Sequence[str], metric: str):
    from transferkit.strategies import STRATEGIES

    if not shots or any(int(k) < 1 for k in shots):
        raise ConfigError(f"shots must be positive numbers of examples per class, e.g. 8,16,64; got {list(shots)}.")
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1 (10 is a good default for honest intervals); got {repeats}.")
    unknown = [s for s in strategies if s not in STRATEGIES.names()]
    if unknown or not strategies:
        raise ConfigError(f"Unknown strategies {unknown}: choose from {', '.join(STRATEGIES.names())}.")
    if metric not in SCORES:
        raise ConfigError(f"metric must be one of {', '.join(SCORES)}; got {metric!r}.")
    if train.labels is None:
        raise DataError(f"{train.source} has no labels: the k-shot protocol draws K labelled examples per class.")


def _only_classification(task: str) -> None:
    if task != "classification":
        raise ConfigError(
            f"The k-shot protocol draws K examples per class, so it covers classification only; this run is "
            f"task={task!r}. Evaluate {task} models with `transferkit fit ... --test` or "
            "`transferkit evaluate RUN --data test.csv`."
        )


def _one_run(params: dict[str, Any], strategy: str, seed: int, train: ExampleSet, test: ExampleSet) -> dict:
    from transferkit.api import FineTuner

    started = time.perf_counter()
    model = FineTuner(**{**params, "strategy": strategy, "seed": seed}).fit(train, verbose=False)
    metrics = model.evaluate(test)
    return {
        **{k: round(metrics[k], 6) for k in SCORES},
        "train_rows": len(train),
        "wall_time_s": round(time.perf_counter() - started, 2),
    }


def kshot_evaluate(
    data: Any,
    test: Any,
    *,
    shots: Sequence[int] = (8, 16, 64),
    repeats: int = 10,
    strategies: Sequence[str] = ("probe", "lora", "full"),
    metric: str | None = None,
    draw_seed: int = 0,
    log: Callable[[str], None] | None = None,
    **params: Any,
) -> KShotResult:
    """Run the k-shot protocol. `params` are FineTuner options (backbone, epochs, lr, text_column, ...).

    Without `val_fraction`, no validation set is held out of the K shots (every shot trains; fixed epochs).
    Model seeds are `seed + repeat` (seed from params, default 42): the same for every strategy on a draw.
    `metric` (default: the training `metric` option, accuracy) is the score summarised and compared.
    """
    from transferkit.api import FineTuner, _check_before_training
    from transferkit.config import RunConfig
    from transferkit.data.examples import load_examples
    from transferkit.data.labels import check_known_labels

    params = {"val_fraction": 0.0, **params}
    config = RunConfig.from_dict({k: v for k, v in params.items() if k != "strategy"})
    _only_classification(config.task.task)
    options = FineTuner._load_options(config)
    train = load_examples(data, **options)
    test_set = load_examples(test, **options, modality=train.modality)
    shots, strategies, metric = sorted({int(k) for k in shots}), list(strategies), metric or config.train.metric
    _check_request(train, shots, repeats, strategies, metric)
    check_known_labels(test_set, sorted(train.class_counts(), key=str))
    if config.data.check_data:  # once, on the pool every draw comes from and the test set, not once per run
        _check_before_training(config, train, None, log, test=test_set)
        params["check_data"] = False
    smallest = min(train.class_counts().values())
    if log and smallest < max(shots):
        log(f"warning: the smallest class has {smallest} examples; draws with K > {smallest} take all of them")
    result = KShotResult([], shots, strategies, repeats, metric, _settings(data, test, config, draw_seed))
    total = len(shots) * repeats * len(strategies)
    from tqdm.auto import tqdm

    with tqdm(total=total, desc="k-shot runs", unit="run", disable=log is None) as bar:
        for k in shots:
            for repeat, indices in enumerate(kshot_draws(train, k, repeats, draw_seed)):
                seed = config.train.seed + repeat
                for strategy in strategies:
                    row = _one_run(params, strategy, seed, train.subset(indices), test_set)
                    result.runs.append({"shots": k, "repeat": repeat, "strategy": strategy, "seed": seed, **row})
                    bar.set_postfix_str(f"K={k} {strategy} {metric}={row[metric]:.3f}")
                    bar.update()
    return result


def _settings(data: Any, test: Any, config, draw_seed: int) -> dict[str, Any]:
    describe = lambda x: str(x) if isinstance(x, (str, bytes)) or hasattr(x, "__fspath__") else type(x).__name__  # noqa: E731
    return {
        "data": describe(data),
        "test": describe(test),
        "backbone": config.backbone.backbone,
        "epochs": config.train.epochs,
        "seed": config.train.seed,
        "draw_seed": draw_seed,
    }
