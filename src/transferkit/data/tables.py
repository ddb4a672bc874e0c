"""Read tabular files (CSV, TSV, JSONL/JSON, Parquet) into pandas DataFrames, with clear errors."""

from __future__ import annotations

import io
from pathlib import Path

from transferkit.errors import DataFileError

SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "tsv",
    ".jsonl": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def _decode_utf8(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataFileError(
            f"{str(path)!r} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}, line {line}). "
            f"Convert it first, e.g. `iconv -f latin1 -t utf-8 {path.name} > fixed{path.suffix}`."
        ) from None


def read_table(path: str | Path):
    """Read a data file into a DataFrame. CSV/TSV cells are read as strings (labels are typed later)."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise DataFileError(f"Data file {str(path)!r} does not exist. Check the path (relative to {Path.cwd()}).")
    if path.is_dir():
        raise DataFileError(
            f"{str(path)!r} is a directory; text data must be one file (.csv, .tsv, .jsonl, .json or .parquet)."
        )
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataFileError(
            f"Cannot read {str(path)!r}: unknown file type {path.suffix!r}. Use one of: {', '.join(sorted(SUFFIXES))}."
        )
    if path.stat().st_size == 0:
        raise DataFileError(f"Data file {str(path)!r} is empty (0 bytes). Give a file with a header row and examples.")
    try:
        if kind == "parquet":
            frame = pd.read_parquet(path)
        else:
            text = _decode_utf8(path, path.read_bytes())
            if kind in ("csv", "tsv"):
                frame = pd.read_csv(
                    io.StringIO(text), sep="\t" if kind == "tsv" else ",", dtype=str, keep_default_na=False
                )
            else:
                frame = pd.read_json(io.StringIO(text), lines=kind == "jsonl")
    except DataFileError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many parser error types
        raise DataFileError(f"Cannot parse {str(path)!r} as {kind.upper()}: {exc}") from None
    if len(frame) == 0:
        raise DataFileError(f"Data file {str(path)!r} has a header but no rows. Add labelled examples.")
    frame = frame.loc[:, [c for c in frame.columns if not str(c).startswith("Unnamed: ")]]
    return frame
