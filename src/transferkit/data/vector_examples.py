"""Feature-vector examples: numeric tables (every column but the label, or --feature-columns) and arrays."""

from __future__ import annotations

from typing import Any

from transferkit.data.examples import LABEL_COLUMNS, TEXT_COLUMNS, ExampleSet, LoadOptions, _clean_labels, _pick_column
from transferkit.errors import DataError
from transferkit.registry import closest_match_hint


def label_column(columns: list[str], options: LoadOptions) -> str | None:
    """The label column of a feature table (None when predicting on a table without one)."""
    try:
        return _pick_column(columns, options.label, LABEL_COLUMNS, "label", "--label-column / label=")
    except DataError:
        if options.need_labels or options.label is not None:
            raise
        return None


def is_vector_table(frame, columns: list[str], options: LoadOptions) -> bool:
    from transferkit.data.vectors import looks_numeric

    if options.modality == "vector" or options.features:
        return True
    if options.modality is not None or options.text is not None or any(c.lower() in TEXT_COLUMNS for c in columns):
        return False
    rest = [c for c in columns if c.lower() not in LABEL_COLUMNS and c != options.label]
    return looks_numeric(frame, rest)


def vector_table(frame, columns: list[str], options: LoadOptions, source: str) -> ExampleSet:
    from transferkit.data.vectors import numeric_columns

    label_col = label_column(columns, options)
    if options.features:
        missing = [c for c in options.features if c not in columns]
        if missing:
            raise DataError(
                f"{source} lacks feature column(s) {', '.join(map(repr, missing[:10]))}"
                f"{closest_match_hint(missing[0], columns)} Columns found: {', '.join(map(repr, columns))}."
            )
        features = list(options.features)
    else:
        features = [c for c in columns if c != label_col]
    if not features:
        raise DataError(f"{source} has no feature columns besides the label column {label_col!r}.")
    matrix = numeric_columns(frame.reset_index(drop=True), features, source)
    labels = _clean_labels(frame[label_col].tolist(), source, options) if label_col is not None else None
    return ExampleSet(list(matrix), labels, source, "vector", columns=features)


def vector_set(data: Any, labels: Any, source: str, options: LoadOptions) -> ExampleSet:
    from transferkit.data.vectors import as_matrix, labels_from_array

    matrix = as_matrix(data, source)
    if labels is None and options.need_labels:
        raise DataError(f"{source}: labels are missing: pass them as the second argument, e.g. fit(X, y).")
    if labels is not None:
        raw = labels_from_array(labels, len(matrix), source, multi_hot=options.task == "multilabel")
        labels = _clean_labels(raw, "the labels", options)
    return ExampleSet(list(matrix), labels, source, "vector")
