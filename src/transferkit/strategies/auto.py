"""`strategy="auto"`: measure each candidate strategy on this machine, then train what fits the budgets.

Candidates, cheapest first: probe, lp-ft, lora, full; with few rows per class (classification, at most
FEW_SHOT_PER_CLASS on average) contrastive comes second, the likeliest winner there (see `candidates`). For each,
a pilot (a real 2-epoch fit on a stratified subset of at most `PILOT_ROWS` training rows, no validation, no feature
cache, no data checks) measures:

- `setup_s`: fit start -> first phase start (backbone build, encoding; does not grow with rows),
- per phase, `epoch_s`: its second epoch (one pass over the pilot rows), and `extraction_s`: its first epoch
  minus its second (for probe and lp-ft's probe phase: the one backbone forward pass that fills the cache),
- `budget_mb`: the process's peak resident memory (psutil, sampled every 20 ms), or when training on CUDA
  torch's peak allocation (see PeakMemory). Memory grows with the batch, not with rows, so the pilot's peak
  is the full run's estimate (the encoded data, which does grow with rows, is small next to the model).

Full-run estimate, with scale = (training + validation rows) / pilot rows (validation passes are counted
as training passes: an overestimate, the safe side of a budget):

    estimate_s = setup_s + sum over phases (extraction_s * scale + epoch_s * scale * phase epochs)

Then probe trains for real, always (the floor: auto always returns a model, even when the probe alone is
over a budget, and says so). Each later candidate trains only when its pilot fits in the time left, its
estimate fits in what is left after the pilot, and its peak fits the memory budget; otherwise it is skipped
with the reason. Every candidate validates on the same rows (without `--val`, at least 200 held out where the data
allows: `auto_choice.auto_val_fraction`); a later candidate replaces the kept one by the rule in `auto_choice`
(classification by accuracy: a lead beyond the paired standard error, else the lower log loss; otherwise a strictly
higher validation score). Without a time budget, every candidate that fits the memory budget trains. In the few-shot
regime (contrastive among the candidates) with rows auto held out itself, the chosen strategy then trains again on
every row, held-out ones included, when the time left allows (`_refit_on_every_row`: a quarter of a few rows is
worth training on). The decision, the measured numbers and the reasons go to run_info_["auto"].

With no rows to validate on (no `val`, and val_fraction 0 or fewer than MIN_ROWS_FOR_AUTO_VAL rows: 8 examples of
each of 2 classes), nothing can be compared: few-shot single-label classification trains `contrastive` on every row
(the few-shot choice benchmarks/fewshot.py supports) and says so; any other task is refused with what to pass. The
same holds for few-shot classification when fewer than MIN_VAL_ROWS_PER_CLASS rows per class could be held out (see
`_too_few_to_compare` for the measurement behind it).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from transferkit.config import RunConfig, parse_bytes, parse_duration
from transferkit.data.examples import ExampleSet
from transferkit.errors import ConfigError
from transferkit.strategies.auto_choice import Candidate, auto_val_fraction, challenger_wins

CANDIDATES = ("probe", "lp-ft", "lora", "full")
FEW_SHOT_PER_CLASS = 64  # at most this many training rows per class (on average): contrastive joins the candidates
# few-shot classification: fewer held-out rows per class than this (on average) and candidates are not compared
MIN_VAL_ROWS_PER_CLASS = 5
PILOT_ROWS = 64  # enough batches to time an epoch; few enough that 4 pilots cost little of a budget
PILOT_EPOCHS = 2  # the first epoch carries warm-up and feature extraction; the second times a plain pass
MB = 1e6


class PeakMemory:
    """Peak memory while the block runs: this process's resident memory (a background thread samples it every
    20 ms), its rise above the level at start, and on CUDA torch's peak allocation.

    `budget_mb` is what a memory budget is compared with: the GPU's peak allocation when training on CUDA (the
    scarce memory there), else the whole process's peak resident memory (what a container limit or the OOM killer
    sees; libraries included). The rise above the start understates later runs, whose allocations reuse memory
    freed by earlier ones, so it is recorded but not compared."""

    def __init__(self, cuda: bool = False, interval: float = 0.02) -> None:
        import psutil

        self.process, self.interval, self.cuda = psutil.Process(), interval, cuda
        self.baseline = self.peak = self.process.memory_info().rss
        self.cuda_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakMemory:
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)
        if self.cuda:
            import torch

            self.cuda_mb = torch.cuda.max_memory_allocated() / MB

    def record(self) -> dict[str, float]:
        numbers = {"peak_mb": round(self.peak / MB, 1), "rise_mb": round((self.peak - self.baseline) / MB, 1)}
        if self.cuda:
            numbers["cuda_peak_mb"] = round(self.cuda_mb, 1)
        return {**numbers, "budget_mb": numbers["cuda_peak_mb" if self.cuda else "peak_mb"]}


def candidates(config: RunConfig, train: ExampleSet) -> tuple[str, ...]:
    """CANDIDATES, with contrastive second when a single-label classification task has at most FEW_SHOT_PER_CLASS
    training rows per class on average. Few-shot is where pairs pay: k examples of a class give ~k^2/2 pairs of signal
    where the classification loss has k; SetFit's gains over fine-tuning are at 8-64 per class and shrink with more
    data (Tunstall et al., 2022). It comes right after the probe, not in cost order (its `contrastive_epochs` passes
    cost more per row than lp-ft's few epochs): with few rows it is the likeliest winner, so a tight budget should
    reach it first. Above the threshold fine-tuning has signal enough, and the pair passes would cost the most."""
    if config.task.task != "classification" or not train.labels:
        return CANDIDATES
    if len(train) / len(set(train.labels)) > FEW_SHOT_PER_CLASS:
        return CANDIDATES
    return (CANDIDATES[0], "contrastive", *CANDIDATES[1:])


def _warm_imports() -> None:
    """Import the heavy libraries every fit needs before the first pilot, so their one-time import (seconds,
    hundreds of MB) is not read as the probe's setup time and memory. The budget clock still counts it."""
    import importlib

    for name in ("torch", "accelerate", "transformers", "peft", "transferkit.training.loop"):
        try:
            importlib.import_module(name)
        except ImportError:  # optional for some modalities: the fit that needs it says so
            pass


def _validation_rows(params: dict[str, Any], train: ExampleSet, val: ExampleSet | None):
    """(params with auto's validation share, the validation rows every candidate will score on): the rows a single
    fit with those params holds out (same split, same seed), or `val` as given."""
    from transferkit.training.fit import _split_data

    config = RunConfig.from_dict(params)
    if val is None:
        rows = min(len(train), config.data.max_train_rows or len(train))
        params = {**params, "val_fraction": auto_val_fraction(config.data.val_fraction, rows)}
        config = RunConfig.from_dict(params)
    return params, _split_data(config, train, val, None)[1]


def _evidence(strategy: str, fitted: Any, val: ExampleSet | None) -> Candidate:
    """The candidate's validation score and, for single-label classification, its per-row evidence on `val`."""
    score = _validation_score(fitted.run_info_, fitted.config_)
    if val is None or fitted.task_.name != "classification":
        return Candidate(strategy, score)
    import numpy as np

    probs = fitted._probabilities(val.inputs, cached=True)
    return Candidate.from_probabilities(strategy, score, probs, np.asarray(fitted.task_.targets(val)))


def _validation_score(info: dict[str, Any], config: RunConfig) -> float | None:
    """The run's best validation score, higher is better (regression: minus RMSE)."""
    scores = (info.get("metrics") or {}).get("validation") or {}
    if info.get("task") == "regression":
        return -scores["rmse"] if "rmse" in scores else None
    if info.get("task") == "multilabel":
        return scores.get("macro_f1" if config.train.metric == "macro_f1" else "micro_f1")
    return scores.get(config.train.metric)


def _on_cuda(config: RunConfig) -> bool:
    from transferkit.training.fit import pick_device

    return pick_device(config.train.device).type == "cuda"


def pilot(params: dict[str, Any], strategy: str, train: ExampleSet, rows: int) -> dict[str, Any]:
    """A short real fit of `strategy` on a stratified subset; returns its timings, peak memory and the
    estimate for `rows` rows (see the module docstring for the formula)."""
    from transferkit.data.splits import stratified_subsample
    from transferkit.strategies import build_strategy
    from transferkit.training.fit import fit_run

    shortened = {"epochs": PILOT_EPOCHS, "head_epochs": PILOT_EPOCHS, "contrastive_epochs": PILOT_EPOCHS}
    shortened["early_stopping_patience"] = None
    quiet = {"val_fraction": 0.0, "max_train_rows": None, "check_data": False, "feature_cache": False}
    config = RunConfig.from_dict({**params, **shortened, **quiet, "strategy": strategy, "report_to": None})
    subset = train.subset(stratified_subsample(train, min(PILOT_ROWS, len(train)), config.train.seed))
    marks: list[tuple[float, str]] = []  # (time, phase) of each phase start and epoch end
    phase_names = [p.name for p in build_strategy(strategy).phases(config)]

    def log(message: str) -> None:
        name = message.split(":", 1)[0]
        if name in phase_names and not any(n == name for _, n in marks):
            marks.append((time.perf_counter(), name))

    started = time.perf_counter()
    with PeakMemory(_on_cuda(config)) as memory:
        fit_run(config, subset, None, log, on_epoch=lambda phase, row: marks.append((time.perf_counter(), phase)))
    wall = time.perf_counter() - started
    full_config = RunConfig.from_dict({**params, "strategy": strategy})
    scale = rows / len(subset)
    estimate, phases = 0.0, []
    for phase in build_strategy(strategy).phases(full_config):
        times = [t for t, name in marks if name == phase.name]  # phase start, then one per epoch
        if len(times) > 1:
            epoch_s = times[-1] - times[-2]
            extraction_s = max(times[1] - times[0] - epoch_s, 0.0)
        else:  # a phase with no epoch (contrastive's centroid head): its setup runs until the next mark or the end
            epoch_s = 0.0
            extraction_s = min([t for t, _ in marks if t > times[0]], default=started + wall) - times[0]
        estimate += extraction_s * scale + epoch_s * scale * phase.epochs
        phases.append({"phase": phase.name, "epoch_s": round(epoch_s, 4), "extraction_s": round(extraction_s, 4)})
    setup_s = marks[0][0] - started
    return {
        "strategy": strategy,
        "pilot_rows": len(subset),
        "pilot_s": round(wall, 3),
        "setup_s": round(setup_s, 3),
        "phases": phases,
        "s_per_example_epoch": round(sum(p["epoch_s"] for p in phases) / len(subset), 6),
        **memory.record(),
        "estimate_s": round(setup_s + estimate, 3),
    }


def _skip_reason(measured: dict[str, Any], left: float | None, memory_budget: int | None) -> str | None:
    name, peak, estimate = measured["strategy"], measured["budget_mb"], measured["estimate_s"]
    if memory_budget is not None and peak * MB > memory_budget:
        return f"{name} skipped: measured peak {peak:.0f} MB > memory budget {memory_budget / MB:.0f} MB"
    if left is not None and estimate > left:
        return f"{name} skipped: estimated {estimate:.1f} s > {max(left, 0):.1f} s left"
    return None


def _check_request(config: RunConfig, train: ExampleSet, val: ExampleSet | None, module: Any) -> None:
    from transferkit.training.distributed import launched
    from transferkit.training.fit import MIN_ROWS_FOR_AUTO_VAL

    if launched():  # each process would time its own pilots and could train other candidates than the rest
        raise ConfigError(
            'strategy="auto" decides from this process\'s own clock and memory: run it in one process (drop --nproc), '
            "then train the strategy it chose with --nproc N."
        )
    if module is not None:
        raise ConfigError(
            'strategy="auto" trains several copies of the backbone; with a torch.nn.Module backbone (trained in '
            "place) pick one strategy instead."
        )
    if _too_few_to_compare(config, train, val) and "contrastive" not in candidates(config, train):
        raise ConfigError(
            'strategy="auto" compares candidates on validation data: pass val=... (--val), or keep val_fraction > 0 '
            f"with at least {MIN_ROWS_FOR_AUTO_VAL} training rows (got val_fraction={config.data.val_fraction}, "
            f"{len(train)} rows). Only few-shot single-label classification trains without (it gets contrastive)."
        )


def _too_few_to_compare(config: RunConfig, train: ExampleSet, val: ExampleSet | None) -> str | None:
    """Why candidates cannot be compared (None when they can): no `val` given, and no rows to hold out (val_fraction
    0, or fewer than MIN_ROWS_FOR_AUTO_VAL rows), or, for few-shot classification, fewer than MIN_VAL_ROWS_PER_CLASS
    per class. Measured at 8 per class (benchmarks/fewshot.py, 5 seeds): holding out a quarter of AG News' 32 rows
    and Emotion's 48 and comparing on the 8 and 12 held out, auto kept lp-ft every time, 8 and 11 points below
    contrastive trained on every row; on so few rows only huge leads count, and otherwise log loss decides."""
    from transferkit.training.fit import MIN_ROWS_FOR_AUTO_VAL

    if val is not None:
        return None
    if config.data.val_fraction == 0 or len(train) < MIN_ROWS_FOR_AUTO_VAL:
        return f"no validation rows ({len(train)} training rows, val_fraction={config.data.val_fraction}, no val)"
    if "contrastive" not in candidates(config, train):
        return None
    rows = min(len(train), config.data.max_train_rows or len(train))
    held_out, classes = int(auto_val_fraction(config.data.val_fraction, rows) * rows), len(set(train.labels))
    if held_out < MIN_VAL_ROWS_PER_CLASS * classes:
        return (
            f"too few rows to compare candidates on: about {held_out} of {len(train)} could be held out, fewer than "
            f"{MIN_VAL_ROWS_PER_CLASS} per class"
        )
    return None


def _fit_few_shot_without_comparing(
    tuner: Any, params: dict[str, Any], train: ExampleSet, fit_options: dict, why: str, started: float
) -> Any:
    """Few-shot classification with nothing (worth) validating on: auto trains `contrastive` on every row, the few-shot
    choice the benchmarks support (benchmarks/fewshot.py, 8 per class, 5 seeds: the most accurate of probe, lp-ft and
    contrastive on CR, AG News and Emotion, within noise of them on SST-2; a few-shot fit takes seconds, so no
    pilot), and says why in run_info_["auto"]."""
    config = RunConfig.from_dict(params)
    run_started = time.perf_counter()
    fitted = _fit_on_every_row(params, "contrastive", train, fit_options, "contrastive")  # folder as when comparing
    reason = f"{why}: trained contrastive on every row, the measured few-shot choice"
    run = {"strategy": "contrastive", "seconds": round(time.perf_counter() - run_started, 3)}
    return _adopt(tuner, fitted, fitted, config, [], [run], "contrastive", 0, [reason], started)


def _fit_on_every_row(
    params: dict[str, Any], strategy: str, train: ExampleSet, fit_options: dict, folder: str, **overrides: Any
) -> Any:
    """`strategy` fitted on every training row (no validation split), checkpointing to `folder` under auto's own
    checkpoint directory when there is one."""
    from transferkit.api import FineTuner

    where = fit_options["checkpoint_dir"]
    fit_options = {**fit_options, "checkpoint_dir": Path(where) / folder if where else None}
    return FineTuner(**{**params, "strategy": strategy, "val_fraction": 0.0, **overrides}).fit(train, **fit_options)


def _refit_on_every_row(
    params: dict[str, Any],
    chosen: str,
    train: ExampleSet,
    rows: int,
    held_out: int,
    estimate: float,
    left: float | None,
    options: dict[str, Any],
) -> tuple[Any, str]:
    """(`chosen` trained again on all `rows` rows it uses of `train` (after max_train_rows), held-out ones included,
    with no validation; or None when the time left cannot pay for its `estimate` (the pilot's, for every epoch on
    every row), and the reason). For few-shot classification only: there the rows held out to compare are a quarter
    of a few, and training on them pays. Measured on SST-2 at 64 per class (4 seeds, benchmarks/fewshot.py rows):
    contrastive on 96 rows with its early stopping on the other 32 reached 0.741 on test, on the same 96 rows without
    validation 0.763, on all 128 rows 0.788. Without validation every strategy trains its configured epochs, as the
    few-shot benchmark measures them all."""
    if left is not None and estimate > left:
        return None, (
            f"kept {chosen} as trained on {rows - held_out} rows: training it on all {rows} would take about "
            f"{estimate:.1f} s > {max(left, 0):.1f} s left"
        )
    fitted = _fit_on_every_row(params, chosen, train, options, f"{chosen}-every-row", check_data=False)
    return fitted, (
        f"trained {chosen} again on all {rows} rows, the {held_out} held out to compare included, without "
        "validation (few-shot: every row counts); its validation scores above are from the comparison"
    )


def _adopt(tuner, fitted, first, config, pilots, runs, chosen, val_rows, reasons, started) -> Any:
    """The chosen candidate's fitted state goes to `tuner`, with auto's record of how it chose."""
    for name in ("config_", "model_", "labels_", "task_", "device_", "run_info_", "tracking_"):
        setattr(tuner, name, getattr(fitted, name))
    tuner.run_info_["data_checks"] = first.run_info_.get("data_checks")
    tuner.run_info_["auto"] = {
        "budget_s": parse_duration(config.strategy.time_budget),
        "memory_budget_bytes": parse_bytes(config.strategy.memory_budget),
        "pilots": pilots,
        "runs": runs,
        "chosen": chosen,
        "val_rows": val_rows,
        "reasons": reasons,
        "refit_rows": None,  # few-shot: the rows the choice trained on again, held-out ones included
        "wall_s": round(time.perf_counter() - started, 3),
    }
    tuner.run_info_["wall_time_s"] = tuner.run_info_["auto"]["wall_s"]
    return tuner


def fit_auto(
    tuner: Any,
    params: dict[str, Any],
    train: ExampleSet,
    val: ExampleSet | None,
    *,
    verbose: bool = True,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    on_epoch: Any = None,
    module: Any = None,
) -> Any:
    """Pilot, choose and train (see the module docstring); the best candidate's fitted state goes to `tuner`."""
    from transferkit.api import FineTuner, _stderr

    started = time.perf_counter()
    config = RunConfig.from_dict(params)
    _check_request(config, train, val, module)
    fit_options = {"verbose": verbose, "checkpoint_dir": checkpoint_dir, "resume": resume, "on_epoch": on_epoch}
    why = _too_few_to_compare(config, train, val)
    if why:
        fitted = _fit_few_shot_without_comparing(tuner, params, train, fit_options, why, started)
        verbose and _stderr(f"auto: {fitted.run_info_['auto']['reasons'][0]}")
        return fitted
    params, shared_val = _validation_rows(params, train, val)
    budget = parse_duration(config.strategy.time_budget)
    memory_budget = parse_bytes(config.strategy.memory_budget)
    capped = min(len(train), config.data.max_train_rows or len(train))
    rows = capped + (len(val) if val is not None else 0)
    log = _stderr if verbose else None
    _warm_imports()
    pilots, runs, reasons, best, first = [], [], [], None, None
    for strategy in candidates(config, train):
        left = None if budget is None else budget - (time.perf_counter() - started)
        if strategy != "probe" and left is not None and pilots and pilots[-1]["pilot_s"] > left:
            reasons.append(f"{strategy} skipped: {left:.1f} s left, less than a pilot ({pilots[-1]['pilot_s']:.1f} s)")
            continue
        measured = pilot(params, strategy, train, rows)
        pilots.append(measured)
        left = None if budget is None else budget - (time.perf_counter() - started)
        measured["left_s"] = None if left is None else round(left, 3)  # at the decision: the estimate must fit it
        reason = _skip_reason(measured, left, memory_budget)
        if reason and strategy != "probe":
            reasons.append(reason)
            log and log(f"auto: {reason}")
            continue
        if reason:
            reasons.append(f"probe run anyway as the floor (auto always returns a model): {reason.split(': ', 1)[1]}")
        log and log(f"auto: training {strategy} (estimated {measured['estimate_s']:.1f} s)")
        run_started = time.perf_counter()
        sub_dir = Path(checkpoint_dir) / strategy if checkpoint_dir else None
        candidate_params = {**params, "strategy": strategy, "check_data": first is None and config.data.check_data}
        with PeakMemory(_on_cuda(config)) as memory:
            fitted = FineTuner(**candidate_params).fit(
                train, val=val, verbose=verbose, checkpoint_dir=sub_dir, resume=resume, on_epoch=on_epoch
            )
        first = first or fitted
        seconds = round(time.perf_counter() - run_started, 3)
        evidence = _evidence(strategy, fitted, shared_val)
        runs.append({"strategy": strategy, "seconds": seconds, **memory.record(), **evidence.record()})
        if best is None:
            best = (evidence, fitted)
            continue
        wins, why = challenger_wins(evidence, best[0], config.train.metric)
        reasons.append(why)
        if wins:
            best = (evidence, fitted)
    chosen, fitted = best[0].strategy, best[1]
    reasons.append(f"chose {chosen} among {[r['strategy'] for r in runs]}")
    refit = None
    if val is None and shared_val is not None and "contrastive" in candidates(config, train):
        estimate = next(p["estimate_s"] for p in pilots if p["strategy"] == chosen)  # every epoch, every row
        left = None if budget is None else budget - (time.perf_counter() - started)
        refit, why = _refit_on_every_row(params, chosen, train, capped, len(shared_val), estimate, left, fit_options)
        fitted = refit or fitted
        reasons.append(why)
    val_rows = len(shared_val) if shared_val is not None else 0
    _adopt(tuner, fitted, first, config, pilots, runs, chosen, val_rows, reasons, started)
    tuner.run_info_["auto"]["refit_rows"] = refit.run_info_["data"]["train_rows"] if refit else None
    log and log(f"auto: chose {chosen} ({'; '.join(reasons)})")
    return tuner
