"""The HTTP server on tiny models: every route, every request limit, auth on and off, JSON error shapes, the
multilabel / regression / feature-vector responses, and the `transferkit serve` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from starlette.testclient import TestClient

import transferkit as tk
from serve_helpers import text_run
from transferkit.errors import ConfigError, TransferkitError
from transferkit.serving import ServeConfig, create_app

TEXTS = ["good great film", "awful boring movie", "it was fun and nice", "the worst, sad"]


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    return tk.load(text_run(tmp_path_factory))


def client(model, **options) -> TestClient:
    return TestClient(create_app(model, ServeConfig(**options), name="sentiment"), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def api(text_model):
    with client(text_model, max_text_chars=200, max_items=8, max_body_bytes=4096) as c:
        yield c


def predict(c: TestClient, inputs, **body):
    return c.post("/predict", json={"inputs": inputs, **body})


def test_health_metadata_page_and_docs(api, text_model):
    assert api.get("/health").json() == {"status": "ok"}
    meta = api.get("/metadata").json()
    assert meta["name"] == "sentiment" and meta["labels"] == ["neg", "pos"] and meta["backbone"] == "tiny-bert"
    assert meta["task"] == "classification" and meta["modality"] == "text" and meta["strategy"] == "full"
    assert meta["metrics"]["test"]["n"] == 40 and 0 <= meta["metrics"]["test"]["accuracy"] <= 1
    assert meta["version"]["transferkit"] == tk.__version__ == meta["version"]["trained_with"]
    assert meta["limits"]["max_items"] == 8 and "token" not in meta["limits"]
    page = api.get("/")
    assert page.headers["content-type"].startswith("text/html") and 'src="page.js"' in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "http" not in csp
    assert "<script>" not in page.text and "http" not in page.text  # no inline script, no external resource
    assert api.get("/page.js").headers["content-type"].startswith("text/javascript")
    assert ".innerHTML" not in api.get("/page.js").text  # labels and inputs go in as text, never as markup
    assert api.get("/page.css").status_code == 200
    schema = api.get("/openapi.json").json()
    assert set(schema["paths"]) == {"/health", "/metadata", "/predict"}
    assert "multipart/form-data" in schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    docs = api.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text and "/docs-assets/swagger-ui-bundle.js" in docs.text
    bundle = api.get("/docs-assets/swagger-ui-bundle.js")  # offline: Swagger UI comes from a local wheel
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    assert api.get("/docs-assets/../../etc/passwd").status_code == 404
    missing = api.get("/nowhere")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert api.get("/predict").json()["error"] == "method_not_allowed"


def test_undefined_metrics_are_null_in_metadata(text_model, monkeypatch):
    monkeypatch.setitem(text_model.run_info_["metrics"], "tiny", {"r2": float("nan"), "n": np.int64(3)})
    with client(text_model) as c:
        assert c.get("/metadata").json()["metrics"]["tiny"] == {"r2": None, "n": 3}


def test_predictions_match_the_model_with_top_k(api, text_model):
    body = predict(api, TEXTS).json()
    expected = text_model.predict_proba(TEXTS)
    assert body["task"] == "classification" and len(body["predictions"]) == len(TEXTS)
    for row, prediction in zip(expected, body["predictions"]):
        assert prediction["label"] == text_model.classes_[row.argmax()]
        assert prediction["probability"] == pytest.approx(row.max(), abs=1e-5)
        assert [t["label"] for t in prediction["top"]] == [text_model.classes_[j] for j in np.argsort(-row)]
        assert sum(t["probability"] for t in prediction["top"]) == pytest.approx(1.0, abs=1e-4)
    assert len(predict(api, TEXTS[:1], top_k=1).json()["predictions"][0]["top"]) == 1
    assert len(api.post("/predict?top_k=1", json={"inputs": TEXTS[:1]}).json()["predictions"][0]["top"]) == 1
    assert len(predict(api, "one bare text", top_k=99).json()["predictions"][0]["top"]) == 2  # capped at the labels


LIMITS = [  # (description, request kwargs, status, error code)
    ("too many items", {"json": {"inputs": ["a"] * 9}}, 413, "too_many_items"),
    ("text too long", {"json": {"inputs": ["x" * 201]}}, 413, "text_too_long"),
    ("body over the limit", {"json": {"inputs": ["x" * 1000] * 5}}, 413, "body_too_large"),
    (
        "text/plain",
        {"content": b"good film", "headers": {"content-type": "text/plain"}},
        415,
        "unsupported_content_type",
    ),
    ("no content type", {"content": b'{"inputs": ["a"]}'}, 415, "unsupported_content_type"),
    ("a file to a text model", {"files": {"files": ("a.txt", b"good film")}}, 415, "unsupported_content_type"),
    (
        "malformed JSON",
        {"content": b'{"inputs": [', "headers": {"content-type": "application/json"}},
        422,
        "malformed_json",
    ),
    ("no inputs key", {"json": {"texts": ["a"]}}, 422, "missing_inputs"),
    ("inputs not a list", {"json": {"inputs": {"a": 1}}}, 422, "invalid_inputs"),
    ("empty list", {"json": {"inputs": []}}, 422, "invalid_inputs"),
    ("a number for a text", {"json": {"inputs": ["ok", 3]}}, 422, "invalid_inputs"),
    ("unknown field", {"json": {"inputs": ["a"], "topk": 2}}, 422, "unknown_field"),
    ("bad top_k", {"json": {"inputs": ["a"], "top_k": 0}}, 422, "invalid_top_k"),
    ("empty text (the model's own check)", {"json": {"inputs": ["fine", "   "]}}, 422, "invalid_input"),
]


@pytest.mark.parametrize("what,request_kwargs,status,code", LIMITS, ids=[row[0] for row in LIMITS])
def test_each_limit_answers_with_a_clear_json_error(api, what, request_kwargs, status, code):
    response = api.post("/predict", **request_kwargs)
    assert (response.status_code, response.json()["error"]) == (status, code), response.text
    assert len(response.json()["detail"]) > 20  # says what was wrong and how to fix it
    assert predict(api, ["good film"]).status_code == 200  # the worker survived


def test_body_limit_counts_streamed_bytes_whatever_the_content_length_says(api):
    big = json.dumps({"inputs": ["word " * 120] * 8}).encode()
    assert len(big) > 4096
    lying = api.post("/predict", content=big, headers={"content-type": "application/json", "content-length": "20"})
    assert lying.status_code == 413 and lying.json()["error"] == "body_too_large"
    chunked = api.post("/predict", content=iter([big[:3000], big[3000:]]), headers={"content-type": "application/json"})
    assert chunked.status_code == 413 and "more than 4,096 bytes" in chunked.json()["detail"]
    small = api.post(
        "/predict", content=iter([b'{"inputs": ', b'["good film"]}']), headers={"content-type": "application/json"}
    )
    assert small.status_code == 200  # a chunked body under the limit is served
    bad = api.post("/predict", content=b"{}", headers={"content-type": "application/json", "content-length": "x"})
    assert bad.status_code == 400 and bad.json()["error"] == "bad_content_length"


def test_auth_on_every_route_but_health(text_model):
    with client(text_model, token="s3cret-token") as c:
        assert c.get("/health").status_code == 200
        for method, path in [("get", "/"), ("get", "/metadata"), ("post", "/predict"), ("get", "/docs")]:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-token"}):
                response = getattr(c, method)(path, headers=headers)
                assert response.status_code == 401, (path, headers)
                assert response.json()["error"] == "unauthorized" and response.headers["www-authenticate"].startswith(
                    "Bearer"
                )
        assert "Missing bearer token" in c.get("/metadata").json()["detail"]
        assert "Wrong token" in c.get("/metadata", headers={"Authorization": "Bearer nope"}).json()["detail"]
        good = {"Authorization": "Bearer s3cret-token"}
        assert (
            c.get("/metadata", headers=good).status_code == 200
            and c.get("/openapi.json", headers=good).status_code == 200
        )
        assert (
            c.post("/predict", json={"inputs": ["good"]}, headers={"authorization": "bearer s3cret-token"}).status_code
            == 200
        )
        too_big = c.post("/predict", content=b"x" * (11 * 2**20), headers={"content-type": "application/json"})
        assert too_big.status_code == 401  # no token: refused before the body is read
    with client(text_model) as open_server:  # no token: no auth
        assert open_server.get("/metadata").status_code == 200


def test_an_internal_failure_is_a_json_500_and_the_next_request_works(text_model, monkeypatch):
    with client(text_model) as c:
        predictor = c.app.state.predictor
        original = predictor.run
        monkeypatch.setattr(predictor, "run", lambda items: 1 / 0 if "boom" in items else original(items))
        c.app.state.batcher._run = predictor.run
        failed = predict(c, ["boom"])
        assert failed.status_code == 500 and failed.json()["error"] == "internal_error"
        assert predict(c, ["good film"]).status_code == 200


def test_multilabel_and_regression_responses(tmp_path):
    from test_multilabel import FAST as MULTI
    from test_multilabel import toy_multilabel
    from test_regression import FAST as REGRESSION
    from test_regression import toy_scores

    multi = tk.FineTuner(**{**MULTI, "strategy": "probe"}).fit(*toy_multilabel(60), verbose=False)
    texts = ["good film", "bad bad movie", "it was good and bad"]
    with client(multi, top_k=1) as c:
        body = predict(c, texts).json()
        assert c.get("/metadata").json()["thresholds"] == [round(t, 4) for t in multi.task_.thresholds]
    assert body["task"] == "multilabel"
    for prediction, labels, row in zip(body["predictions"], multi.predict(texts), multi.predict_proba(texts)):
        assert tuple(prediction["labels"]) == labels and len(prediction["top"]) == 1
        assert prediction["top"][0]["probability"] == pytest.approx(row.max(), abs=1e-5)
    regression = tk.FineTuner(**{**REGRESSION, "strategy": "probe"}).fit(*toy_scores(60), verbose=False)
    with client(regression) as c:
        body = predict(c, texts).json()
        assert c.get("/metadata").json()["labels"] == []
    assert body["task"] == "regression"
    assert [p["value"] for p in body["predictions"]] == pytest.approx(regression.predict(texts), abs=1e-6)


def test_feature_vectors(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 4)).astype("float32")
    model = tk.FineTuner(backbone="mlp:4-8", strategy="full", epochs=2, val_fraction=0.0).fit(
        x, x[:, 0] > 0, verbose=False
    )
    rows = x[:3].tolist()
    with client(model) as c:
        body = predict(c, rows).json()
        assert [p["probability"] for p in body["predictions"]] == pytest.approx(
            model.predict_proba(x[:3]).max(axis=1), abs=1e-5
        )
        assert predict(c, rows[0]).json()["predictions"][0] == body["predictions"][0]  # one bare row
        assert c.get("/metadata").json()["features"] == 4
        wrong = predict(c, [[1.0, 2.0]])
        assert wrong.status_code == 422 and "takes 4 per row" in wrong.json()["detail"]
        nan = c.post("/predict", content=b'{"inputs": [[NaN, 1, 2, 3]]}', headers={"content-type": "application/json"})
        assert nan.status_code == 422 and "NaN" in nan.json()["detail"]
        assert predict(c, [["a", 1, 2, 3]]).status_code == 422


def test_config_validation_and_generative_runs_are_refused():
    with pytest.raises(ConfigError, match="max_items must be > 0"):
        ServeConfig(max_items=0)
    with pytest.raises(ConfigError, match="max_wait_ms"):
        ServeConfig(max_wait_ms=-1)
    with pytest.raises(ConfigError, match="'max_item'.*max_items"):
        ServeConfig.from_dict({"max_item": 3})

    class Generative:
        def generate(self, prompts):
            return prompts

    with pytest.raises(TransferkitError, match="generative run"):
        create_app(Generative())


def test_serve_command_builds_the_config_from_flags_and_env(tmp_path_factory, monkeypatch):
    from transferkit.cli import main

    seen = {}
    monkeypatch.setattr(
        "transferkit.serving.server.serve", lambda model, config, host, port, **kw: seen.update(locals())
    )
    monkeypatch.setenv("TRANSFERKIT_TOKEN", "from-env")
    run = text_run(tmp_path_factory)
    assert main(["serve", str(run), "--port", "9123", "--max-batch-size", "1", "--top-k", "2"]) == 0
    config = seen["config"]
    assert (seen["host"], seen["port"], seen["kw"]["name"]) == ("127.0.0.1", 9123, "sentiment")
    assert (config.max_batch_size, config.top_k, config.token, config.max_items) == (1, 2, "from-env", 256)
    assert main(["serve", str(run), "--token", "flag", "--host", "0.0.0.0"]) == 0
    assert seen["config"].token == "flag" and seen["host"] == "0.0.0.0"


def test_the_server_warns_when_open_without_a_token(text_model, monkeypatch, capsys):
    import uvicorn

    from transferkit.serving.server import serve

    monkeypatch.setattr(uvicorn, "run", lambda app, **options: None)
    serve(text_model, ServeConfig(), host="0.0.0.0")
    assert "without --token" in capsys.readouterr().err
    serve(text_model, ServeConfig(token="x"), host="0.0.0.0")
    serve(text_model, ServeConfig(), host="127.0.0.1")
    assert capsys.readouterr().err == ""


def test_serve_help_stays_light():
    import subprocess
    import sys

    code = (
        "import sys, transferkit.cli; transferkit.cli.build_parser(); "
        "print(sorted(m for m in ('fastapi', 'starlette', 'uvicorn', 'torch', 'PIL') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    shown = subprocess.run([sys.executable, "-m", "transferkit", "serve", "--help"], capture_output=True, text=True)
    assert shown.returncode == 0 and "--max-body-bytes" in shown.stdout and "TRANSFERKIT_TOKEN" in shown.stdout
