"""Read a table file (CSV, TSV, JSON lines, Parquet) a chunk of rows at a time, so memory stays bounded whatever
the file size. The checks, columns and errors are the whole-file reader's (data/tables.py): a file that
`read_table` refuses is refused here with the same message, and the chunks put together equal its DataFrame.

Text files are read in blocks of whole lines and each block is decoded by the whole-file reader's decoder, told
where the block starts, so a bad byte is reported at its place in the file. Two kinds are read whole and handed
out in chunks (memory then grows with the file): `.json` arrays, which cannot be split, and UTF-16 text.
Parquet is read a record batch at a time; a row group is the least pyarrow reads at once.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from transferkit.data import tables
from transferkit.errors import DataFileError

DEFAULT_CHUNK_ROWS = 10_000  # rows per chunk: large enough to keep per-chunk overhead small, small enough for RAM
BLOCK_BYTES = 1 << 20  # bytes of a text file decoded at once (cut at a line break)


class TableChunks:
    """The DataFrames of one table file in file order, `chunk_rows` rows each at most (never empty).

    `total` and `done` measure progress in `unit`: "row" (Parquet: from its metadata; files read whole) or "B"
    (bytes of a CSV/TSV/JSONL file read so far)."""

    def __init__(self, path: str | Path, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
        if chunk_rows < 1:
            raise DataFileError(f"--chunk-rows / chunk_rows must be at least 1, got {chunk_rows}.")
        self.path = Path(path)
        self.kind = tables.table_kind(self.path)
        self.chunk_rows = chunk_rows
        self.whole = self.kind == "json" or (self.kind != "parquet" and _is_utf16(self.path))
        self.unit = "B" if self.kind in ("csv", "tsv", "jsonl") and not self.whole else "row"
        self.total = self.path.stat().st_size if self.unit == "B" else self._row_count()
        self.done = 0

    def _row_count(self) -> int | None:
        if self.kind != "parquet":
            return None  # known once the file is read
        import pyarrow.parquet as pq

        with parse_errors(self.path, self.kind):
            return pq.ParquetFile(self.path).metadata.num_rows

    def __iter__(self) -> Iterator:
        rows = 0
        for frame in self._frames():
            if len(frame) == 0:
                continue
            frame = frame.loc[:, [c for c in frame.columns if not str(c).startswith("Unnamed: ")]]
            rows += len(frame)
            if self.unit == "row":
                self.done = rows
            yield frame
        if rows == 0:  # a header only: the whole-file reader (on a file this small) says so in its words
            tables.read_table(self.path)

    def _frames(self) -> Iterator:
        if self.whole:
            frame = tables.read_table(self.path)
            self.total = len(frame)
            for start in range(0, len(frame), self.chunk_rows):
                yield frame.iloc[start : start + self.chunk_rows]
        elif self.kind == "parquet":
            yield from self._parquet()
        elif self.kind == "jsonl":
            yield from self._json_lines()
        else:
            yield from self._csv()

    def _parquet(self) -> Iterator:
        import pyarrow as pa
        import pyarrow.parquet as pq

        with parse_errors(self.path, self.kind):
            batches = pq.ParquetFile(self.path).iter_batches(batch_size=self.chunk_rows)
            for batch in batches:  # through a Table, so pandas metadata (a saved index) is applied as read_table does
                yield pa.Table.from_batches([batch]).to_pandas()

    def _csv(self) -> Iterator:
        import pandas as pd

        with open(self.path, "rb") as handle, parse_errors(self.path, self.kind):
            text = _TextStream(self._decoded_blocks(handle))
            sep = "\t" if self.kind == "tsv" else ","
            yield from pd.read_csv(text, sep=sep, dtype=str, keep_default_na=False, chunksize=self.chunk_rows)

    def _json_lines(self) -> Iterator:
        """Blocks of `chunk_rows` lines, each checked and parsed as the whole-file reader does with the whole file."""
        import pandas as pd

        start, lines = 0, 0
        with open(self.path, "rb") as handle:
            while raw := b"".join(line for _, line in zip(range(self.chunk_rows), handle)):
                text = tables._decode_utf8(self.path, raw, start, lines)
                tables._check_json_lines(self.path, text, parse=False, first=lines + 1)
                try:
                    frame = pd.read_json(io.StringIO(text), lines=True)
                except Exception as exc:  # pandas raises many parser error types
                    tables._check_json_lines(self.path, text, parse=True, first=lines + 1)
                    raise tables.parse_error(self.path, self.kind, exc) from None
                start, lines = start + len(raw), lines + raw.count(b"\n")
                self.done = start
                yield frame

    def _decoded_blocks(self, handle) -> Iterator[str]:
        """The text of a UTF-8 file in blocks of whole lines, each decoded (and checked) at its place in the file."""
        start, lines, carry = 0, 0, b""
        while True:
            block = handle.read(BLOCK_BYTES)
            raw = carry + block
            if not raw:
                return
            cut = len(raw) if not block else raw.rfind(b"\n") + 1
            if cut == 0:  # no line break yet: a line longer than a block
                carry = raw
                continue
            raw, carry = raw[:cut], raw[cut:]
            yield tables._decode_utf8(self.path, raw, start, lines)
            start, lines = start + len(raw), lines + raw.count(b"\n")
            self.done = start


@contextmanager
def parse_errors(path: Path, kind: str) -> Iterator[None]:
    """Parser errors inside the block become the whole-file reader's DataFileError for `path`."""
    try:
        yield
    except DataFileError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many parser error types
        raise tables.parse_error(path, kind, exc) from None


def _is_utf16(path: Path) -> bool:
    """A UTF-16 byte-order mark (not UTF-32's) at the start: the whole-file reader decodes such text as UTF-16."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    return tables.has_utf16_bom(head)


class _TextStream(io.TextIOBase):
    """A read-only text file over decoded blocks, for pandas' chunked CSV reader."""

    def __init__(self, blocks: Iterator[str]) -> None:
        self._blocks = blocks
        self._buffer = ""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        while size is None or size < 0 or len(self._buffer) < size:
            block = next(self._blocks, None)
            if block is None:
                break
            self._buffer += block
        if size is None or size < 0:
            size = len(self._buffer)
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out
