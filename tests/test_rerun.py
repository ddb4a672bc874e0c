"""Reproducibility: the manifest records what a rerun needs, and `transferkit rerun` checks the numbers match."""

import json

import pandas as pd

from conftest import TINY
from transferkit.cli import main

FLAGS = ["--backbone", "tiny-bert", "--epochs", "2", "--lr", str(TINY["lr"]), "--head-lr", str(TINY["head_lr"])]


def test_manifest_records_sources_split_indices_and_weight_hashes(tmp_path, toy_csv):
    train, test = toy_csv
    out = tmp_path / "run"
    assert main(["fit", "--data", str(train), "--test", str(test), "--out", str(out), *FLAGS]) == 0
    manifest = json.loads((out / "transferkit.json").read_text())
    data = manifest["data"]
    assert data["sources"] == {"train": str(train.resolve()), "val": None}
    split = data["split_indices"]  # 10% of 120 rows held out, stratified
    assert len(split["val"]) == data["val_rows"] == 12 and len(split["train"]) == data["train_rows"] == 108
    assert not set(split["val"]) & set(split["train"])
    (weights,) = manifest["backbone_weights"]  # tiny-bert is a local model directory: its weight file's hash
    assert weights["path"].endswith(".safetensors") and weights["bytes"] > 0 and len(weights["sha256"]) == 64
    assert manifest["command"].startswith(f"transferkit fit --data {train} --test {test}")
    recorded = json.loads((out / "eval_test.json").read_text())
    assert recorded["data"] == str(test.resolve()) and len(recorded["data_fingerprint"]) == 16


def test_rerun_reproduces_the_run_and_catches_changed_data(tmp_path, toy_csv, capsys):
    train, test = toy_csv
    out = tmp_path / "run"
    assert main(["fit", "--data", str(train), "--test", str(test), "--out", str(out), *FLAGS]) == 0
    capsys.readouterr()
    assert main(["rerun", str(out), "--json", "--out", str(tmp_path / "again")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and (tmp_path / "again" / "transferkit.json").is_file()
    names = {c["what"] for c in report["checks"]}
    assert {"train fingerprint", "validation accuracy", "validation loss", "test.csv accuracy"} <= names

    frame = pd.read_csv(test)  # someone edits the test set after the run
    frame.loc[0, "label"] = "pos" if frame.loc[0, "label"] == "neg" else "neg"
    frame.to_csv(test, index=False)
    assert main(["rerun", str(out)]) == 1
    table = capsys.readouterr().out
    assert "test.csv fingerprint" in table and "NO" in table and "does NOT match" in table


def test_rerun_refuses_runs_from_in_memory_data(tmp_path, toy_data, capsys):
    import transferkit as tk

    (x, y), _ = toy_data
    tk.FineTuner(**{**TINY, "epochs": 1}).fit(x, y, verbose=False).save(tmp_path / "mem")
    assert main(["rerun", str(tmp_path / "mem")]) == 2
    assert "trained from in-memory data" in capsys.readouterr().err
