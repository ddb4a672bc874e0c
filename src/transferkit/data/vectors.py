"""Feature vectors: NumPy arrays, .npy/.npz files and numeric table columns, checked before anything trains.

Rows are kept as float32 1-D arrays (one per example). Every check names what is wrong and where: NaN or
infinite values (rows and columns), non-numeric columns, label arrays that are neither one class index per
row nor a one-hot matrix, X and y of different lengths.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from transferkit.errors import DataError, DataFileError

ARRAY_SUFFIXES = (".npy", ".npz")
X_KEYS = ("X", "x", "features", "data", "inputs")
Y_KEYS = ("y", "Y", "labels", "label", "targets", "target")
SHOWN = 10  # rows/columns named in an error message


def _listing(values, names: list[str] | None = None) -> str:
    shown = [names[i] if names else str(i) for i in values[:SHOWN]]
    return ", ".join(shown) + (f" (and {len(values) - SHOWN} more)" if len(values) > SHOWN else "")


def as_matrix(data: Any, source: str, columns: list[str] | None = None):
    """A float32 [rows, features] matrix of finite numbers, or a DataError saying which rows/columns are bad.

    Rows are named as the user counts them: array indices (from 0) for arrays, table rows (from 1, as in every
    other message about a data file) when `columns` says the data was a table.
    """
    import numpy as np

    array = np.asarray(data)
    if array.dtype == object:
        raise DataError(
            f"{source}: the features are not all numbers (an object array, e.g. {array.flat[0]!r}). Vector data "
            "needs numeric values in every feature; encode or drop the other columns."
        )
    if array.ndim != 2:
        raise DataError(
            f"{source}: features must be a 2-D array (rows x features), got shape {array.shape}. "
            "For one example use shape (1, n_features)."
        )
    if array.dtype.kind not in "biuf":
        raise DataError(f"{source}: features must be numbers, got dtype {array.dtype}.")
    wide = array.dtype.kind == "f" and array.dtype.itemsize > 4 and np.isfinite(array).all()
    with np.errstate(over="ignore"):  # an overflow is reported below, with its row and column
        array = array.astype(np.float32, copy=False)
    bad = ~np.isfinite(array)
    if wide and bad.any():  # finite before the cast: the values are beyond float32's range (3.4e38)
        row, col = np.argwhere(bad)[0]
        where = columns[col] if columns else str(col)
        raise DataError(
            f"{source}: {int(bad.sum())} feature value(s) overflow float32 (beyond +-3.4e38; the first at row "
            f"{row + (1 if columns else 0)}, "
            f"column {where}). Features are float32: rescale them (e.g. log or divide by a constant) or drop them."
        )
    if bad.any():
        rows, cols = np.flatnonzero(bad.any(axis=1)) + (1 if columns else 0), np.flatnonzero(bad.any(axis=0))
        raise DataError(
            f"{source}: {len(rows)} row(s) have NaN or infinite features (rows {_listing(rows)}; "
            f"columns {_listing(cols, columns)}). Impute or drop them before training."
        )
    return array


def labels_from_array(labels: Any, rows: int, source: str, multi_hot: bool = False) -> list[Any]:
    """One label per row: class indices / names, or a one-hot matrix converted to indices; with `multi_hot`
    (multi-label tasks), a 0/1 matrix becomes each row's tuple of column indices."""
    import numpy as np

    if multi_hot and not hasattr(labels, "shape") and any(isinstance(v, (list, tuple, set)) for v in labels):
        if len(labels) != rows:  # label lists, one per row (ragged: no array)
            raise DataError(f"{source}: X has {rows} rows but y has {len(labels)} labels; pass one label per row.")
        return list(labels)
    array = np.asarray(labels)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim == 2 and multi_hot and array.dtype.kind in "biuf" and np.isin(array, (0, 1)).all():
        if len(array) != rows:
            raise DataError(f"{source}: X has {rows} rows but y has {len(array)} label rows; pass one per row.")
        return [tuple(int(j) for j in np.flatnonzero(row)) for row in array]
    if array.ndim == 2:
        one_hot = array.dtype.kind in "biuf" and np.isin(array, (0, 1)).all() and (array.sum(axis=1) == 1).all()
        if not one_hot:
            raise DataError(
                f"{source}: the labels have shape {array.shape} ({array.shape[1]} values per row) but are not a "
                f"one-hot matrix; row 0 is {np.array2string(array[0][:12], separator=', ')}. Labels must be one "
                f"class index per row, shape ({rows},) (e.g. rng.integers(0, n_classes, size={rows})), or a one-hot "
                "matrix with a single 1 per row."
            )
        array = array.argmax(axis=1)
    if array.ndim != 1:
        raise DataError(f"{source}: labels must be one class per row, got an array of shape {array.shape}.")
    if len(array) != rows:
        raise DataError(f"{source}: X has {rows} rows but y has {len(array)} labels; pass one label per row.")
    return array.tolist()


