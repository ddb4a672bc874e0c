"""Text and table cases: CSV/TSV/JSONL/Parquet files with broken syntax, encodings, labels or sizes."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from bad_inputs.case import Case, Writer

POSITIVE = ("good", "great", "love", "excellent", "fun", "nice")
NEGATIVE = ("bad", "awful", "hate", "boring", "poor", "sad")


def rows(n: int = 16) -> list[tuple[str, str]]:
    """n (text, label) rows, alternating two classes, that a tiny model can learn."""
    out = []
    for i in range(n):
        words = POSITIVE if i % 2 == 0 else NEGATIVE
        out.append((f"the film was {words[i % 6]} and {words[(i + 2) % 6]} {i}", "pos" if i % 2 == 0 else "neg"))
    return out


def write_csv(path: Path, table: list[tuple], header: tuple[str, ...] = ("text", "label"), **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding=options.pop("encoding", "utf-8")) as handle:
        writer = csv.writer(handle, **options)
        writer.writerow(header)
        writer.writerows(table)
    return path


def _text(name: str, content: str | bytes) -> Writer:
    """A writer of one file `name` holding `content` (bytes as they are, text as UTF-8)."""

    def write(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return path

    return write


def _table(name: str, table: list[tuple], header: tuple[str, ...] = ("text", "label")) -> Writer:
    return lambda folder: write_csv(folder / name, table, header)


def _csv_body(table: list[tuple]) -> str:
    return "text,label\n" + "".join(f"{t},{y}\n" for t, y in table)


def _newlines_and_quotes(folder: Path) -> Path:
    table = [(f'He said "{t}"\nthen, after a pause: ""{y}""\r\nend', y) for t, y in rows()]
    return write_csv(folder / "quoted.csv", table, quoting=csv.QUOTE_ALL)


def _unclosed_quote(folder: Path) -> Path:
    body = _csv_body(rows(6)) + '"this text never closes its quote,pos\n' + _csv_body(rows(6)).split("\n", 1)[1]
    return _text("unclosed.csv", body)(folder)


def _ragged(folder: Path) -> Path:
    lines = _csv_body(rows(8)).splitlines()
    lines[5] = "an unquoted, comma inside,neg"  # three fields in a two-column file (line 6 of the file)
    return _text("ragged.csv", "\n".join(lines) + "\n")(folder)


def _latin1(folder: Path) -> Path:
    table = rows()
    table[3] = ("un film très réussi, café crème", "pos")
    return write_csv(folder / "latin1.csv", table, encoding="latin-1")


def _utf16(bom: bool) -> Writer:
    def write(folder: Path) -> Path:
        text = _csv_body(rows()).replace("film", "fílm")
        data = text.encode("utf-16") if bom else text.encode("utf-16-le")  # "utf-16" writes a BOM
        return _text("utf16.csv" if bom else "utf16_nobom.csv", data)(folder)

    return write


def _huge_cell(folder: Path) -> Path:
    table = rows()
    table[0] = ("good " * 2_000_000 + "end", "pos")  # one 10 MB text
    return write_csv(folder / "huge_cell.csv", table)


def _huge_line(folder: Path) -> Path:
    return _text("one_line.csv", "text" + ",good" * 2_500_000)(folder)  # 10 MB, no line break


def _jsonl(name: str, records: list) -> Writer:
    return _text(name, "".join(json.dumps(r) + "\n" for r in records))


def _mixed_jsonl() -> Writer:
    records = [{"text": t, "label": y} for t, y in rows()]
    records[5]["label"] = 3
    return _jsonl("mixed.jsonl", records)


def _bad_jsonl(folder: Path) -> Path:
    lines = [json.dumps({"text": t, "label": y}) for t, y in rows()]
    lines[6] = '{"text": "missing its closing brace", "label": "pos"'
    return _text("broken.jsonl", "\n".join(lines) + "\n")(folder)


def _parquet(folder: Path, cut: bool) -> Path:
    import pandas as pd

    path = folder / ("truncated.parquet" if cut else "garbage.parquet")
    folder.mkdir(parents=True, exist_ok=True)
    if not cut:
        path.write_bytes(b"PAR1" + os.urandom(64))
        return path
    pd.DataFrame(rows(), columns=["text", "label"]).to_parquet(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _fifo(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pipe.csv"
    os.mkfifo(path)  # opening it would wait forever for a writer
    return path


def _labels(table_labels: list[str]) -> list[tuple[str, str]]:
    return [(t, table_labels[i % len(table_labels)]) for i, (t, _) in enumerate(rows())]


_good = rows()
TEXT_CASES = [
    Case("text_baseline", "text", "works", "a plain two-class CSV (the control)", _table("train.csv", _good)),
    Case(
        "csv_newlines_and_quotes",
        "text",
        "works",
        "quoted cells with embedded newlines, CRLF and doubled quotes",
        _newlines_and_quotes,
    ),
    Case(
        "csv_bom_crlf",
        "text",
        "works",
        "UTF-8 with a byte-order mark and CRLF line ends",
        _text("bom.csv", "\ufeff" + _csv_body(_good).replace("\n", "\r\n")),
    ),
    Case(
        "utf16_with_bom",
        "text",
        "works",
        "UTF-16 with a BOM (Excel's 'Unicode text'): decoded by its BOM",
        _utf16(bom=True),
    ),
    Case(
        "json_array",
        "text",
        "works",
        "a .json array of objects instead of JSON lines",
        _text("train.json", json.dumps([{"text": t, "label": y} for t, y in _good])),
    ),
    Case(
        "labels_mixed_types_csv",
        "text",
        "works",
        "CSV labels '1', '2', 'other': all read as class names",
        _table("mixed.csv", _labels(["1", "2", "other"])),
    ),
    Case(
        "text_10mb_cell",
        "text",
        "warning",
        "one 10 MB text cell: cut before tokenising, trains quickly; the data check says texts will be cut",
        _huge_cell,
        names="will be cut",
    ),
    Case(
        "labels_case_whitespace",
        "text",
        "warning",
        "labels 'pos', 'Pos ', ' POS' differ only by case/spacing",
        _table("variants.csv", _labels(["pos", "neg", "Pos ", " POS"])),
        names="case or spacing",
    ),
    Case(
        "csv_unclosed_quote",
        "text",
        "error",
        "a quote opened on row 7 is never closed",
        _unclosed_quote,
        names="unclosed.csv",
        fix="quote",
    ),
    Case(
        "csv_ragged_rows",
        "text",
        "error",
        "line 6 has three fields in a two-column file",
        _ragged,
        names="line 6",
        fix="quote",
    ),
    Case(
        "non_utf8_latin1",
        "text",
        "error",
        "Latin-1 bytes (é) in a CSV read as UTF-8",
        _latin1,
        names="line 5",
        fix="iconv",
    ),
    Case(
        "utf16_without_bom",
        "text",
        "error",
        "UTF-16 without a BOM: NUL bytes everywhere",
        _utf16(bom=False),
        names="utf16_nobom.csv",
        fix="iconv",
    ),
    Case(
        "binary_as_csv",
        "text",
        "error",
        "PNG bytes saved as .csv",
        _text("image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))),
        names="image.csv",
        fix="iconv",
    ),
    Case(
        "zero_byte_csv",
        "text",
        "error",
        "an empty (0-byte) CSV",
        _text("empty.csv", b""),
        names="empty.csv",
        fix="header row",
    ),
    Case(
        "blank_lines_csv",
        "text",
        "error",
        "a CSV of blank lines only",
        _text("blank.csv", "\n \n\n"),
        names="blank.csv",
        fix="header row",
    ),
    Case(
        "header_only_csv",
        "text",
        "error",
        "a header and no rows",
        _text("header.csv", "text,label\n"),
        names="header.csv",
        fix="Add labelled examples",
    ),
    Case(
        "single_line_10mb",
        "text",
        "error",
        "a 10 MB file with no line break: 2.5 million header fields",
        _huge_line,
        names="one_line.csv",
        fix="one example per line",
    ),
    Case(
        "labels_mixed_types_jsonl",
        "text",
        "error",
        "JSON labels 'pos', 'neg' and the number 3",
        _mixed_jsonl(),
        names="row 6",
        fix="one type",
    ),
    Case(
        "label_all_one_value",
        "text",
        "error",
        "every row has the label 'pos'",
        _table("one_class.csv", _labels(["pos"])),
        names="single class",
        fix="Add examples of other classes",
    ),
    Case(
        "labels_missing",
        "text",
        "error",
        "rows 3 and 9 have an empty label",
        _table("no_label.csv", [(t, "" if i in (2, 8) else y) for i, (t, y) in enumerate(_good)]),
        names="rows 3, 9",
        fix="Fill in or drop",
    ),
    Case(
        "texts_empty",
        "text",
        "error",
        "rows 2 and 4 have empty or blank texts",
        _table("blank_text.csv", [("  " if i in (1, 3) else t, y) for i, (t, y) in enumerate(_good)]),
        names="rows 2, 4",
        fix="Drop or fill",
    ),
    Case(
        "no_label_column",
        "text",
        "error",
        "columns 'text' and 'comment': which one is the label?",
        _table("nolabel.csv", _good, header=("text", "comment")),
        names="nolabel.csv",
        fix="--label-column",
    ),
    Case(
        "bad_jsonl_line",
        "text",
        "error",
        "line 7 of a JSONL file is not valid JSON",
        _bad_jsonl,
        names="line 7",
        fix="one JSON object per line",
    ),
    Case(
        "jsonl_not_objects",
        "text",
        "error",
        "JSON lines that are plain strings, not objects",
        _jsonl("strings.jsonl", [t for t, _ in _good]),
        names="strings.jsonl",
        fix="one JSON object per line",
    ),
    Case(
        "garbage_parquet",
        "text",
        "error",
        "'PAR1' and random bytes with a .parquet name",
        lambda folder: _parquet(folder, cut=False),
        names="garbage.parquet",
        fix="re-save",
    ),
    Case(
        "truncated_parquet",
        "text",
        "error",
        "a Parquet file cut in half",
        lambda folder: _parquet(folder, cut=True),
        names="truncated.parquet",
        fix="re-save",
    ),
    Case(
        "unknown_extension",
        "text",
        "error",
        "a spreadsheet (.xlsx)",
        _text("train.xlsx", b"PK\x03\x04"),
        names=".xlsx",
        fix="Use one of",
    ),
    Case(
        "fifo_as_csv",
        "text",
        "error",
        "a named pipe called pipe.csv (reading it would hang)",
        _fifo,
        names="pipe.csv",
        fix="regular file",
    ),
    Case(
        "check_label_variants",
        "text",
        "warning",
        "`transferkit check` on labels that differ only by case/spacing: reported, exit 0",
        _table("variants.csv", _labels(["pos", "neg", "Pos ", " POS"])),
        names="case or spacing",
        command="check",
    ),
    Case(
        "check_unclosed_quote",
        "text",
        "error",
        "`transferkit check` on a CSV whose quote never closes: exit 2, as fit",
        _unclosed_quote,
        names="unclosed.csv",
        fix="quote",
        command="check",
    ),
]
