"""Write a table (CSV, TSV or Parquet) a chunk of rows at a time, so memory stays bounded whatever the row count.

The rows go to a temp name beside the output (export/atomic.py) and the file appears under its own name only when
every chunk is written: a run that is killed or fails half-way leaves no half file where the output should be.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from transferkit.export.atomic import make_dirs, writing

OUTPUT_HINT = "free space or choose another --output"


def output_kind(path: str | Path) -> str:
    """The output format: Parquet for .parquet / .pq, TSV for .tsv, else CSV (as `predict --output` always wrote)."""
    suffix = Path(path).suffix.lower()
    return "parquet" if suffix in (".parquet", ".pq") else "tsv" if suffix == ".tsv" else "csv"


class _CsvSink:
    def __init__(self, tmp: Path, sep: str) -> None:
        self.handle = open(tmp, "w", encoding="utf-8", newline="")  # as pandas opens a path: no newline translation
        self.sep = sep
        self.header = True

    def write(self, frame) -> None:
        frame.to_csv(self.handle, sep=self.sep, index=False, header=self.header)
        self.header = False

    def close(self) -> None:
        self.handle.close()


class _ParquetSink:
    """Row groups appended to one Parquet file; every chunk is cast to the first chunk's schema."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.writer = None

    def write(self, frame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.writer is None:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            self.writer = pq.ParquetWriter(self.tmp, table.schema)
        else:
            table = pa.Table.from_pandas(frame, schema=self.writer.schema, preserve_index=False)
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        else:  # no chunk: still a valid (empty) Parquet file
            import pandas as pd

            pd.DataFrame().to_parquet(self.tmp)


@contextmanager
def table_writer(path: str | Path, hint: str = OUTPUT_HINT) -> Iterator:
    """`with table_writer(path) as sink: sink.write(frame)` for each chunk, in order; the first chunk's columns
    are the header (CSV) or schema (Parquet). The file appears at `path` when the block ends without an error."""
    path = Path(path)
    make_dirs(path.parent, hint)
    kind = output_kind(path)
    with writing(path, hint) as tmp:
        sink = _ParquetSink(tmp) if kind == "parquet" else _CsvSink(tmp, "\t" if kind == "tsv" else ",")
        try:
            yield sink
        finally:
            sink.close()
