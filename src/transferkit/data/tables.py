"""Read tabular files (CSV, TSV, JSONL/JSON, Parquet) into pandas DataFrames, with clear errors."""

from __future__ import annotations

import codecs
import io
import json
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
MAX_COLUMNS = 10_000  # fields in a CSV/TSV header: wider files are refused (pandas slows down with its square)


def _line_of(raw: bytes, offset: int) -> int:
    return raw[:offset].count(b"\n") + 1


def has_utf16_bom(head: bytes) -> bool:
    """A UTF-16 byte-order mark (not UTF-32's, which begins with the same two bytes) at the start of `head`."""
    return head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and not head.startswith(codecs.BOM_UTF32_LE)


def _decode_utf8(path: Path, raw: bytes, start: int = 0, lines: int = 0) -> str:
    """UTF-8 (with or without a BOM), or UTF-16 with its BOM (Excel's "Unicode text"); anything else is refused
    with the line of the first bad byte and a conversion command.

    `start`, `lines`: the bytes and line breaks before `raw` when a file is decoded in blocks of whole lines
    (data/chunks.py), so errors name the place in the whole file."""
    utf16 = has_utf16_bom(raw)
    if start == 0 and utf16:
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise DataFileError(
                f"{str(path)!r} starts with a UTF-16 byte-order mark but is not valid UTF-16 ({exc.reason} at byte "
                f"{exc.start}). Re-save it as UTF-8, e.g. `iconv -f utf-16 -t utf-8 {path.name} > fixed{path.suffix}`."
            ) from None
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise DataFileError(
            f"{str(path)!r} holds NUL bytes (the first at offset {start + nul}, line {lines + _line_of(raw, nul)}): "
            "it is binary, or "
            "UTF-16/UTF-32 text without a byte-order mark, not a UTF-8 table. Convert it, e.g. "
            f"`iconv -f utf-16le -t utf-8 {path.name} > fixed{path.suffix}`, or give the right file."
        )
    try:
        return raw.decode("utf-8-sig" if start == 0 else "utf-8")
    except UnicodeDecodeError as exc:
        raise DataFileError(
            f"{str(path)!r} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {start + exc.start}, line "
            f"{lines + _line_of(raw, exc.start)}). Convert it first, e.g. `iconv -f latin1 -t utf-8 {path.name} > "
            f"fixed{path.suffix}`."
        ) from None


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split("\n")[:1]).strip() or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "..."


def _check_json_lines(path: Path, text: str, parse: bool, first: int = 1) -> None:
    """Every non-blank line must be one JSON object: name the first that is not. Without `parse`, only the first
    character is looked at (cheap, before pandas reads the file); with it, each line is parsed (after pandas
    refused the file, to say where). `first`: the number of the text's first line in the file."""
    for number, line in enumerate(text.splitlines(), start=first):
        if not line.strip() or (not parse and line.lstrip().startswith("{")):
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            problem = f"is not valid JSON ({_first_line(exc)})"
        else:
            if isinstance(value, dict):
                continue
            problem = f"is a JSON {type(value).__name__}, not an object"
        shown = line.strip()[:60]
        raise DataFileError(
            f"{str(path)!r}: line {number} {problem}: {shown!r}. A .jsonl file holds one JSON object per line, "
            'e.g. {"text": "great film", "label": "pos"}; fix that line or drop it.'
        )


def _check_width(path: Path, text: str, sep: str) -> None:
    """pandas takes minutes on a header of 100k+ fields (time grows with its square): refuse it up front."""
    end = text.find("\n")
    fields = text.count(sep, 0, len(text) if end < 0 else end) + 1
    if fields > MAX_COLUMNS:
        raise DataFileError(
            f"{str(path)!r}: its first line (the header) has {fields:,} fields; at most {MAX_COLUMNS:,} columns are "
            "read. Is it one long line of text without line breaks? Give a table with a header row (e.g. text,label) "
            "and one example per line; store wide feature vectors as .npy or .npz."
        )


def _parse_hint(kind: str, exc: BaseException) -> str:
    """How to fix a file the parser refused, by kind."""
    if kind in ("csv", "tsv"):
        if "No columns to parse" in str(exc):
            return "It holds no header row: give a file with a header row (e.g. text,label) and one example per row."
        sep = "a tab" if kind == "tsv" else "a comma"
        return (
            f"Check the quoting near that line: quote every field that holds {sep} or a line break, close every "
            'opening quote, and write a quote inside a quoted field as "".'
        )
    if kind == "parquet":
        return "It is truncated or not Parquet: re-save it (e.g. df.to_parquet(path)) or copy it again."
    return 'Write a JSON array of objects, e.g. [{"text": "great film", "label": "pos"}], or use .jsonl.'


def parse_error(path: Path, kind: str, exc: BaseException) -> DataFileError:
    """The parser's complaint about `path` (first line) and how to fix a file of that kind."""
    return DataFileError(f"Cannot parse {str(path)!r} as {kind.upper()}: {_first_line(exc)}. {_parse_hint(kind, exc)}")


def table_kind(path: Path) -> str:
    """How `path` is read ("csv", "tsv", "jsonl", "json" or "parquet"), once it is known to be a non-empty file."""
    if not path.exists():
        raise DataFileError(f"Data file {str(path)!r} does not exist. Check the path (relative to {Path.cwd()}).")
    if path.is_dir():
        raise DataFileError(
            f"{str(path)!r} is a directory; text data must be one file (.csv, .tsv, .jsonl, .json or .parquet)."
        )
    if not path.is_file():  # opening a named pipe would wait forever for a writer
        raise DataFileError(
            f"{str(path)!r} is not a regular file (a named pipe, socket or device). Save the data to a regular file "
            "and pass that."
        )
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataFileError(
            f"Cannot read {str(path)!r}: unknown file type {path.suffix!r}. Use one of: {', '.join(sorted(SUFFIXES))}."
        )
    if path.stat().st_size == 0:
        raise DataFileError(f"Data file {str(path)!r} is empty (0 bytes). Give a file with a header row and examples.")
    return kind


def read_table(path: str | Path):
    """Read a data file into a DataFrame. CSV/TSV cells are read as strings (labels are typed later)."""
    import pandas as pd

    path = Path(path)
    kind = table_kind(path)
    try:
        if kind == "parquet":
            frame = pd.read_parquet(path)
        else:
            text = _decode_utf8(path, path.read_bytes())
            if kind in ("csv", "tsv"):
                _check_width(path, text, "\t" if kind == "tsv" else ",")
                frame = pd.read_csv(
                    io.StringIO(text), sep="\t" if kind == "tsv" else ",", dtype=str, keep_default_na=False
                )
            else:
                if kind == "jsonl":
                    _check_json_lines(path, text, parse=False)
                frame = pd.read_json(io.StringIO(text), lines=kind == "jsonl")
    except DataFileError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many parser error types
        if kind == "jsonl":
            _check_json_lines(path, text, parse=True)
        raise parse_error(path, kind, exc) from None
    if len(frame) == 0:
        raise DataFileError(f"Data file {str(path)!r} has a header but no rows. Add labelled examples.")
    frame = frame.loc[:, [c for c in frame.columns if not str(c).startswith("Unnamed: ")]]
    return frame
