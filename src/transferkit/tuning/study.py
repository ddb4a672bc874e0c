"""`tune`: search a strategy's options with Optuna (TPE sampling, median pruning), then refit and save the best.

Each trial is one FineTuner fit on the same data with the same seed, scored on validation: the given `val`, or
the fit's own stratified hold-out (`val_fraction`). Every epoch's validation score is reported to Optuna, which
stops a trial that trails the median of finished trials at the same epoch. Probe trials train only the head on
backbone features from the feature cache, so after the first trial they cost no backbone time.

The study lives in an Optuna storage: by default SQLite at `<out>/tune.db`, so the same call after an
interruption runs only the trials still missing (finished and pruned trials count; failed ones are redone).
Any Optuna RDB URL (PostgreSQL, MySQL, a shared SQLite file) lets several machines work on one study. At the end
the best options are fit again on the same data with the same seed, and saved to `out` as a normal run whose
transferkit.json has a "tuning" block (see `TuneResult.to_dict`).
"""

from __future__ import annotations

import itertools
import json
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from transferkit.config import RunConfig
from transferkit.errors import ConfigError, TrainingError
from transferkit.tuning.result import TuneResult, trial_row
from transferkit.tuning.run_dir import DB_NAME, check_out, masked_url, save_beside_study, saved_run, study_files
from transferkit.tuning.spaces import Param, search_space

STARTUP_TRIALS = 5  # finished trials before any pruning: the median of fewer says little
WARMUP_STEPS = 1  # epochs a trial always gets before it can be pruned: a first epoch's score says little
HEARTBEAT_S = 60  # a trial whose process dies (no heartbeat for 2 intervals) is marked failed, then redone
# Options that change how a run is carried out, not its scores: they may differ between resumed or shared runs.
NOT_RESULT_OPTIONS = {"device", "eval_batch_size", "checkpoint_steps", "report_to", "tracking_dir", "tracking_uri"}
NOT_RESULT_OPTIONS |= {"check_data", "strict_checks"}


def tune(
    data: Any,
    *,
    val: Any = None,
    trials: int = 30,
    storage: str | None = None,
    study_name: str | None = None,
    out: str | Path | None = None,
    timeout: float | None = None,
    log: Callable[[str], None] | None = None,
    space: dict[str, Param | None] | None = None,
    sampler: Any = None,
    pruner: Any = None,
    **params: Any,
) -> TuneResult:
    """Run (or resume) a study of `trials` fits, refit the best options and save them to `out`.

    `params` are FineTuner options; each one given is pinned (kept out of the search). `space` adds or replaces
    searched options (`None` drops one; see tuning/spaces.py). `storage`: an Optuna RDB URL (default:
    sqlite:///<out>/tune.db; in memory without `out`). `study_name` defaults to the name of `out`. `timeout`:
    seconds after which no new trial starts. `sampler`/`pruner`: Optuna objects replacing the defaults
    (TPESampler seeded with the `seed` option, MedianPruner after 5 finished trials and 1 epoch).
    """
    from transferkit.api import FineTuner, _check_before_training, split_folders
    from transferkit.data.examples import load_examples

    config = _check_request(params, trials, timeout)
    data, val = split_folders(data, val)
    options = FineTuner._load_options(config)
    train_set = load_examples(data, **options)
    val_set = load_examples(val, **options) if val is not None else None
    _check_validation(config, train_set, val_set)
    if config.data.check_data:  # once, before any trial (the trials themselves skip them)
        _check_before_training(config, train_set, val_set, log)
    searched = search_space(config.strategy.strategy, params, space)
    metric, direction = objective_metric(config)
    out = Path(out) if out is not None else None
    url = storage or (f"sqlite:///{(out / DB_NAME).resolve()}" if out is not None else None)
    keep = study_files(url, out)
    if out is not None:
        check_out(out, keep)
        out.mkdir(parents=True, exist_ok=True)
    name = study_name or (out.resolve().name if out is not None else "transferkit-tune")
    settings = _settings(config, params, searched, metric, train_set, val_set)
    objective = _objective(params, searched, train_set, val_set, metric, config)
    with _quiet_optuna():  # our own line per trial replaces optuna's log
        study, rdb = _open_study(url, name, direction, config.train.seed, sampler, pruner, settings)
        _run_trials(study, objective, trials, timeout, metric, log)
        result = _result(study, url, name, metric, direction, searched)
    if rdb is not None:
        rdb.engine.dispose()  # no open connection while the run directory is swapped in place
    _refit(result, params, data, val, out, keep, log)
    result.path = out
    return result


