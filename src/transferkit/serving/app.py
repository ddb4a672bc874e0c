"""The FastAPI app over one loaded model: /predict (micro-batched), /health, /metadata, the page at /, docs at /docs.

Errors are JSON, {"error": code, "detail": message}: 401 no/wrong token, 413 over a size limit, 415 a content
type this model does not take, 422 a malformed request or input, 503 while shutting down. A bad request fails
alone; the worker keeps serving.

Imported only when an app is built (transferkit.serving.create_app), so FastAPI loads here at module level: its
route signatures need the real Request and Query types.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from transferkit.errors import RequestError, TransferkitError
from transferkit.serving.batcher import MicroBatcher
from transferkit.serving.config import ServeConfig
from transferkit.serving.inputs import check_count, parse_json, parse_top_k, read_upload, unprocessable
from transferkit.serving.predictor import Predictor

log = logging.getLogger("transferkit.serving")
JSON_MODALITIES = {"text": "texts", "vector": "rows of numbers"}
FILE_MODALITIES = {"image": "image files", "audio": "audio files"}
PREDICT_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "inputs": {"type": "array", "description": "texts, or rows of numbers for a vector model"},
                        "top_k": {"type": "integer", "minimum": 1, "description": "classes listed per prediction"},
                    },
                },
                "example": {"inputs": ["what a great film"], "top_k": 2},
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "top_k": {"type": "integer", "minimum": 1},
                    },
                },
            },
        },
    }
}


def create_app(model: Any, config: ServeConfig | None = None, name: str | None = None):
    """A FastAPI app serving `model` (a fitted or loaded FineTuner) under `config`'s limits."""
    from transferkit import __version__
    from transferkit.serving.middleware import BearerAuth, BodyLimit
    from transferkit.serving.page import add_page_routes

    config = config or ServeConfig()
    predictor = Predictor(model, name)
    batcher = MicroBatcher(predictor.run, config.max_batch_size, config.max_wait_ms)

    @asynccontextmanager
    async def lifespan(app):
        batcher.start()
        yield
        await batcher.stop()  # after the server stopped taking requests: finish what is queued

    app = FastAPI(
        title=f"transferkit: {predictor.name}",
        version=__version__,
        description=f"A {predictor.task} model on {predictor.modality} inputs, served by transferkit.",
        lifespan=lifespan,
        docs_url=None,  # served from local files by add_page_routes: the default loads Swagger UI from a CDN
        redoc_url=None,
    )
    app.state.predictor, app.state.batcher, app.state.config = predictor, batcher, config
    _add_error_handlers(app)
    _add_routes(app, predictor, batcher, config)
    add_page_routes(app)
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    if config.token:
        app.add_middleware(BearerAuth, token=config.token)  # added last: runs first, before any body is read
    return app


def _add_routes(app, predictor: Predictor, batcher: MicroBatcher, config: ServeConfig) -> None:
    @app.get("/health", summary="Liveness: no token needed")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metadata", summary="The model: labels, backbone, metrics, version; the server's limits")
    async def metadata() -> dict[str, Any]:
        return {**predictor.metadata(), "limits": config.limits(), "batching": batcher.stats.to_dict()}

    @app.post(
        "/predict",
        summary="Predict: JSON for texts/vectors, multipart files for images/audio",
        openapi_extra=PREDICT_DOC,
    )
    async def predict(request: Request, top_k: int | None = Query(None, ge=1)) -> dict[str, Any]:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        _check_content_type(kind, predictor.modality)
        if kind == "application/json":
            items, asked = await _json_inputs(request, predictor, config)
        else:
            items, asked = await _file_inputs(request, predictor, config)
        k = parse_top_k(asked if asked is not None else top_k, config.top_k)
        items = await run_in_threadpool(predictor.check, items)
        rows = await batcher.submit(items)
        return {"task": predictor.task, "predictions": predictor.format(rows, k)}


def _check_content_type(kind: str, modality: str) -> None:
    expected = "application/json" if modality in JSON_MODALITIES else "multipart/form-data"
    if kind == expected:
        return
    what = JSON_MODALITIES.get(modality) or FILE_MODALITIES[modality]
    how = (
        'a JSON body {"inputs": [...]} with Content-Type: application/json'
        if expected == "application/json"
        else "a multipart/form-data upload (e.g. curl -F files=@photo.png)"
    )
    raise RequestError(
        415, "unsupported_content_type", f"Got Content-Type {kind or '(none)'!r}; this model takes {what}: send {how}."
    )


async def _json_inputs(request: Request, predictor: Predictor, config: ServeConfig) -> tuple[list[Any], Any]:
    body = await request.body()
    return parse_json(body, predictor.modality, predictor.features, config)


async def _file_inputs(request: Request, predictor: Predictor, config: ServeConfig) -> tuple[list[Any], Any]:
    """The uploaded files of a multipart body (any field name), decoded in a worker thread; plus a top_k field."""
    try:
        form = await request.form(max_files=config.max_items + 1, max_fields=16)
    except HTTPException as exc:  # starlette's multipart parser: too many parts, or a malformed body
        if "Too many files" in str(exc.detail):
            check_count(config.max_items + 1, config)
        raise unprocessable("malformed_multipart", f"Cannot read the multipart body: {exc.detail}.") from None
    try:
        parts = form.multi_items()
        files = [(value.filename or key, await value.read()) for key, value in parts if isinstance(value, UploadFile)]
        fields = {key: value for key, value in parts if not isinstance(value, UploadFile)}
    finally:
        await form.close()
    unknown = [key for key in fields if key != "top_k"]
    if unknown:
        raise unprocessable("unknown_field", f"Unknown form field(s) {unknown}: send files, and optionally top_k.")
    if not files:
        raise unprocessable("missing_files", f"No files in the upload: attach {FILE_MODALITIES[predictor.modality]}.")
    check_count(len(files), config)
    items = await run_in_threadpool(
        lambda: [read_upload(data, name, predictor.modality, config) for name, data in files]
    )
    return items, fields.get("top_k")


def _add_error_handlers(app) -> None:
    def error(status: int, code: str, detail: str, headers: dict[str, str] | None = None):
        return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)

    @app.exception_handler(RequestError)
    async def refused(request, exc: RequestError):
        return error(exc.status, exc.code, exc.detail)

    @app.exception_handler(TransferkitError)
    async def invalid_input(request, exc: TransferkitError):  # the model's own checks (e.g. an empty text)
        return error(422, "invalid_input", str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return error(422, "invalid_request", problems)

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        from http import HTTPStatus

        code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
        return error(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal(request, exc: Exception):  # logged by the server; the worker goes on
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return error(500, "internal_error", f"{type(exc).__name__}: the server failed on this request (see its log).")
