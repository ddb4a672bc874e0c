"""Streaming batch prediction: chunked reading/writing equals the whole-file path, outputs appear only when
complete, and peak memory does not grow with the row count."""

from __future__ import annotations

import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import pandas as pd
import pytest

from conftest import TINY, toy_sentiment
from transferkit.data import chunks
from transferkit.data.chunks import TableChunks
from transferkit.data.tables import read_table
from transferkit.errors import DataFileError
from transferkit.predictions import input_column, prediction_frame

ROWS = 103  # no chunk size below divides it
TRICKY = ['a "quoted" word, good', "line\nbreak in a cell, bad", "café ünïcode great", "tab\there awful"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    import transferkit as tk

    x, y = toy_sentiment(60)
    model = tk.FineTuner(**{**TINY, "epochs": 1, "head_epochs": 2, "eval_batch_size": 512}).fit(x, y)
    return model.save(tmp_path_factory.mktemp("streaming") / "run")


@pytest.fixture(scope="module")
def model(run_dir):
    import transferkit as tk

    return tk.load(run_dir)


def _texts(n: int) -> list[str]:
    texts, _ = toy_sentiment(n, seed=3)
    return [TRICKY[i % len(TRICKY)] if i % 10 == 3 else t for i, t in enumerate(texts)]


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_csv(path, index=False)
    return path


def _whole_file(model, path: Path) -> pd.DataFrame:
    """What `transferkit predict --data FILE` computed before streaming: the whole file at once."""
    inputs = model.read_inputs(path)
    column, shown = input_column(model, inputs)
    return prediction_frame(model, inputs, column, shown)[0]


def _assert_same_predictions(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Inputs, labels and columns exactly; probabilities to float32 rounding: a chunk's length-sorted batches pad
    differently from the whole file's, and a padded forward pass differs in the last bits."""
    probabilities = [c for c in expected.columns if c.startswith("p_") or c == "probability"]
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got.drop(columns=probabilities), expected.drop(columns=probabilities))
    pd.testing.assert_frame_equal(got[probabilities], expected[probabilities], check_exact=False, rtol=0, atol=1e-6)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
@pytest.mark.parametrize("chunk_rows", [7, 40])
def test_chunked_output_equals_whole_file(tmp_path, model, monkeypatch, suffix, chunk_rows):
    monkeypatch.setattr(chunks, "BLOCK_BYTES", 64)  # text blocks cut between rows and inside quoted line breaks
    data = _write(pd.DataFrame({"text": _texts(ROWS), "label": ["x"] * ROWS}), tmp_path / f"data{suffix}")
    whole = _whole_file(model, data)
    for out_suffix in (".csv", ".parquet"):
        expected, output = tmp_path / f"expected{out_suffix}", tmp_path / f"preds{out_suffix}"
        _write(whole, expected)
        assert model.predict_file(data, output, chunk_rows=chunk_rows, progress=False) == ROWS
        read = pd.read_parquet if out_suffix == ".parquet" else partial(pd.read_csv, keep_default_na=False)
        _assert_same_predictions(read(output), read(expected))


def test_one_chunk_output_is_byte_identical(tmp_path, model):
    data = _write(pd.DataFrame({"text": _texts(ROWS)}), tmp_path / "data.csv")
    expected, output = _write(_whole_file(model, data), tmp_path / "expected.csv"), tmp_path / "preds.csv"
    model.predict_file(data, output, chunk_rows=ROWS, progress=False)
    assert output.read_bytes() == expected.read_bytes()


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_chunks_put_together_equal_read_table(tmp_path, monkeypatch, suffix):
    monkeypatch.setattr(chunks, "BLOCK_BYTES", 50)
    frame = pd.DataFrame({"text": _texts(ROWS), "label": [i % 3 for i in range(ROWS)], "Unnamed: 0": 0})
    path = tmp_path / f"data{suffix}"
    if suffix == ".tsv":
        frame.assign(text=frame.text.str.replace("\t", " ")).to_csv(path, sep="\t", index=False)
    else:
        _write(frame, path)
    pieces = list(TableChunks(path, chunk_rows=17))
    assert [len(p) for p in pieces] == [17] * 6 + [1]
    pd.testing.assert_frame_equal(pd.concat(pieces, ignore_index=True), read_table(path), check_exact=True)


def test_utf16_with_bom_reads_as_the_whole_file_reader_does(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("text,label\nhéllo,a\nworld,b\nthird,a\n".encode("utf-16"))
    pieces = list(TableChunks(path, chunk_rows=2))
    assert [len(p) for p in pieces] == [2, 1]
    pd.testing.assert_frame_equal(pd.concat(pieces), read_table(path))


@pytest.mark.parametrize(
    "body",
    [
        b"text,label\n" + b"fine,a\n" * 500 + "caf\xe9,b\n".encode("latin-1"),  # a bad byte far from the start
        b"text,label\n" + b"fine,a\n" * 300 + b"nul\x00here,b\n",
        "text,label\nhi,a\n".encode("utf-32"),
        b'text,label\n"never closed,a\n' + b"fine,a\n" * 200,
        b"",
    ],
    ids=["latin1", "nul", "utf32", "quote", "empty"],
)
def test_bad_text_files_give_the_whole_file_error(tmp_path, monkeypatch, body):
    monkeypatch.setattr(chunks, "BLOCK_BYTES", 256)
    path = tmp_path / "bad.csv"
    path.write_bytes(body)
    with pytest.raises(DataFileError) as whole:
        read_table(path)
    with pytest.raises(DataFileError) as chunked:
        list(TableChunks(path, chunk_rows=7))
    assert str(chunked.value) == str(whole.value)


def test_bad_json_line_is_named_by_its_line_in_the_file(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n' * 25 + "[1, 2]\n")
    with pytest.raises(DataFileError) as whole:
        read_table(path)
    with pytest.raises(DataFileError) as chunked:
        list(TableChunks(path, chunk_rows=10))
    assert str(chunked.value) == str(whole.value) and "line 26" in str(whole.value)


def test_header_only_file(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("text,label\n")
    with pytest.raises(DataFileError, match="header but no rows"):
        list(TableChunks(path))


def test_output_appears_only_when_complete(tmp_path, model, monkeypatch):
    from transferkit import predictions

    data = _write(pd.DataFrame({"text": _texts(ROWS)}), tmp_path / "data.csv")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    calls = []

    def failing(*args):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("injected failure in the third chunk")
        return prediction_frame(*args)

    monkeypatch.setattr(predictions, "prediction_frame", failing)
    for name in ("preds.csv", "preds.parquet"):
        calls.clear()
        with pytest.raises(RuntimeError, match="injected"):
            model.predict_file(data, out_dir / name, chunk_rows=20, progress=False)
        assert list(out_dir.iterdir()) == []  # neither the output nor a temp file


def test_cli_streams_with_chunk_rows(tmp_path, run_dir, capsys):
    from transferkit.cli import main

    data = _write(pd.DataFrame({"review": _texts(ROWS)}), tmp_path / "data.jsonl")
    output = tmp_path / "sub" / "preds.parquet"
    assert main(["predict", str(run_dir), "--data", str(data), "--output", str(output), "--chunk-rows", "9"]) == 0
    assert f"wrote {ROWS} predictions" in capsys.readouterr().err
    frame = pd.read_parquet(output)
    assert len(frame) == ROWS and list(frame.columns[:3]) == ["text", "label", "probability"]
    assert frame["text"].tolist() == _texts(ROWS)


# -- memory -----------------------------------------------------------------------------------------------------------
# Peak RSS of `transferkit predict RUN --data FILE --output preds.parquet` in a fresh process. Measured on a shared
# 2-core CPU box (tiny-bert, --chunk-rows 10000): importing torch alone peaks at ~0.9 GB (its libraries are mapped)
# and ~1.18 GB once the run is loaded; streaming 100k rows peaked at ~1.3 GB and 1M rows at ~1.3 GB.
# Streaming may add at most GROWTH_MB from 100k to 1M rows, and stay under ABSOLUTE_MB.
GROWTH_MB = 100
ABSOLUTE_MB = 1536


def _peak_rss_mb(run_dir: Path, rows: int, tmp_path: Path) -> float:
    data = tmp_path / f"texts_{rows}.csv"
    with open(data, "w") as handle:
        handle.write("text\n")
        handle.writelines(f"{'good' if i % 2 else 'bad'} movie {i}\n" for i in range(rows))
    output = tmp_path / f"preds_{rows}.parquet"
    command = [sys.executable, "-m", "transferkit", "predict", str(run_dir), "--data", str(data)]
    command += ["--output", str(output)]
    # ru_maxrss of RUSAGE_CHILDREN, read in a fresh parent that has no other children: the predict process's peak.
    measure = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}  # a shared CI box: one core
    result = subprocess.run([sys.executable, "-c", measure, *command], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert pd.read_parquet(output, columns=["label"]).shape[0] == rows
    output.unlink()
    data.unlink()
    return int(result.stdout.split()[-1]) / 1024  # KiB on Linux


@pytest.fixture(scope="module")
def peak_100k(run_dir, tmp_path_factory) -> float:
    return _peak_rss_mb(run_dir, 100_000, tmp_path_factory.mktemp("rss"))


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_rows(run_dir, tmp_path, peak_100k):
    peak_1m = _peak_rss_mb(run_dir, 1_000_000, tmp_path)
    print(f"peak RSS: 100k rows {peak_100k:.0f} MB, 1M rows {peak_1m:.0f} MB")
    assert peak_1m <= peak_100k + GROWTH_MB, (peak_100k, peak_1m)
    assert peak_1m < ABSOLUTE_MB, peak_1m
