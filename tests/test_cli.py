"""The CLI end to end on the tiny model, in-process (fast) and once as a real subprocess."""

import json
import os
import subprocess
import sys

import pytest

from conftest import TINY
from transferkit.cli import main

TINY_FLAGS = [
    "--backbone",
    "tiny-bert",
    "--epochs",
    "4",
    "--lr",
    str(TINY["lr"]),
    "--head-lr",
    str(TINY["head_lr"]),
    "--val-fraction",
    "0",
]


def test_fit_evaluate_predict(tmp_path, toy_csv, capsys):
    train, test = toy_csv
    out = tmp_path / "run"
    assert main(["fit", "--data", str(train), "--test", str(test), "--out", str(out), *TINY_FLAGS]) == 0
    table = capsys.readouterr().out
    assert "accuracy" in table and "majority" in table and "confusion" in table
    assert (out / "eval_test.json").is_file()

    assert main(["evaluate", str(out), "--data", str(test), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["accuracy"] >= 0.9 and set(metrics["per_class"]) == {"neg", "pos"}
    manifest = json.loads((out / "transferkit.json").read_text())
    assert manifest["metrics"]["test"]["accuracy"] == metrics["accuracy"]

    assert main(["predict", str(out), "good great fun", "awful boring bad"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["pos", "neg"]

    preds = tmp_path / "preds.csv"
    assert main(["predict", str(out), "--data", str(test), "--output", str(preds)]) == 0
    import pandas as pd

    frame = pd.read_csv(preds)
    assert list(frame.columns[:3]) == ["text", "label", "probability"] and len(frame) == 40


def test_config_file_with_flag_override(tmp_path, toy_csv):
    train, _ = toy_csv
    config = tmp_path / "run.yaml"
    config.write_text(f"data: {train}\nbackbone: tiny-bert\nepochs: 9\nlr: {TINY['lr']}\nval_fraction: 0\n")
    out = tmp_path / "run"
    assert main(["fit", "--config", str(config), "--epochs", "1", "--out", str(out)]) == 0
    manifest = json.loads((out / "transferkit.json").read_text())
    assert manifest["config"]["train"]["epochs"] == 1 and manifest["config"]["backbone"]["backbone"] == "tiny-bert"


@pytest.mark.parametrize(
    "args, message",
    [
        (["fit", "--data", "missing.csv", "--out", "OUT"], "does not exist"),
        (["fit", "--data", "TRAIN", "--out", "OUT", "--backbone", "minlm"], 'Did you mean "minilm"'),
        (["fit", "--data", "TRAIN", "--out", "OUT", "--text-column", "txt"], "Columns found: 'text', 'label'"),
        (["fit", "--data", "TRAIN", "--out", "OUT", "--strategy", "fulll"], "Unknown strategy"),
        (["fit", "--out", "OUT"], "No training data"),
        (["evaluate", "OUT", "--data", "TRAIN"], "not a transferkit run directory"),
        (["predict", "OUT", "hello"], "not a transferkit run directory"),
    ],
)
def test_user_errors_exit_2_with_one_message(tmp_path, toy_csv, capsys, args, message):
    train, _ = toy_csv
    args = [str(train) if a == "TRAIN" else str(tmp_path / "out") if a == "OUT" else a for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_existing_run_is_refused_before_training(tmp_path, toy_csv, capsys):
    train, _ = toy_csv
    out = tmp_path / "run"
    out.mkdir()
    (out / "transferkit.json").write_text("{}")
    assert main(["fit", "--data", str(train), "--out", str(out), *TINY_FLAGS]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_backbones_lists_the_default(capsys):
    assert main(["backbones"]) == 0
    assert "minilm" in capsys.readouterr().out


def test_real_subprocess_help_is_fast_and_errors_have_no_traceback(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for command in (
        ["--help"],
        ["fit", "--help"],
        ["evaluate", "--help"],
        ["predict", "--help"],
        ["backbones", "--help"],
        ["export", "--help"],
        ["serve", "--help"],
    ):
        done = subprocess.run([sys.executable, "-m", "transferkit", *command], capture_output=True, text=True, env=env)
        assert done.returncode == 0 and "usage:" in done.stdout
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, transferkit.cli; transferkit.cli.build_parser(); "
            "print(any(m in sys.modules for m in ('torch', 'fastapi', 'onnxruntime', 'onnx')))",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert imported.stdout.strip() == "False"  # --help must not import torch
    done = subprocess.run(
        [sys.executable, "-m", "transferkit", "evaluate", str(tmp_path), "--data", "x.csv"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr


def test_interrupted_run_suggests_resume_and_resume_finishes(tmp_path, toy_csv, capsys, monkeypatch):
    from transferkit.training import checkpoint as checkpoint_module

    train, _ = toy_csv
    out = tmp_path / "run"
    original = checkpoint_module.Checkpointer.save

    def killed_after_first_checkpoint(self, phase, state):
        original(self, phase, state)
        raise SystemExit(137)

    monkeypatch.setattr(checkpoint_module.Checkpointer, "save", killed_after_first_checkpoint)
    with pytest.raises(SystemExit):
        main(["fit", "--data", str(train), "--out", str(out), *TINY_FLAGS])
    monkeypatch.setattr(checkpoint_module.Checkpointer, "save", original)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints"]

    assert main(["fit", "--data", str(train), "--out", str(out), *TINY_FLAGS]) == 2
    assert "holds an interrupted run. Pass --resume" in capsys.readouterr().err
    assert main(["fit", "--data", str(train), "--out", str(out), "--resume", *TINY_FLAGS]) == 0
    assert "resumed full at epoch 2" in capsys.readouterr().err
    assert (out / "transferkit.json").is_file() and not (out / "checkpoints").exists()
    assert main(["fit", "--data", str(train), "--out", str(out), "--resume", *TINY_FLAGS]) == 2
    assert "holds no interrupted run" in capsys.readouterr().err


def test_strategies_command_lists_all(capsys):
    assert main(["strategies"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in ("probe", "freeze", "lora", "full", "lp-ft"))


def test_every_fit_option_explains_itself():
    """Each config flag's help comes from its why-comment, also for fields the formatter wrapped."""
    from transferkit.cli import build_parser

    parser = build_parser()
    fit = next(a for a in parser._subparsers._group_actions[0].choices.values() if a.prog.endswith(" fit"))
    undocumented = [a.dest for a in fit._actions if a.option_strings and (a.help or "").startswith(" (default")]
    assert not undocumented, f"flags without help: {undocumented}"
