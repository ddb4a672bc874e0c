"""Data-parallel runs on CPU (gloo): 2 processes give the 1-process result, only rank 0 writes, a dead worker
stops the run with a clear message and --resume (with any number of processes) finishes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from safetensors.numpy import load_file

from conftest import toy_sentiment
from transferkit.training.distributed import RankPieces, piece_of
from transferkit.training.launch import strip_nproc

# 70 rows with 10% held out: 63 training rows, batches of 16 -> the last global batch has 15 rows; with
# batch_size 31 (below) the last has 1 row, so rank 1's piece is empty and trains a weight-0 stand-in row.
MLP = ["--backbone", "mlp:32", "--strategy", "full", "--epochs", "3", "--lr", "0.01", "--no-check-data"]


def run_cli(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "transferkit", *args], capture_output=True, text=True, env=full_env, timeout=timeout
    )


def weights(run_dir) -> dict[str, np.ndarray]:
    return load_file(str(run_dir / "weights.safetensors"))


def assert_same_run(one, two) -> None:
    a, b = weights(one), weights(two)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-5, err_msg=key)
    history = [json.loads((d / "transferkit.json").read_text())["training"] for d in (one, two)]
    for phase in history[0]:
        rows = [h[phase]["history"] for h in history]
        assert len(rows[0]) == len(rows[1])
        for r1, r2 in zip(*rows):
            for key in r1:
                assert r1[key] == pytest.approx(r2[key], abs=2e-5), (phase, key)


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(70, 12)).astype(np.float32)
    y = np.where(x[:, 0] + x[:, 1] > 0, "up", "down")
    path = tmp_path_factory.mktemp("vectors") / "train.npz"
    np.savez(path, X=x, y=y)
    return path


def test_pieces_cover_every_row_once_with_weights_that_average_to_one():
    for n in (1, 2, 5, 16):
        batch = list(range(100, 100 + n))
        pieces = [piece_of(batch, rank, 2) for rank in range(2)]
        trained = [i for piece, w in pieces if w for i in piece]
        assert trained == batch  # contiguous, in order, none twice
        assert sum(w for _, w in pieces) / 2 == pytest.approx(1.0)  # DDP's mean of the weighted losses
    assert piece_of([7], 0, 2) == ([7], 0.0)  # empty piece: one stand-in row, weight 0

    class Batches:
        def __init__(self):
            self.epoch = 0

        def set_epoch(self, epoch):
            self.epoch = epoch

        def __len__(self):
            return 2

        def __iter__(self):
            return iter([[0, 1, 2], [3]])

    sampler = RankPieces(Batches(), 1, 2)
    assert list(sampler) == [[1, 2], [3]] and len(sampler) == 2


def test_strip_nproc():
    assert strip_nproc(["fit", "--nproc", "2", "--data", "x", "--nproc=3"]) == ["fit", "--data", "x"]


def test_two_processes_train_the_one_process_model(vectors, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    common = ["fit", "--data", str(vectors), *MLP, "--batch-size", "31"]
    first = run_cli(*common, "--out", str(one))
    assert first.returncode == 0, first.stderr
    second = run_cli(*common, "--out", str(two), "--nproc", "2")
    assert second.returncode == 0, second.stderr
    assert "data-parallel over 2 processes" in second.stderr
    assert second.stderr.count("saved run to") == 1  # rank 0 alone writes and speaks
    assert_same_run(one, two)
    manifest = json.loads((two / "transferkit.json").read_text())
    assert manifest["hardware"]["processes"] == 2
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["one", "two"]

    # prediction and evaluation split the rows between the processes and gather them in order
    preds = [tmp_path / "p1.csv", tmp_path / "p2.csv"]
    for out, extra in zip(preds, ([], ["--nproc", "2"])):
        done = run_cli("predict", str(one), "--data", str(vectors), "--output", str(out), *extra)
        assert done.returncode == 0, done.stderr
    import pandas as pd

    frames = [pd.read_csv(p) for p in preds]  # same rows, same order; floats up to 1-vs-2-thread rounding
    pd.testing.assert_frame_equal(frames[0], frames[1], rtol=1e-5)
    assert not list(tmp_path.glob("p2*.tmp*"))
    evaluated = [
        run_cli("evaluate", str(one), "--data", str(vectors), "--json", *extra) for extra in ([], ["--nproc", "2"])
    ]
    assert all(e.returncode == 0 for e in evaluated), evaluated[1].stderr
    metrics = [json.loads(e.stdout[e.stdout.index("{") :]) for e in evaluated]
    assert metrics[0]["accuracy"] == metrics[1]["accuracy"]
    assert metrics[0]["log_loss"] == pytest.approx(metrics[1]["log_loss"], abs=1e-9)


def test_two_processes_probe_on_a_text_backbone(tmp_path, monkeypatch):
    import pandas as pd

    texts, labels = toy_sentiment(60, seed=3)
    data = tmp_path / "train.csv"
    pd.DataFrame({"text": texts, "label": labels}).to_csv(data, index=False)
    env = {"TRANSFERKIT_CACHE": str(tmp_path / "cache")}
    args = ["fit", "--data", str(data), "--backbone", "tiny-bert", "--strategy", "probe", "--head-epochs", "5"]
    args += ["--no-check-data"]
    one = run_cli(*args, "--out", str(tmp_path / "one"), "--no-feature-cache", env=env)
    # --test: rank 0 evaluates alone after the others have finished (through the feature cache: no collective)
    two = run_cli(*args, "--out", str(tmp_path / "two"), "--nproc", "2", "--test", str(data), env=env)
    assert one.returncode == 0 and two.returncode == 0, two.stderr
    assert (tmp_path / "two" / "report.html").is_file()
    assert_same_run(tmp_path / "one", tmp_path / "two")
    shards = list((tmp_path / "cache").rglob("shard-*.safetensors"))
    assert len(shards) == 2  # training and validation features, each written once (by rank 0)
    # streamed prediction of a table (chunks of 25 rows): each chunk's batches shared, rank 0 writes the file
    outs = [tmp_path / "p1.parquet", tmp_path / "p2.parquet"]
    for out, extra in zip(outs, ([], ["--nproc", "2"])):
        done = run_cli(
            "predict", str(tmp_path / "one"), "--data", str(data), "--output", str(out), "--chunk-rows", "25", *extra
        )
        assert done.returncode == 0, done.stderr
    frames = [pd.read_parquet(out) for out in outs]
    assert len(frames[1]) == 60
    pd.testing.assert_frame_equal(frames[0], frames[1], rtol=1e-5)


KILLER = """
import os, signal
if os.environ.get("RANK") == "1" and os.environ.get("TK_KILL_AT_STEP"):
    import transferkit.training.loop as loop
    original, calls = loop._Run.step, [0]
    def step(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == int(os.environ["TK_KILL_AT_STEP"]):
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, *args, **kwargs)
    loop._Run.step = step
