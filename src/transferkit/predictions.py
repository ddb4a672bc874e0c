"""Predictions as a table: for inputs in memory (`prediction_frame`), or for a data file streamed chunk by chunk
into an output file (`predict_file`), with memory bounded by the chunk size whatever the file size."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from transferkit.data.chunks import DEFAULT_CHUNK_ROWS


def input_column(model, inputs: list[Any], first_row: int = 1) -> tuple[str, list[str]]:
    """The name of the input column of a predictions table and each input as shown there: the text, the
    image/audio path, or (feature vectors) the row number counted from `first_row`."""
    if model.modality_ == "vector":
        return "row", [str(first_row + i) for i in range(len(inputs))]
    return model.modality_, [str(x) for x in inputs]


def prediction_frame(model, inputs: list[Any], column: str, shown: list[str]):
    """(predictions as a DataFrame, the one-line form of each): label + probabilities, label sets or values."""
    import pandas as pd

    task = model.task_
    if task.name == "regression":
        values = model.predict(inputs)
        frame = pd.DataFrame({column: shown, "prediction": values})
        return frame, [f"{v:.6g}" for v in values]
    probabilities = model.predict_proba(inputs)
    labels = model.classes_
    if task.name == "multilabel":
        separator = model.config_.task.label_separator
        chosen = [separator.join(map(str, row)) for row in task.predict(probabilities)]
        frame = pd.DataFrame({column: shown, "labels": chosen})
        lines = [c or "(none)" for c in chosen]
    else:
        top = probabilities.argmax(axis=1)
        best = probabilities.max(axis=1)
        frame = pd.DataFrame({column: shown, "label": [labels[i] for i in top], "probability": best})
        lines = [f"{labels[i]}\t{p:.3f}" for i, p in zip(top, best)]
    for j, name in enumerate(labels):
        frame[f"p_{name}"] = probabilities[:, j]
    return frame, lines


def _chunk_inputs(model, frame, path: Path, first_row: int, text: str | None) -> list[Any]:
    """A chunk's inputs, read as `model.read_inputs` reads a whole file (columns, checks, paths relative to it).

    Errors name the file; after the first chunk they also say which rows, as their row numbers count from there."""
    from transferkit.data.examples import load_frame

    names = getattr(model.model_.backbone, "feature_names", None)  # vectors from a table: the training columns
    options = model._load_options(model.config_, text=text, features=names)
    source = f"{str(path)!r}"
    if first_row > 1:
        source += f" rows {first_row:,}-{first_row + len(frame) - 1:,} (row numbers below count from row {first_row:,})"
    examples = load_frame(frame, source, path.parent, need_labels=False, modality=model.modality_, **options)
    return examples.inputs


class _Discard:
    """The sink of a process other than rank 0: its rows are written by rank 0."""

    def write(self, frame) -> None:
        pass


def predict_file(
    model,
    data: str | Path,
    output: str | Path,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    text: str | None = None,
    progress: bool = True,
) -> int:
    """Predict every row of a table file (.csv/.tsv/.jsonl/.parquet) into `output` (.csv/.tsv/.parquet), reading,
    predicting and writing `chunk_rows` rows at a time; returns the number of rows written.

    The output holds what `prediction_frame` gives for the whole file, row for row. It appears only when complete
    (written under a temp name, then renamed). `progress`: a progress bar on stderr (when it is a terminal)."""
    from tqdm.auto import tqdm

    from transferkit.data.chunks import TableChunks
    from transferkit.data.table_writer import table_writer
    from transferkit.training.distributed import is_main

    model._check_fitted()
    chunks = TableChunks(data, chunk_rows)
    bar_options = {"unit_scale": True, "unit_divisor": 1024} if chunks.unit == "B" else {}
    bar = tqdm(
        total=chunks.total,
        unit=chunks.unit,
        desc="predicting",
        file=sys.stderr,
        disable=None if progress else True,
        **bar_options,
    )
    read = written = 0  # rows read, rows written (fewer when unreadable image/audio files are skipped)
    # several processes (predict --nproc): each computes its share of every chunk, rank 0 alone writes
    writer = table_writer(output) if is_main() else nullcontext(_Discard())
    with bar, writer as sink:
        for frame in chunks:
            inputs = _chunk_inputs(model, frame, chunks.path, read + 1, text)
            column, shown = input_column(model, inputs, written + 1)
            sink.write(prediction_frame(model, inputs, column, shown)[0])
            read, written = read + len(frame), written + len(inputs)
            bar.total = chunks.total  # known only after reading for files read whole
            bar.update(chunks.done - bar.n)
            bar.set_postfix(rows=f"{written:,}", refresh=False)
    return written
