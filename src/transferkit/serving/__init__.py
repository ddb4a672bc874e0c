"""Serving a trained run over HTTP: a FastAPI app with micro-batching, request limits, bearer auth and a page.

`create_app(model, ServeConfig(...))` builds the app; `serve(model, config, host, port)` runs it under uvicorn.
FastAPI and uvicorn are imported only when an app is built, so importing this package stays light.
"""

from __future__ import annotations

from transferkit.serving.config import ServeConfig

__all__ = ["ServeConfig", "create_app", "serve"]


def create_app(model, config: ServeConfig | None = None, name: str | None = None):
    """See transferkit.serving.app.create_app."""
    from transferkit.serving.app import create_app as build

    return build(model, config, name)


def serve(model, config: ServeConfig | None = None, host: str = "127.0.0.1", port: int = 8000, **options) -> None:
    """See transferkit.serving.server.serve."""
    from transferkit.serving.server import serve as run

    run(model, config, host, port, **options)
