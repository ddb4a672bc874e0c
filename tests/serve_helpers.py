"""Shared by the serving tests: tiny saved runs (fitted once per session) and a real uvicorn server on a free port."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import transferkit as tk
from conftest import TINY, toy_sentiment

_RUNS: dict[str, Path] = {}


def text_run(tmp_path_factory) -> Path:
    """A tiny-bert sentiment classifier (pos/neg), saved with a recorded test score; fitted once per session."""
    if "text" not in _RUNS:
        from transferkit.export.artifact import update_manifest

        model = tk.FineTuner(**TINY).fit(*toy_sentiment(120), verbose=False)
        saved = model.save(tmp_path_factory.mktemp("serve-runs") / "sentiment")
        metrics = model.evaluate(*toy_sentiment(40, seed=1))
        update_manifest(saved, {"metrics": {"test": {k: metrics[k] for k in ("n", "accuracy", "macro_f1")}}})
        _RUNS["text"] = saved
    return _RUNS["text"]


@contextmanager
def running_server(app, graceful_s: int = 10):
    """Serve `app` with uvicorn on 127.0.0.1 in a thread; yields (base URL, the uvicorn.Server)."""
    import uvicorn

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))  # a free port, held from here on: no race with other processes
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=graceful_s, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()
