"""Property-based fuzzing (hypothesis) of the data loaders and of the server's request parsing.

Loaders: arbitrary bytes under every table suffix, well-formed tables with hostile cells, and DataFrames with
odd values either load (and then fingerprint) or raise a TransferkitError, never another exception. Server:
arbitrary JSON bodies (and non-JSON bytes) give a 4xx JSON error or a valid answer, never a 500; numbers
beyond float32 and non-whole or infinite top_k values are refused as bad values.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import transferkit as tk
from transferkit.errors import RequestError, TransferkitError
from transferkit.serving.config import ServeConfig
from transferkit.serving.inputs import parse_json, parse_top_k

FUZZ = settings(
    max_examples=60,
    derandomize=True,  # the same examples on every run: CI never flakes on a new draw
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
SUFFIXES = [".csv", ".tsv", ".jsonl", ".json", ".txt"]
TASKS = ["classification", "multilabel", "regression"]
ALL_CHARS = st.one_of(  # any code point, lone surrogates and controls included, with the troublemakers made likely
    st.characters(codec=None, exclude_categories=()),
    st.sampled_from(["\ud800", "\udfff", "\x00", "\ufeff", "\u2028", "\r", "\n", '"', ",", "\t", "\\"]),
)
CELL = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="\",\n\r\t\\ '{}[]#", max_size=8),  # quoting, separators, line breaks
    st.sampled_from(["", " ", "NaN", "nan", "inf", "-inf", "1e39", "NULL", "None", "0", "1", "1.5", "a.png", "x.wav"]),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
)
WEIRD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=ALL_CHARS, max_size=10),
    st.binary(max_size=6),
    st.lists(st.one_of(st.integers(-3, 3), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)

STRINGS = st.lists(ALL_CHARS, min_size=1, max_size=12).map("".join)
TEXTS = st.integers(0, 3).flatmap(lambda i: WEIRD if i == 0 else STRINGS)  # mostly strings: get past type checks
LABELS = st.integers(0, 3).flatmap(
    lambda i: WEIRD if i == 0 else st.sampled_from(["a", "b", " A ", 1, 2, "1|2", "0.5", 0.5, "3"])
)


def _load(data, task: str):
    """Load like `fit` would; a loaded set must also fingerprint (fit records it) without error."""
    try:
        examples = tk.load_examples(data, task=task)
    except TransferkitError:
        return None
    examples.fingerprint()
    assert len(examples) == len(examples.labels)
    return examples


@FUZZ
@given(raw=st.binary(max_size=400), suffix=st.sampled_from(SUFFIXES), task=st.sampled_from(TASKS))
def test_any_bytes_load_or_raise_a_transferkit_error(tmp_path, raw, suffix, task):
    path = tmp_path / f"data{suffix}"
    path.write_bytes(raw)
    _load(path, task)


@st.composite
def tables(draw):
    """A header naming text/label-like columns (or not) and rows of hostile cells, possibly ragged."""
    names = draw(
        st.lists(
            st.sampled_from(["text", "label", "labels", "y", "f1", "image", "audio", "note"]), min_size=1, max_size=4
        )
    )
    rows = draw(st.lists(st.lists(CELL, min_size=len(names) - 1, max_size=len(names) + 1), min_size=0, max_size=6))
    return names, rows


@FUZZ
@given(table=tables(), sep=st.sampled_from([",", "\t"]), task=st.sampled_from(TASKS), quote=st.booleans())
def test_csv_tables_with_hostile_cells(tmp_path, table, sep, task, quote):
    import csv
    import io

    names, rows = table
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=sep, quoting=csv.QUOTE_ALL if quote else csv.QUOTE_MINIMAL)
    writer.writerow(names)
    writer.writerows(rows)
    path = tmp_path / ("data.csv" if sep == "," else "data.tsv")
    path.write_text(buffer.getvalue(), encoding="utf-8")
    _load(path, task)


@FUZZ
@given(
    records=st.lists(
        st.fixed_dictionaries(
            {"text": TEXTS.filter(lambda v: not isinstance(v, bytes))},
            optional={"label": LABELS.filter(lambda v: not isinstance(v, bytes)), "x": st.integers()},
        ),
        max_size=6,
    ),
    task=st.sampled_from(TASKS),
)
def test_jsonl_records_with_odd_values(tmp_path, records, task):
    path = tmp_path / "data.jsonl"
    lines = [json.dumps(r, ensure_ascii=True) for r in records]  # lone surrogates travel as \ud800 escapes
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _load(path, task)


@FUZZ
@given(
    texts=st.lists(TEXTS, min_size=1, max_size=6),
    labels=st.lists(LABELS, min_size=1, max_size=6),
    task=st.sampled_from(TASKS),
)
def test_dataframes_and_lists_with_odd_values(texts, labels, task):
    n = min(len(texts), len(labels))
    frame = pd.DataFrame({"text": pd.Series(texts[:n], dtype=object), "label": pd.Series(labels[:n], dtype=object)})
    _load(frame, task)
    try:
        examples = tk.load_examples(texts[:n], labels[:n], task=task)
    except TransferkitError:
        return
    examples.fingerprint()


@FUZZ
@given(
    rows=st.lists(st.lists(st.floats(width=64), min_size=3, max_size=3), min_size=2, max_size=6),
    labels=st.lists(st.one_of(st.integers(0, 2), st.floats(), st.text(max_size=2)), min_size=2, max_size=6),
)
def test_feature_tables_with_extreme_numbers(rows, labels):
    n = min(len(rows), len(labels))
    frame = pd.DataFrame(np.asarray(rows[:n], dtype=np.float64), columns=["f0", "f1", "f2"])
    frame["label"] = pd.Series(labels[:n], dtype=object)
    loaded = _load(frame, "classification")
    if loaded is not None:
        assert np.isfinite(np.stack(loaded.inputs)).all()


# -- the server's request parsing ---------------------------------------------------------------------------------
CONFIG = ServeConfig(max_items=8, max_text_chars=200)
JSON_VALUES = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(-(10**40), 10**40), st.floats(), st.text(alphabet=ALL_CHARS, max_size=8)
    ),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=12,
)
BODIES = st.one_of(
    st.fixed_dictionaries({"inputs": JSON_VALUES}, optional={"top_k": JSON_VALUES}),
    st.fixed_dictionaries(
        {
            "inputs": st.lists(
                st.lists(st.one_of(st.floats(), st.integers(-(10**45), 10**45)), min_size=1, max_size=5),
                min_size=1,
                max_size=3,
            )
        },
        optional={"top_k": st.one_of(st.integers(-2, 5), st.floats(), st.just(10**30))},
    ),
    JSON_VALUES,
)


def _encode(body) -> bytes:
    return json.dumps(body, allow_nan=True).encode("utf-8")  # NaN/Infinity as Python's json writes them


def _well_formed_rows(inputs, width: int) -> bool:
    for row in inputs:
        for v in row:
            assert isinstance(v, (int, float)) and not isinstance(v, bool)
            assert math.isfinite(v) and abs(v) <= np.finfo(np.float32).max
        assert len(row) == width
    return True


@FUZZ
@given(body=BODIES, modality=st.sampled_from(["text", "vector"]))
def test_parse_json_accepts_or_refuses_with_a_4xx(body, modality):
    try:
        inputs, top_k = parse_json(_encode(body), modality, 3 if modality == "vector" else None, CONFIG)
        parse_top_k(top_k, 5)
    except RequestError as exc:
        assert 400 <= exc.status < 500 and exc.code and exc.detail
        return
    assert isinstance(inputs, list) and 0 < len(inputs) <= CONFIG.max_items
    if modality == "text":
        assert all(isinstance(t, str) and t.encode("utf-8") for t in inputs)
    else:
        assert _well_formed_rows(inputs, 3)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), 2.0, 1e308, True, "x", -1, 0])
def test_top_k_that_is_not_a_whole_number_is_a_bad_value(value):
    with pytest.raises(RequestError) as caught:
        parse_top_k(value, 5)
    assert caught.value.status == 422 and caught.value.code == "invalid_top_k"


def test_numbers_beyond_float32_are_a_bad_value_not_nan():
    with pytest.raises(RequestError, match="float32") as caught:
        parse_json(b'{"inputs": [[1.0, 1e39, 0.5]]}', "vector", 3, CONFIG)
    assert caught.value.status == 422
    with pytest.raises(RequestError, match="float32"):
        parse_json(b'{"inputs": [[1, ' + b"9" * 60 + b", 0]]}", "vector", 3, CONFIG)
    with pytest.raises(RequestError, match="too deeply"):
        parse_json(b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "text", None, CONFIG)


def _client(model):
    from starlette.testclient import TestClient

    from transferkit.serving import create_app

    config = ServeConfig(max_items=8, max_text_chars=200, max_body_bytes=64_000)
    return TestClient(create_app(model, config, name="fuzz"), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def vector_client():
    rng = np.random.default_rng(0)
    y = np.arange(24) % 2
    x = rng.normal(size=(24, 3)).astype(np.float32) + 3.0 * y[:, None]
    model = tk.FineTuner(backbone="mlp:3-8", strategy="full", epochs=1, val_fraction=0.0).fit(x, y, verbose=False)
    with _client(model) as client:
        yield client


@pytest.fixture(scope="module")
def text_client(tmp_path_factory):
    from serve_helpers import text_run

    with _client(tk.load(text_run(tmp_path_factory))) as client:
        yield client


def _post(client, raw: bytes):
    response = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert response.status_code != 500 and response.status_code < 500, (raw[:200], response.text[:300])
    payload = response.json()
    if response.status_code == 200:
        assert len(payload["predictions"]) >= 1
        for prediction in payload["predictions"]:
            assert math.isfinite(prediction["probability"]) and prediction["top"]
    else:
        assert 400 <= response.status_code < 500 and payload["error"] and payload["detail"]


APP_FUZZ = settings(FUZZ, max_examples=40)
RAW = st.one_of(
    BODIES.map(_encode),
    st.binary(max_size=64),
    st.text(alphabet=ALL_CHARS, max_size=30).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


@APP_FUZZ
@given(raw=RAW)
def test_server_answers_any_body_to_a_vector_model_without_a_500(vector_client, raw):
    _post(vector_client, raw)


@APP_FUZZ
@given(raw=RAW)
def test_server_answers_any_body_to_a_text_model_without_a_500(text_client, raw):
    _post(text_client, raw)
