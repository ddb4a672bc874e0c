"""Labels as each task reads them: one class per row (classification), a set of labels per row (multilabel) or
a number per row (regression). Bad values are reported with the rows that hold them."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from transferkit.errors import DataError

_INT = re.compile(r"^-?\d+$")
REGRESSION_HINT = 20  # distinct non-integer numbers above which a classification label column looks like a target


def python_scalar(value: Any) -> Any:
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _rows(indices: list[int]) -> str:
    return ", ".join(str(i + 1) for i in indices[:10]) + (" ..." if len(indices) > 10 else "")


def clean_labels(raw: list[Any], source: str, task: str = "classification", separator: str = "|") -> list[Any]:
    """Labels of `task`: class names/ints, tuples of label strings (sorted, unique) or floats."""
    if task == "multilabel":
        return multilabel_labels(raw, source, separator)
    if task == "regression":
        return regression_targets(raw, source)
    return classification_labels(raw, source)


def classification_labels(raw: list[Any], source: str) -> list[Any]:
    missing = [i for i, v in enumerate(raw) if _is_missing(v) or (isinstance(v, str) and v == "")]
    if missing:
        raise DataError(
            f"{source}: {len(missing)} example(s) have no label (rows {_rows(missing)}). Fill in or drop them."
        )
    labels = [python_scalar(v) for v in raw]
    if any(isinstance(v, (list, tuple)) for v in labels):
        raise DataError(
            f"{source}: the labels are lists (several labels per example); for a multi-label task pass "
            "--task multilabel (task='multilabel')."
        )
    if all(isinstance(v, str) for v in labels) and all(_INT.match(v) for v in labels):
        labels = [int(v) for v in labels]  # CSV cells arrive as strings; integer classes stay integers
    labels = [int(v) if isinstance(v, float) and v.is_integer() else v for v in labels]
    kinds = {type(v).__name__ for v in labels}
    numeric_hint = " For a numeric target, train with --task regression (task='regression')."
    if len(kinds) > 1:
        hint = numeric_hint if kinds <= {"int", "float"} else ""
        counts = {kind: sum(type(v).__name__ == kind for v in labels) for kind in kinds}
        usual = max(sorted(kinds), key=counts.get)
        odd = next(i for i, v in enumerate(labels) if type(v).__name__ != usual)
        raise DataError(
            f"{source}: the label column mixes types ({', '.join(sorted(kinds))}): row {odd + 1} holds "
            f"{type(labels[odd]).__name__} {labels[odd]!r} where {counts[usual]} rows hold {usual}. Use one type for "
            f'all labels (e.g. quote numbers in JSON: "3").{hint}'
        )
    if kinds - {"int", "str", "bool"}:
        raise DataError(f"{source}: labels must be class names or integers, got {kinds.pop()} values.{numeric_hint}")
    return labels


def _split_cell(value: Any, separator: str) -> list[Any]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(separator) if part.strip()]
    if isinstance(value, (list, tuple, set, frozenset)) or (hasattr(value, "tolist") and hasattr(value, "ndim")):
        items = [python_scalar(v) for v in (value.tolist() if hasattr(value, "tolist") else list(value))]
        return [v.strip() if isinstance(v, str) else v for v in items if not (isinstance(v, str) and not v.strip())]
    return [python_scalar(value)]


def multilabel_labels(raw: list[Any], source: str, separator: str = "|") -> list[tuple]:
    """Each row's labels as a sorted tuple without repeats; a string cell is split at `separator`. An empty cell
    (also a missing one: CSV readers turn empty cells into NaN) means no labels."""
    rows = [[] if _is_missing(value) else _split_cell(value, separator) for value in raw]
    values = [v for row in rows for v in row]
    if values and all(isinstance(v, int) or (isinstance(v, str) and _INT.match(v)) for v in values):
        rows = [[int(v) for v in row] for row in rows]  # "1|3" from a CSV and [2] from JSON: the same kind
    kinds = {type(v).__name__ for row in rows for v in row}
    if kinds - {"int", "str"} or len(kinds) > 1:
        first = next(iter(sorted(kinds & {"int", "str"}) or ["str"]))
        bad = next(i for i, row in enumerate(rows) if any(type(v).__name__ != first for v in row))
        raise DataError(
            f"{source}: multi-label labels must be names or integers, one kind throughout; row {bad + 1} holds "
            f"{raw[bad]!r}. Write labels as '{separator}'-separated names (e.g. 'sports{separator}politics') or lists."
        )
    return [tuple(sorted(set(row))) for row in rows]


def _as_number(value: Any) -> float | None:
    value = python_scalar(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value) if value.strip() else None
        except ValueError:
            return None
    return None


def regression_targets(raw: list[Any], source: str) -> list[float]:
    """Each row's target as a float; rows that are not finite numbers are named."""
    values = [_as_number(v) for v in raw]
    bad = [i for i, v in enumerate(values) if v is None or not math.isfinite(v)]
    if bad:
        first = raw[bad[0]]
        raise DataError(
            f"{source}: {len(bad)} regression target(s) are not finite numbers (rows {_rows(bad)}; row {bad[0] + 1} "
            f"is {first!r}). Fill in or drop them, or use --task classification for class names."
        )
    return values


def looks_like_regression(labels: list[Any]) -> bool:
    """Many distinct numbers, most of them unique: a continuous target read as classes."""
    numbers = [_as_number(v) for v in labels]
    if not numbers or any(v is None for v in numbers):
        return False
    distinct = set(numbers)
    fractional = sum(not v.is_integer() for v in distinct)
    return len(distinct) > REGRESSION_HINT and (fractional > REGRESSION_HINT or len(distinct) > len(numbers) / 2)


def check_known_labels(examples, known: Sequence[Any]) -> None:
    """Refuse labels the model never saw (each label of a multi-label set; regression targets are numbers)."""
    if examples.task == "regression":
        return
    rows = examples.labels or []
    unseen = sorted(
        {y for row in rows for y in (row if examples.task == "multilabel" else (row,))} - set(known), key=str
    )
    if unseen:
        raise DataError(
            f"{examples.source} has label(s) the model never saw in training: {', '.join(map(repr, unseen[:10]))}. "
            f"Known labels: {', '.join(map(repr, known))}. Fix the labels or retrain with examples of those classes."
        )
