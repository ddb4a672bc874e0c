"""strategy="auto": pilots, budgets, the decision record, and the chosen model's save -> load."""

from __future__ import annotations

import json

import pytest

import transferkit as tk
from conftest import TINY
from transferkit.config import RunConfig, parse_bytes, parse_duration
from transferkit.errors import ConfigError
from transferkit.strategies.auto import CANDIDATES

AUTO = {**TINY, "val_fraction": 0.2, "strategy": "auto"}


def fit_auto(toy_data, **params):
    (x, y), _ = toy_data
    return tk.FineTuner(**{**AUTO, **params}).fit(x, y, verbose=False)


def test_generous_budget_runs_every_candidate_and_keeps_the_best(toy_data, tmp_path):
    model = fit_auto(toy_data, time_budget="10m", memory_budget="64GB")
    auto = model.run_info_["auto"]
    few_shot = ["probe", "contrastive", *CANDIDATES[1:]]  # the toy data has 60 rows per class
    assert [p["strategy"] for p in auto["pilots"]] == few_shot
    assert [r["strategy"] for r in auto["runs"]] == few_shot
    for measured in auto["pilots"]:
        assert measured["estimate_s"] > 0 and measured["s_per_example_epoch"] > 0 and measured["peak_mb"] > 0
    assert all(r["val_log_loss"] > 0 for r in auto["runs"])  # per-row evidence on the shared validation rows
    assert auto["val_rows"] == 30  # 25% of 120 rows: auto holds out more than a single fit (0.2) would
    first_best = auto["chosen"]
    assert first_best == model.config_.strategy.strategy == model.run_info_["strategy"]
    assert auto["reasons"][-2].startswith(f"chose {first_best}")
    assert len([r for r in auto["reasons"] if " kept: " in r or " not kept: " in r]) == len(few_shot) - 1
    kept_last = [r.split(" ")[0] for r in auto["reasons"] if " kept: " in r and " not kept: " not in r]
    assert first_best == (kept_last[-1] if kept_last else "probe")
    assert auto["budget_s"] == 600 and auto["memory_budget_bytes"] == 64 * 10**9
    # few-shot: the choice trains again on every row, the 30 held out to compare included
    assert auto["refit_rows"] == 120 == model.run_info_["data"]["train_rows"]
    assert auto["reasons"][-1].startswith(f"trained {first_best} again on all 120 rows, the 30 held out")

    saved = model.save(tmp_path / "run")
    manifest = json.loads((saved / "transferkit.json").read_text())
    assert manifest["auto"]["chosen"] == first_best and manifest["config"]["strategy"]["strategy"] == first_best
    assert f"Strategy chosen by auto: {first_best}" in (saved / "report.html").read_text()
    loaded = tk.load(saved)
    (_, _), (test_x, _) = toy_data
    assert loaded.config_.strategy.strategy == first_best
    assert loaded.predict(test_x) == model.predict(test_x)


def test_tiny_time_budget_runs_only_the_probe_and_says_why(toy_data):
    auto = fit_auto(toy_data, time_budget="0.05s").run_info_["auto"]
    assert [r["strategy"] for r in auto["runs"]] == ["probe"] and auto["chosen"] == "probe"
    assert any(r.startswith("probe run anyway as the floor") for r in auto["reasons"])
    assert auto["reasons"][-1].startswith("kept probe as trained on 90 rows: training it on all 120 would take about")
    assert auto["refit_rows"] is None
    for strategy in ("contrastive", *CANDIDATES[1:]):
        assert any(r.startswith(f"{strategy} skipped:") for r in auto["reasons"]), auto["reasons"]


def test_memory_budget_below_any_candidate_keeps_the_probe_as_floor(toy_data):
    auto = fit_auto(toy_data, memory_budget="1MB").run_info_["auto"]
    assert [r["strategy"] for r in auto["runs"]] == ["probe"]
    assert any("probe run anyway as the floor" in r and "memory budget" in r for r in auto["reasons"])
    for strategy in ("contrastive", *CANDIDATES[1:]):
        assert any(r.startswith(f"{strategy} skipped: measured peak") for r in auto["reasons"]), auto["reasons"]


def test_moderate_budget_trains_only_what_its_estimate_fits(toy_data):
    fit_auto(toy_data, strategy="probe")  # imports and first-call warm-up out of the measured run
    budget = 3.0
    auto = fit_auto(toy_data, time_budget=f"{budget}s").run_info_["auto"]
    pilots = {p["strategy"]: p for p in auto["pilots"]}
    for run in auto["runs"][1:]:  # the budget logic: every candidate trained had an estimate within what was left
        assert pilots[run["strategy"]]["estimate_s"] <= pilots[run["strategy"]]["left_s"]
    assert auto["wall_s"] <= 1.1 * budget + 1.0  # 1.1 x budget, plus slack for a loaded test machine


def test_bad_budgets_and_missing_validation_raise_config_error(toy_data):
    with pytest.raises(ConfigError, match="time_budget"):
        RunConfig.from_dict({"strategy": "auto", "time_budget": "ten minutes"})
    with pytest.raises(ConfigError, match="memory_budget"):
        RunConfig.from_dict({"memory_budget": "lots"})
    with pytest.raises(ConfigError, match="time_budget"):
        fit_auto(toy_data, time_budget="-5m")


def test_without_validation_rows_few_shot_classification_gets_contrastive_and_others_an_error(toy_data, monkeypatch):
    (x, y), (test_x, _) = toy_data
    few = [i for label in sorted(set(y)) for i in [j for j, v in enumerate(y) if v == label][:8]]  # 8 per class
    model = tk.FineTuner(**{**AUTO, "time_budget": "10m"}).fit([x[i] for i in few], [y[i] for i in few], verbose=False)
    auto = model.run_info_["auto"]
    assert auto["chosen"] == "contrastive" == model.config_.strategy.strategy
    assert auto["val_rows"] == 0 and auto["pilots"] == [] and [r["strategy"] for r in auto["runs"]] == ["contrastive"]
    assert auto["reasons"][0].startswith(f"no validation rows ({len(few)} training rows, val_fraction=0.2")
    assert auto["budget_s"] == 600 and len(model.predict(test_x)) == len(test_x)
    # 16 per class: a quarter held out would be 8 rows, under MIN_VAL_ROWS_PER_CLASS per class: not compared either
    few = [i for label in sorted(set(y)) for i in [j for j, v in enumerate(y) if v == label][:16]]
    auto = tk.FineTuner(**AUTO).fit([x[i] for i in few], [y[i] for i in few], verbose=False).run_info_["auto"]
    assert auto["chosen"] == "contrastive" and auto["pilots"] == []
    assert auto["reasons"][0].startswith("too few rows to compare candidates on: about 8 of 32 could be held out")
    # more than FEW_SHOT_PER_CLASS rows per class: candidates need validation rows, so no validation is an error
    monkeypatch.setattr("transferkit.strategies.auto.FEW_SHOT_PER_CLASS", 10)
    with pytest.raises(ConfigError, match="validation"):
        fit_auto(toy_data, val_fraction=0.0)


def test_budget_strings_parse():
    assert [parse_duration(v) for v in ("90s", "10m", "1h", "600", 45)] == [90, 600, 3600, 600, 45]
    assert parse_bytes("4GB") == 4 * 10**9 and parse_bytes("512MB") == 512 * 10**6 and parse_bytes("2GiB") == 2**31
    assert parse_duration(None) is None and parse_bytes(None) is None