def read_arrays(path: Path) -> tuple[Any, Any]:
    """(X, y or None) from a .npy (X only) or a .npz holding X and y under the usual names. Pickled (object)
    arrays are refused without being unpickled: an .npz member is only read when asked for, so that is in here."""
    import numpy as np

    if not path.is_file():
        raise DataFileError(f"Data file {str(path)!r} does not exist. Check the path (relative to {Path.cwd()}).")
    try:
        loaded = np.load(path, allow_pickle=False)
        if path.suffix == ".npy":
            return loaded, None
        with loaded:
            keys = list(loaded.keys())
            x_key = next((k for k in X_KEYS if k in keys), None)
            y_key = next((k for k in Y_KEYS if k in keys), None)
            arrays = (loaded[x_key], loaded[y_key] if y_key else None) if x_key is not None else None
    except Exception as exc:  # noqa: BLE001 - pickled object arrays, truncated files, not NumPy at all
        raise DataFileError(
            f"Cannot read {str(path)!r} as NumPy data ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})."
            " Save plain numeric arrays with np.save / np.savez, e.g. np.savez(path, X=features, y=labels) (object "
            "arrays are refused: loading them would run pickled code)."
        ) from None
    if arrays is None:
        raise DataFileError(
            f"{str(path)!r} holds arrays {', '.join(map(repr, keys))} but none is named {' / '.join(X_KEYS)}. "
            "Save the features as X, e.g. np.savez(path, X=features, y=labels)."
        )
    return arrays


def numeric_columns(frame, columns: list[str], source: str):
    """The named columns of a table as a float matrix; a non-numeric column is an error naming a bad cell."""
    import pandas as pd

    values = []
    for column in columns:
        raw = frame[column]
        parsed = pd.to_numeric(raw.replace("", None), errors="coerce")
        wrong = raw[parsed.isna() & raw.notna() & (raw != "")]
        if len(wrong):
            row = int(wrong.index[0])
            raise DataError(
                f"{source}: column {column!r} is not numeric (row {row + 1} holds {wrong.iloc[0]!r}; {len(wrong)} "
                "such cell(s)). Vector data needs numbers in every feature column: encode it (e.g. one-hot), drop "
                "it, or list the feature columns with --feature-columns. If this is text data, name the text column "
                "with --text-column."
            )
        values.append(parsed.to_numpy(dtype="float64", na_value=float("nan")))
    import numpy as np

    return as_matrix(np.stack(values, axis=1), source, columns)


def looks_numeric(frame, columns: list[str], sample: int = 20) -> bool:
    """Most columns parse as numbers in the first rows: a feature table rather than a text table."""
    import pandas as pd

    if not columns:
        return False

    def numeric(column) -> bool:
        values = frame[column].head(sample)
        present = values[values.notna() & (values != "")]  # missing cells do not make a column text
        return len(present) > 0 and bool(pd.to_numeric(present, errors="coerce").notna().all())

    return sum(numeric(c) for c in columns) > len(columns) / 2


def row_digest(row: Any) -> bytes:
    import numpy as np

    array = np.ascontiguousarray(row, dtype=np.float32)
    return hashlib.blake2b(array.tobytes() + str(array.shape).encode(), digest_size=16).digest()


def is_vector_row(value: Any) -> bool:
    """A 1-D NumPy array, or a list/tuple of plain numbers: one feature vector."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.ndim == 1 and value.dtype.kind in "biuf"
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    )
