"""Feature-vector cases: .npz/.npy arrays and numeric tables with NaN/inf, overflow, pickles, bad shapes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bad_inputs.case import Case, Writer

ROWS, WIDTH = 24, 4
MARKER = "unpickled.txt"  # created if a pickled array were ever loaded


def features(seed: int = 0):
    """(X [ROWS, WIDTH] float32, y 0/1): two separable blobs."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y = np.arange(ROWS) % 2
    x = rng.normal(size=(ROWS, WIDTH)).astype(np.float32) + 3.0 * y[:, None]
    return x, y


def _npz(name: str, change=None) -> Writer:
    """Writes `name` (np.savez X, y); `change(X, y) -> dict` alters the arrays first."""

    def write(folder: Path) -> Path:
        import numpy as np

        folder.mkdir(parents=True, exist_ok=True)
        x, y = features()
        arrays = change(x, y) if change else {"X": x, "y": y}
        np.savez(folder / name, **arrays)
        return folder / name

    return write


def _table(name: str, change=None) -> Writer:
    """Writes a CSV f0..f3,label; `change(lines)` edits the text lines (line 0 is the header)."""

    def write(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        x, y = features()
        lines = [",".join([f"f{j}" for j in range(WIDTH)] + ["label"])]
        lines += [",".join([f"{v:.4f}" for v in row] + [("a", "b")[t]]) for row, t in zip(x, y)]
        if change:
            change(lines)
        (folder / name).write_text("\n".join(lines) + "\n")
        return folder / name

    return write


def _cell(line: int, column: int, value: str) -> Callable[[list[str]], None]:
    def change(lines: list[str]) -> None:
        cells = lines[line].split(",")
        cells[column] = value
        lines[line] = ",".join(cells)

    return change


class _Trap:
    """Unpickling this creates MARKER next to the data: proof that a pickle was (or was not) loaded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _pickled(folder: Path) -> Path:
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    x, y = features()
    trap = np.array([_Trap(str(folder / MARKER))] * ROWS, dtype=object)
    np.savez(folder / "pickled.npz", X=x, y=trap)
    return folder / "pickled.npz"


def _truncated(folder: Path) -> Path:
    path = _npz("cut.npz")(folder)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _with_nan(x, y):
    x[[3, 7], 1] = float("nan")
    return {"X": x, "y": y}


def _npy(folder: Path) -> Path:
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "features.npy", features()[0])
    return folder / "features.npy"


def _empty(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.npz").write_bytes(b"")
    return folder / "empty.npz"


VECTOR_CASES = [
    Case("vector_npz_baseline", "vector", "works", "an .npz with X [24, 4] and y (the control)", _npz("train.npz")),
    Case("vector_csv_baseline", "vector", "works", "a CSV of four numeric columns and a label", _table("train.csv")),
    Case(
        "vector_onehot_labels",
        "vector",
        "works",
        "y stored as a one-hot matrix",
        _npz("onehot.npz", lambda x, y: {"X": x, "y": __import__("numpy").eye(2)[y]}),
    ),
    Case(
        "npz_nan",
        "vector",
        "error",
        "NaN features in X[3] and X[7] (arrays count rows from 0)",
        _npz("nan.npz", _with_nan),
        names="rows 3, 7",
        fix="Impute or drop",
    ),
    Case(
        "csv_inf",
        "vector",
        "error",
        "an 'inf' cell in row 5 of a feature table",
        _table("inf.csv", _cell(5, 2, "inf")),
        names="rows 5",
        fix="Impute or drop",
    ),
    Case(
        "csv_float32_overflow",
        "vector",
        "error",
        "a cell 1e39: finite in float64, infinite in float32",
        _table("huge.csv", _cell(9, 0, "1e39")),
        names="row 9",
        fix="rescale",
    ),
    Case(
        "csv_missing_cell",
        "vector",
        "error",
        "an empty feature cell in row 3",
        _table("gap.csv", _cell(3, 1, "")),
        names="rows 3",
        fix="Impute or drop",
    ),
    Case(
        "csv_non_numeric_column",
        "vector",
        "error",
        "one feature column holds a word",
        _table("word.csv", _cell(6, 3, "seven")),
        names="'f3'",
        fix="--feature-columns",
    ),
    Case(
        "npz_pickled_objects",
        "vector",
        "error",
        "an object (pickled) label array: refused, never unpickled",
        _pickled,
        names="pickled.npz",
        fix="object arrays are refused",
    ),
    Case(
        "npz_no_x_key",
        "vector",
        "error",
        "arrays saved as 'a' and 'b' instead of X and y",
        _npz("keys.npz", lambda x, y: {"a": x, "b": y}),
        names="'a', 'b'",
        fix="np.savez(path, X=",
    ),
    Case("npz_truncated", "vector", "error", "an .npz cut in half", _truncated, names="cut.npz", fix="np.savez"),
    Case("zero_byte_npz", "vector", "error", "an empty (0-byte) .npz", _empty, names="empty.npz", fix="np.savez"),
    Case(
        "npz_length_mismatch",
        "vector",
        "error",
        "24 rows of X, 20 labels",
        _npz("short_y.npz", lambda x, y: {"X": x, "y": y[:20]}),
        names="20 labels",
        fix="one label per row",
    ),
    Case(
        "npz_3d_features",
        "vector",
        "error",
        "X of shape (24, 2, 2)",
        _npz("cube.npz", lambda x, y: {"X": x.reshape(ROWS, 2, 2), "y": y}),
        names="(24, 2, 2)",
        fix="(rows x features)",
    ),
    Case(
        "npy_without_labels",
        "vector",
        "error",
        "a .npy of features and no labels",
        _npy,
        names="features.npy",
        fix="np.savez",
    ),
]