"""


def killing_env(tmp_path, step: int) -> dict:
    """Environment under which worker 1 of a run kills itself with SIGKILL at its `step`-th training step."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(textwrap.dedent(KILLER))
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), "TK_KILL_AT_STEP": str(step)}


@pytest.mark.parametrize("sharded", [False, True], ids=["ddp", "fsdp"])
def test_a_killed_worker_stops_the_run_and_resume_finishes_it(vectors, tmp_path, sharded):
    common = ["fit", "--data", str(vectors), *MLP, "--batch-size", "8", "--checkpoint-steps", "2"]
    whole = run_cli(*common, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    extra = ["--fsdp"] if sharded else []
    killed = run_cli(*common, "--out", str(tmp_path / "run"), "--nproc", "2", *extra, env=killing_env(tmp_path, 11))
    assert killed.returncode == 2
    assert "worker 1 of 2 was killed by SIGKILL" in killed.stderr and "--resume" in killed.stderr
    assert "Traceback" not in killed.stderr
    assert not (tmp_path / "run" / "weights.safetensors").exists()
    # one process now, unsharded: checkpoints hold whole weights and optimizer state whatever wrote them
    resumed = run_cli(*common, "--out", str(tmp_path / "run"), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed" in resumed.stderr
    assert_same_run(tmp_path / "whole", tmp_path / "run")


def test_sharded_training_equals_data_parallel_on_a_transformer(tmp_path):
    """FSDP shards tiny-BERT by block; with the same per-process batches and dropout draws it trains what DDP trains
    (a 1-process run differs by dropout: each process draws masks for its own rows)."""
    import pandas as pd

    texts, labels = toy_sentiment(60, seed=3)
    data = tmp_path / "train.csv"
    pd.DataFrame({"text": texts, "label": labels}).to_csv(data, index=False)
    args = ["fit", "--data", str(data), "--backbone", "tiny-bert", "--strategy", "full", "--epochs", "2"]
    args += ["--lr", "1e-3", "--no-check-data", "--nproc", "2"]
    ddp = run_cli(*args, "--out", str(tmp_path / "ddp"))
    fsdp = run_cli(*args, "--out", str(tmp_path / "fsdp"), "--fsdp")
    assert ddp.returncode == 0 and fsdp.returncode == 0, fsdp.stderr
    assert_same_run(tmp_path / "ddp", tmp_path / "fsdp")
    assert json.loads((tmp_path / "fsdp" / "transferkit.json").read_text())["config"]["train"]["fsdp"] is True


def test_mixed_precision_bf16_on_cpu_and_fp16_refused(vectors, tmp_path):
    bf16 = run_cli("fit", "--data", str(vectors), *MLP, "--mixed-precision", "bf16", "--out", str(tmp_path / "bf16"))
    assert bf16.returncode == 0, bf16.stderr
    manifest = json.loads((tmp_path / "bf16" / "transferkit.json").read_text())
    assert manifest["config"]["train"]["mixed_precision"] == "bf16"
    assert all(np.isfinite(w).all() for w in weights(tmp_path / "bf16").values())
    fp16 = run_cli("fit", "--data", str(vectors), *MLP, "--mixed-precision", "fp16", "--out", str(tmp_path / "fp16"))
    assert fp16.returncode == 2 and "error: --mixed-precision fp16 needs a GPU" in fp16.stderr
    alone = run_cli("fit", "--data", str(vectors), *MLP, "--fsdp", "--out", str(tmp_path / "alone"))
    assert alone.returncode == 2 and "--fsdp shards the model between processes" in alone.stderr
    assert not (tmp_path / "fp16").exists() and not (tmp_path / "alone").exists()