def _refit(result: TuneResult, params, data, val, out: Path | None, keep: list[str], log) -> None:
    """Fit the best options again on the same data (same split, same seed) and save them beside the study."""
    from transferkit.api import FineTuner

    saved = saved_run(out, result, bool(params.get("trust_remote_code"))) if out is not None else None
    if saved is not None:  # rerun after a finished study: the run is there, only the trial table is refreshed
        from transferkit.export.artifact import update_manifest

        result.model, result.refit_value = saved
        update_manifest(out, {"tuning": result.to_dict()})
        if log:
            log(f"the best trial's run is already saved in {out}: nothing to refit")
        return
    if log:
        log(f"refitting the best options (trial {result.best_trial}) on the same data")
    result.model = FineTuner(**params, **result.best_params).fit(data, val=val, verbose=log is not None)
    result.refit_value = validation_score(result.model, result.metric)
    if out is not None:
        save_beside_study(result.model, out, keep, result.to_dict())


@contextmanager
def _quiet_optuna():
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def _check_request(params: dict[str, Any], trials: int, timeout: float | None) -> RunConfig:
    config = RunConfig.from_dict(params)  # wrong options fail here, before any trial
    if config.task.task == "generation":
        raise ConfigError("tune covers classification, multilabel and regression runs, not task='generation'.")
    if not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"trials must be a whole number >= 1 (30 is a good default); got {trials!r}.")
    if timeout is not None and timeout <= 0:
        raise ConfigError(f"timeout must be a number of seconds > 0, or None for no limit; got {timeout!r}.")
    return config


def _check_validation(config: RunConfig, train, val) -> None:
    """Trials are compared on validation scores: refuse a run that would have none."""
    from transferkit.training.fit import MIN_ROWS_FOR_AUTO_VAL

    if val is not None:
        return
    if config.data.val_fraction == 0:
        raise ConfigError(
            "Tuning compares trials on validation data, but no val was given and val_fraction=0 holds nothing out. "
            "Pass val (--val dev.csv), or a val_fraction such as 0.2 to hold out part of the training rows."
        )
    rows = min(len(train), config.data.max_train_rows or len(train))
    if rows < MIN_ROWS_FOR_AUTO_VAL:
        raise ConfigError(
            f"Tuning compares trials on validation data, but {rows} training rows are too few to hold some out "
            f"(at least {MIN_ROWS_FOR_AUTO_VAL}). Pass val (--val dev.csv) with separate validation rows."
        )


def objective_metric(config: RunConfig) -> tuple[str, str]:
    """The validation score trials are ranked by (the one early stopping uses) and whether higher is better."""
    if config.task.task == "regression":
        return "rmse", "minimize"
    if config.task.task == "multilabel":
        return ("macro_f1" if config.train.metric == "macro_f1" else "micro_f1"), "maximize"
    return config.train.metric, "maximize"


def validation_score(model, metric: str) -> float:
    """The validation score of a fitted FineTuner at its best epoch (what the run keeps)."""
    scores = model.run_info_["metrics"]["validation"] or {}
    if metric not in scores:
        raise ConfigError(
            f"The fit has no validation {metric} to tune on (validation: {model.run_info_['data']['val_source']}). "
            "Pass val with separate validation rows, or a larger val_fraction."
        )
    return float(scores[metric])


def _settings(config, params, searched, metric, train, val) -> dict[str, Any]:
    """What makes trials comparable: a resumed or shared study must have been run with the same."""
    pinned = {f"option {k}": v for k, v in params.items() if k not in NOT_RESULT_OPTIONS}
    settings = {
        "strategy": config.strategy.strategy,
        "metric": metric,
        "train data": train.fingerprint(),
        "val data": val.fingerprint() if val is not None else None,
        "space": {name: param.describe() for name, param in searched.items()},
        **pinned,
    }
    return json.loads(json.dumps(settings, default=str))  # as the storage gives it back


def _open_study(url, name, direction, seed, sampler, pruner, settings):
    import optuna

    storage = None
    if url is not None:
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in optuna 5; the API is stable enough
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S)
        except Exception as exc:  # sqlalchemy raises many types: a bad URL, a missing driver, a refused connection
            raise ConfigError(
                f"Cannot open the Optuna storage {masked_url(url)!r}: {str(exc).rstrip('.')}. Pass an RDB URL such as "
                "sqlite:///tune.db or postgresql://user@host/db (its driver installed)."
            ) from None
    pruner = pruner or optuna.pruners.MedianPruner(n_startup_trials=STARTUP_TRIALS, n_warmup_steps=WARMUP_STEPS)
    study = optuna.create_study(
        storage=storage, study_name=name, direction=direction, pruner=pruner, load_if_exists=True
    )
    recorded = study.user_attrs.get("transferkit")
    if recorded is None:
        study.set_user_attr("transferkit", settings)
    elif recorded != settings:
        changed = sorted(k for k in settings.keys() | recorded.keys() if settings.get(k) != recorded.get(k))
        raise ConfigError(
            f"Study {name!r} in {masked_url(url)} was run with other settings ({', '.join(changed)} differ), so its "
            "trials are not comparable with this run. Use the same options and data, or another --study-name "
            "(or --out)."
        )
    # Offset by the trials already there: a resumed study must not draw its first trials' options again.
    study.sampler = sampler or optuna.samplers.TPESampler(seed=seed + len(study.trials))
    return study, storage


