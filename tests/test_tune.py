"""`tune`: Optuna trials over a strategy's space, pruning, a resumable study, the best run refit and saved."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import TINY, toy_sentiment
from transferkit.data.examples import load_examples
from transferkit.errors import ArtifactError, ConfigError
from transferkit.tuning import SPACES, Param, tune
from transferkit.tuning.result import format_trials_table
from transferkit.tuning.spaces import search_space

# Probe on the tiny model: after the first trial every feature comes from the cache, so a trial takes ~0.5 s.
PROBE = {**TINY, "strategy": "probe", "head_epochs": 4}


@pytest.fixture
def sets():
    return load_examples(*toy_sentiment(120, seed=0)), load_examples(*toy_sentiment(40, seed=1))


def _study(out, name=None):
    import optuna

    return optuna.load_study(study_name=name or out.name, storage=f"sqlite:///{out / 'tune.db'}")


def test_pinned_options_are_not_searched_and_spaces_cover_every_strategy():
    from transferkit.strategies import STRATEGIES

    assert set(SPACES) == set(STRATEGIES.names())
    space = search_space("lora", {"epochs": 3, "lora_r": 8})
    assert "epochs" not in space and "lora_r" not in space and "lora_lr" in space
    assert "head_lr" not in search_space("full", {}, {"head_lr": None})  # a space entry can be dropped
    with pytest.raises(ConfigError, match="nothing is left to tune"):
        search_space("probe", dict.fromkeys(SPACES["probe"], 1))
    with pytest.raises(ConfigError, match="Did you mean"):
        search_space("probe", {}, {"probe_lrr": Param("float", 1e-3, 1e-1, log=True)})


def test_trials_run_and_the_best_is_refit_saved_and_reloads_identically(tmp_path, sets):
    import transferkit as tk

    train, val = sets
    out = tmp_path / "tuned"
    result = tune(train, val=val, trials=3, out=out, head="linear", **PROBE)
    assert result.counts()["complete"] == 3 and len(result.trials) == 3
    for row in result.trials:  # head_epochs and head were passed: pinned, so no trial searched them
        assert set(row["params"]) == {"probe_lr", "head_dropout", "weight_decay"}
    best = max(result.trials, key=lambda r: r["value"])
    assert (result.best_trial, result.best_value, result.best_params) == (best["trial"], best["value"], best["params"])
    assert result.refit_value == result.best_value  # same data, same seed, CPU: the refit is the best trial again
    assert result.model.config_.train.probe_lr == result.best_params["probe_lr"]
    assert (out / "tune.db").is_file() and result.path == out  # the study survived saving the run in its place
    loaded = tk.load(out)
    texts = toy_sentiment(10, seed=5)[0]
    np.testing.assert_array_equal(loaded.predict_proba(texts), result.model.predict_proba(texts))
    tuning = json.loads((out / "transferkit.json").read_text())["tuning"]
    assert tuning["trials"] == {"complete": 3, "pruned": 0, "failed": 0, "running": 0}
    assert tuning["best_params"] == result.best_params and len(tuning["table"]) == 3
    assert tuning["storage"].endswith("tune.db") and tuning["study_name"] == "tuned"
    assert f"best: trial {result.best_trial}" in format_trials_table(result)


def test_the_study_resumes_with_only_the_missing_trials(tmp_path, sets):
    train, val = sets
    out, lines = tmp_path / "resumed", []
    tune(train, val=val, trials=2, out=out, **PROBE)
    assert len(_study(out).trials) == 2
    result = tune(train, val=val, trials=4, out=out, log=lines.append, **PROBE)
    assert any("2 of 4 trials done" in line for line in lines)
    assert len(_study(out).trials) == 4 and len(result.trials) == 4
    assert len({json.dumps(r["params"], sort_keys=True) for r in result.trials}) == 4  # no draw repeated
    lines.clear()
    again = tune(train, val=val, trials=4, out=out, log=lines.append, **PROBE)  # finished: no trial, no refit
    assert len(_study(out).trials) == 4 and any("nothing to refit" in line for line in lines)
    assert again.best_params == result.best_params
    with pytest.raises(ConfigError, match="other settings"):  # other pinned options: trials not comparable
        tune(train, val=val, trials=5, out=out, **{**PROBE, "head_epochs": 6})


def test_a_trial_that_trails_the_median_is_pruned(tmp_path, sets):
    import optuna

    train, val = sets
    out = tmp_path / "pruned"
    out.mkdir()
    study = optuna.create_study(storage=f"sqlite:///{out / 'tune.db'}", study_name="pruned", direction="maximize")
    study.enqueue_trial({"lr": 5e-3, "head_lr": 2e-2})  # learns the toy task (val accuracy 0.95 at epoch 2)
    study.enqueue_trial({"lr": 1e-7, "head_lr": 1e-7})  # deliberately useless rates: stays at its start (0.425)
    rates = {"lr": Param("float", 1e-7, 1e-2, log=True), "head_lr": Param("float", 1e-7, 1e-1, log=True)}
    space = {**rates, "weight_decay": None, "warmup_ratio": None}  # epochs: pinned by TINY
    pruner = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=1)
    params = {k: v for k, v in TINY.items() if k not in rates}
    result = tune(train, val=val, trials=2, out=out, space=space, pruner=pruner, strategy="full", **params)
    good, bad = result.trials
    assert good["state"] == "complete" and bad["state"] == "pruned"
    assert bad["epochs"] == 2  # the first epoch is always run (warm-up); pruned at the second
    assert result.best_params == {"lr": 5e-3, "head_lr": 2e-2}


def test_no_validation_data_or_a_foreign_out_dir_is_refused(tmp_path, sets):
    train, _ = sets
    with pytest.raises(ConfigError, match="val_fraction=0"):
        tune(train, trials=2, out=tmp_path / "x", **PROBE)  # TINY sets val_fraction=0
    small = load_examples(*toy_sentiment(12, seed=0))
    with pytest.raises(ConfigError, match="too few"):
        tune(small, trials=2, out=tmp_path / "x", **{**PROBE, "val_fraction": 0.2})
    assert not (tmp_path / "x").exists()  # refused before anything was written
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("not a study")
    with pytest.raises(ArtifactError, match="not a tuning study"):  # never saved over foreign files
        tune(train, val=train, trials=2, out=tmp_path / "other", **PROBE)


def _tune_parser() -> argparse.ArgumentParser:
    from transferkit.cli import build_parser

    return build_parser()


def test_cli_tune_end_to_end(tmp_path, toy_csv, capsys):
    train_csv, test_csv = toy_csv
    out = tmp_path / "cli"
    flags = ["--backbone", "tiny-bert", "--strategy", "probe", "--head-epochs", "4", "--val-fraction", "0.25"]
    args = _tune_parser().parse_args(["tune", "--data", str(train_csv), "--out", str(out), "--trials", "2", *flags])
    assert args.func(args) == 0
    captured = capsys.readouterr()
    assert "rank" in captured.out and "probe_lr" in captured.out  # the table of top trials
    assert "trial 1 complete" in captured.err and f"to {out}" in captured.err
    manifest = json.loads((out / "transferkit.json").read_text())
    assert manifest["tuning"]["trials"]["complete"] == 2 and manifest["data"]["val_rows"] == 30  # 25% held out
    assert manifest["data"]["sources"]["train"] == str(train_csv.resolve())  # the refit read the file: rerunnable
    again = ["tune", "--data", str(train_csv), "--out", str(out), "--trials", "2", "--json", *flags]
    args = _tune_parser().parse_args(again)
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out)["path"] == str(out)


def test_every_tune_flag_explains_itself():
    parser = _tune_parser()
    tune_parser = parser._subparsers._group_actions[0].choices["tune"]
    assert all(action.help for action in tune_parser._actions)
    assert "lora_r {4, 8, 16, 32}" in tune_parser.epilog and "--storage" in tune_parser.epilog


def test_cli_import_does_not_import_optuna():
    code = (
        "import sys, transferkit, transferkit.cli, transferkit.cli_tune, transferkit.tuning; "
        "transferkit.cli.build_parser(); print('optuna' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
