"""ExampleSet: texts with their labels, built from any supported source and checked before training."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferkit.errors import DataError
from transferkit.registry import closest_match_hint

TEXT_COLUMNS = ("text", "sentence", "sentences", "review", "content", "document", "body", "utterance", "input")
LABEL_COLUMNS = ("label", "labels", "class", "category", "target", "rating", "sentiment", "y")
_INT = re.compile(r"^-?\d+$")


@dataclass
class ExampleSet:
    """Inputs and (optionally) labels, with a description of where they came from for error messages."""

    texts: list[str]
    labels: list[Any] | None
    source: str

    def __len__(self) -> int:
        return len(self.texts)

    def fingerprint(self) -> str:
        """Content hash of inputs and labels: the same data gives the same fingerprint."""
        digest = hashlib.sha256()
        for i, text in enumerate(self.texts):
            digest.update(text.encode("utf-8"))
            digest.update(b"\x1f")
            if self.labels is not None:
                digest.update(json.dumps(self.labels[i]).encode())
            digest.update(b"\x1e")
        return digest.hexdigest()[:16]

    def subset(self, indices: Sequence[int]) -> ExampleSet:
        labels = None if self.labels is None else [self.labels[i] for i in indices]
        return ExampleSet([self.texts[i] for i in indices], labels, self.source)

    def class_counts(self) -> dict[Any, int]:
        counts: dict[Any, int] = {}
        for label in self.labels or []:
            counts[label] = counts.get(label, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: str(kv[0])))


def _pick_column(columns: list[str], wanted: str | None, candidates: tuple[str, ...], role: str, flag: str) -> str:
    if wanted is not None:
        if wanted in columns:
            return wanted
        raise DataError(
            f"Column {wanted!r} (the {role} column) is not in the data.{closest_match_hint(wanted, columns)} "
            f"Columns found: {', '.join(map(repr, columns))}. Pass the right name with {flag}."
        )
    lowered = {str(c).lower(): c for c in columns}
    for candidate in candidates:
        if candidate in lowered:
            return lowered[candidate]
    raise DataError(
        f"Cannot tell which column holds the {role}s: none is named {' / '.join(candidates[:4])}. "
        f"Columns found: {', '.join(map(repr, columns))}. Name it with {flag}."
    )


def _python_scalar(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _clean_labels(raw: list[Any], source: str) -> list[Any]:
    missing = [i for i, v in enumerate(raw) if v is None or (isinstance(v, float) and v != v) or v == ""]
    if missing:
        rows = ", ".join(str(i + 1) for i in missing[:10])
        raise DataError(f"{source}: {len(missing)} example(s) have no label (rows {rows}). Fill in or drop them.")
    labels = [_python_scalar(v) for v in raw]
    if all(isinstance(v, str) for v in labels) and all(_INT.match(v) for v in labels):
        labels = [int(v) for v in labels]  # CSV cells arrive as strings; integer classes stay integers
    labels = [int(v) if isinstance(v, float) and v.is_integer() else v for v in labels]
    kinds = {type(v).__name__ for v in labels}
    if len(kinds) > 1:
        raise DataError(
            f"{source}: the label column mixes types ({', '.join(sorted(kinds))}). Use one type for all labels."
        )
    if kinds - {"int", "str", "bool"}:
        raise DataError(f"{source}: labels must be class names or integers, got {kinds.pop()} values.")
    return labels


def _check_texts(texts: list[Any], source: str) -> list[str]:
    bad_type = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad_type:
        i = bad_type[0]
        raise DataError(
            f"{source}: {len(bad_type)} input(s) are not strings (row {i + 1} is {type(texts[i]).__name__}: "
            f"{texts[i]!r}). Text inputs must be strings; convert them or drop those rows."
        )
    empty = [i for i, t in enumerate(texts) if not t.strip()]
    if empty:
        rows = ", ".join(str(i + 1) for i in empty[:10])
        raise DataError(
            f"{source}: {len(empty)} text(s) are empty or whitespace only (rows {rows}). Drop or fill them."
        )
    return texts


def _from_frame(frame, text: str | None, label: str | None, need_labels: bool, source: str) -> ExampleSet:
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    text_col = _pick_column(columns, text, TEXT_COLUMNS, "text", "--text-column / text=")
    labels = None
    if need_labels or label is not None or any(c.lower() in LABEL_COLUMNS for c in columns if c != text_col):
        try:
            label_col = _pick_column(
                [c for c in columns if c != text_col], label, LABEL_COLUMNS, "label", "--label-column / label="
            )
            labels = _clean_labels(frame[label_col].tolist(), source)
        except DataError:
            if need_labels or label is not None:
                raise
    return ExampleSet(_check_texts(frame[text_col].tolist(), source), labels, source)


def _from_hf_dataset(dataset, text: str | None, label: str | None, need_labels: bool) -> ExampleSet:
    frame = dataset.to_pandas()
    for name, feature in dataset.features.items():
        names = getattr(feature, "names", None)  # ClassLabel: integer ids -> class names
        if names is not None:
            frame[name] = [names[i] if i is not None and i >= 0 else None for i in frame[name]]
    return _from_frame(frame, text, label, need_labels, "the Hugging Face dataset")


def load_examples(
    data: Any,
    labels: Sequence[Any] | None = None,
    *,
    text: str | None = None,
    label: str | None = None,
    need_labels: bool = True,
) -> ExampleSet:
    """Build an ExampleSet from a file path, DataFrame, `datasets.Dataset`, or a list of strings (+ labels)."""
    import pandas as pd

    if isinstance(data, ExampleSet):
        return data
    if isinstance(data, (str, Path)):  # a path; a single text to predict goes through `as_texts`
        from transferkit.data.tables import read_table

        return _from_frame(read_table(data), text, label, need_labels, f"{str(data)!r}")
    if isinstance(data, pd.DataFrame):
        if len(data) == 0:
            raise DataError("The DataFrame has no rows. Pass labelled examples.")
        return _from_frame(data.copy(), text, label, need_labels, "the DataFrame")
    if hasattr(data, "to_pandas") and hasattr(data, "features"):
        return _from_hf_dataset(data, text, label, need_labels)
    if not isinstance(data, (list, tuple)) and not hasattr(data, "__array__"):
        raise DataError(
            f"Cannot use data of type {type(data).__name__}. Pass a file path (.csv/.tsv/.jsonl/.parquet), a pandas "
            "DataFrame, a datasets.Dataset, or a list of strings with a list of labels."
        )
    texts = list(data)
    if not texts:
        raise DataError("No examples were given (the list is empty). Pass at least two labelled examples.")
    if labels is None:
        if need_labels:
            raise DataError("Labels are missing: pass them as the second argument, e.g. fit(texts, labels).")
        return ExampleSet(_check_texts(texts, "the inputs"), None, "the inputs")
    labels = list(labels)
    if len(labels) != len(texts):
        raise DataError(f"Got {len(texts)} texts but {len(labels)} labels; pass one label per text.")
    return ExampleSet(_check_texts(texts, "the inputs"), _clean_labels(labels, "the labels"), "the inputs")
