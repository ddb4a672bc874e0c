"""Running the app under uvicorn: one process, one model, graceful shutdown that finishes in-flight requests."""

from __future__ import annotations

import ipaddress
import math
import sys
from typing import Any

from transferkit.serving.config import ServeConfig


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    model: Any,
    config: ServeConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    name: str | None = None,
    log_level: str = "info",
) -> None:
    """Serve `model` until interrupted. On SIGINT/SIGTERM uvicorn stops accepting connections and gives in-flight
    requests `graceful_shutdown_s` to finish; then the batcher runs whatever is still queued and stops."""
    import uvicorn

    from transferkit.serving.app import create_app

    config = config or ServeConfig()
    if not is_loopback(host) and not config.token:
        print(
            f"warning: serving on {host} without --token: anyone who can reach port {port} can use the model",
            file=sys.stderr,
        )
    app = create_app(model, config, name)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=math.ceil(config.graceful_shutdown_s),
        server_header=False,
    )