def _objective(params, searched, train_set, val_set, metric: str, config: RunConfig):
    """One trial: fit with the sampled options, report each epoch of the final phase, return the best score."""
    import optuna

    from transferkit.api import FineTuner
    from transferkit.strategies import build_strategy

    final_phase = build_strategy(config.strategy.strategy).phases(config)[-1].name  # the phase the run keeps
    fixed = {**params, "check_data": False, "report_to": None}  # checked once before; 30 tracked runs are noise

    def objective(trial) -> float:
        sampled = {name: param.suggest(trial, name) for name, param in searched.items()}
        steps = itertools.count()  # 0-based epochs of the final phase: WARMUP_STEPS=1 always spares the first

        def report(phase: str, row: dict[str, Any]) -> None:
            if phase != final_phase or f"val_{metric}" not in row:
                return
            trial.report(row[f"val_{metric}"], next(steps))
            if trial.should_prune():
                raise optuna.TrialPruned(f"epoch {row['epoch']}: {metric}={row[f'val_{metric}']} trails the median")

        try:
            model = FineTuner(**{**fixed, **sampled}).fit(train_set, val=val_set, verbose=False, on_epoch=report)
        except TrainingError as exc:  # e.g. a diverging learning rate: this trial failed, the study goes on
            trial.set_user_attr("error", str(exc))
            raise
        return validation_score(model, metric)

    return objective


def _run_trials(study, objective, trials: int, timeout: float | None, metric: str, log) -> None:
    """Run the trials still missing (finished and pruned ones count), with a progress bar and a line per trial."""
    import optuna
    from optuna.trial import TrialState
    from tqdm.auto import tqdm

    counted = (TrialState.COMPLETE, TrialState.PRUNED)
    remaining = trials - len(study.get_trials(deepcopy=False, states=counted))
    if log:
        log(f"study {study.study_name!r}: {trials - max(remaining, 0)} of {trials} trials done")
    if remaining <= 0:
        return
    bar = tqdm(total=remaining, desc="tuning", unit="trial", disable=log is None)

    def progress(study, trial) -> None:
        row = trial_row(trial)
        bar.update()
        try:
            best = study.best_trial
            bar.set_postfix_str(f"best {metric}={best.value:.4f} (trial {best.number})")
        except ValueError:  # no finished trial yet
            pass
        if log:
            with tqdm.external_write_mode():
                log(trial_line(row, metric))

    # MaxTrialsCallback stops at `trials` in total, also when other machines add trials to a shared study.
    stop = optuna.study.MaxTrialsCallback(trials, states=counted)
    try:
        study.optimize(
            objective,
            n_trials=remaining,
            timeout=timeout,
            catch=(TrainingError,),
            callbacks=[progress, stop],
            gc_after_trial=True,
        )
    finally:
        bar.close()


def trial_line(row: dict[str, Any], metric: str) -> str:
    value = f" {metric}={row['value']:.4f}" if row["value"] is not None else ""
    options = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row["params"].items())
    error = f" ({row['error']})" if row.get("error") else ""
    return f"trial {row['trial']} {row['state']}{value} after {row['epochs']} epoch(s): {options}{error}"


def _result(study, url, name, metric, direction, searched) -> TuneResult:
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        errors = sorted({t.user_attrs["error"] for t in study.trials if t.user_attrs.get("error")})
        raise TrainingError(
            f"No trial of study {name!r} finished (all were pruned or failed"
            + (f"; errors: {'; '.join(errors[:3])}" if errors else "")
            + "). Widen the search space, or check the data and options with `transferkit fit` first."
        )
    best = study.best_trial
    return TuneResult(
        best_params=dict(best.params),
        best_value=float(best.value),
        trials=[trial_row(t) for t in study.get_trials(deepcopy=False)],
        model=None,
        path=None,
        metric=metric,
        direction=direction,
        best_trial=best.number,
        storage=masked_url(url) if url else None,
        study_name=name,
        space={name: param.describe() for name, param in searched.items()},
    )
