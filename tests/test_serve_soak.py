"""Soak: the real `transferkit serve` process under steady load for TRANSFERKIT_SOAK_SECONDS (default 60).

A few client threads send predictions (1-4 texts each, some with top_k), health checks and malformed requests to
127.0.0.1 only, for a bounded time and a bounded number of requests. Every answer must be the expected one (the
loaded model's own labels and probabilities, or the documented 422 for a bad request): 0 errors. The server
process's resident memory after a warm-up period and at the end must differ by less than 10%, it must stop
cleanly on SIGTERM, and its log must hold no traceback. Prints requests, requests/s and the RSS numbers.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

import pytest

import transferkit as tk
from serve_helpers import text_run

pytestmark = pytest.mark.slow

HOST = "127.0.0.1"  # the only address this test ever connects to
SECONDS = float(os.environ.get("TRANSFERKIT_SOAK_SECONDS", "60"))
CLIENTS = 4
MAX_REQUESTS_PER_CLIENT = 1_000_000  # a bound besides the deadline
MAX_GROWTH = 0.10
POOL = [
    "good great film",
    "awful boring movie",
    "it was fun and nice",
    "the worst, sad",
    "really excellent happy book",
    "poor service, terrible food",
    "this movie was very very good and i love it",
    "bad",
]
BAD_REQUESTS = [(b"{not json", "malformed_json"), (b'{"texts": ["x"]}', "missing_inputs")]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def wait_healthy(port: int, server: subprocess.Popen, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"`transferkit serve` exited with {server.returncode} before it was ready")
        try:
            connection = http.client.HTTPConnection(HOST, port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"`transferkit serve` was not healthy on {HOST}:{port} within {timeout_s:.0f} s")


class Client(threading.Thread):
    """One keep-alive connection sending a fixed mix of requests until the deadline; counts what was wrong."""

    def __init__(self, index: int, port: int, expected: dict[str, tuple[str, float]], deadline: float) -> None:
        super().__init__(daemon=True)
        self.rng = random.Random(index)
        self.port, self.expected, self.deadline = port, expected, deadline
        self.requests = 0
        self.error_count = 0
        self.errors: list[str] = []  # the first few, to show

    def call(self, connection, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())

    def check_prediction(self, connection, texts: list[str], top_k: int | None) -> str | None:
        body = {"inputs": texts, **({"top_k": top_k} if top_k else {})}
        status, answer = self.call(connection, "POST", "/predict", json.dumps(body).encode())
        predictions = answer.get("predictions") or []
        if status != 200 or len(predictions) != len(texts):
            return f"/predict {texts}: {status} {answer}"
        for text, prediction in zip(texts, predictions):
            label, probability = self.expected[text]
            if prediction["label"] != label or abs(prediction["probability"] - probability) > 1e-4:
                return f"/predict {text!r}: got {prediction}, expected {label} {probability:.5f}"
            if len(prediction["top"]) != min(top_k or 5, 2):  # two classes; the server's default top_k is 5
                return f"/predict top_k={top_k}: {prediction}"
        return None

    def one(self, connection, i: int) -> str | None:
        if i % 10 == 9:
            status, answer = self.call(connection, "GET", "/health")
            return None if (status, answer) == (200, {"status": "ok"}) else f"/health: {status} {answer}"
        if i % 25 == 24:
            body, code = BAD_REQUESTS[i // 25 % len(BAD_REQUESTS)]
            status, answer = self.call(connection, "POST", "/predict", body)
            return None if (status, answer.get("error")) == (422, code) else f"bad request: {status} {answer}"
        texts = self.rng.sample(POOL, self.rng.randint(1, 4))
        return self.check_prediction(connection, texts, self.rng.choice([None, None, 1, 2]))

    def run(self) -> None:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=30)
        while time.monotonic() < self.deadline and self.requests < MAX_REQUESTS_PER_CLIENT:
            try:
                problem = self.one(connection, self.requests)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
                connection.close()
                connection = http.client.HTTPConnection(HOST, self.port, timeout=30)
            self.requests += 1
            if problem:
                self.error_count += 1
                self.errors.extend([problem][: len(self.errors) < 5])
        connection.close()


def rss_samples(pid: int, stop: threading.Event, samples: list[tuple[float, int]]) -> None:
    import psutil

    process = psutil.Process(pid)
    while not stop.wait(0.5):
        try:
            samples.append((time.monotonic(), process.memory_info().rss))
        except psutil.Error:
            return


def test_steady_load_gives_no_errors_and_no_memory_growth(tmp_path_factory, tmp_path):
    run = text_run(tmp_path_factory)
    model = tk.load(run)
    probabilities = model.predict_proba(POOL)
    expected = {t: (model.classes_[row.argmax()], float(row.max())) for t, row in zip(POOL, probabilities)}
    assert all(p > 0.5 + 1e-3 for _, p in expected.values()), expected  # no near-tie whose label could flip

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "TRANSFERKIT_TOKEN"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    command = [sys.executable, "-m", "transferkit", "serve", str(run), "--host", HOST, "--port", str(port)]
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen([*command, "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT, env=env)
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    try:
        wait_healthy(port, server)
        sampler = threading.Thread(target=rss_samples, args=(server.pid, stop, samples), daemon=True)
        started = time.monotonic()
        sampler.start()
        clients = [Client(i, port, expected, started + SECONDS) for i in range(CLIENTS)]
        for client in clients:
            client.start()
        for client in clients:
            client.join(timeout=SECONDS + 120)
        elapsed = time.monotonic() - started
        stop.set()
        sampler.join(timeout=10)
        assert not any(c.is_alive() for c in clients), "a client thread did not finish"
    finally:
        stop.set()
        server.send_signal(signal.SIGTERM)
        try:
            exit_code = server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            exit_code = server.wait(timeout=30)

    requests = sum(c.requests for c in clients)
    error_count = sum(c.error_count for c in clients)
    errors = [e for c in clients for e in c.errors]
    warmup = min(max(10.0, 0.2 * SECONDS), 0.5 * SECONDS)  # lazily built state (threads, caches) settles first
    after_warmup = [rss for t, rss in samples if started + warmup <= t <= started + warmup + 3]
    at_end = [rss for t, rss in samples if t >= started + elapsed - 3]
    base, end = statistics.median(after_warmup), statistics.median(at_end)
    growth = (end - base) / base
    peak = max(rss for _, rss in samples)
    mib = 2**20
    print(
        f"\nsoak: {requests} requests in {elapsed:.1f} s ({requests / elapsed:.1f} requests/s, {CLIENTS} clients), "
        f"{error_count} errors; server RSS after {warmup:.0f} s warm-up {base / mib:.1f} MiB, at the end "
        f"{end / mib:.1f} MiB ({growth:+.2%}), peak {peak / mib:.1f} MiB, {len(samples)} samples"
    )
    log_text = log_path.read_text(errors="replace")
    assert error_count == 0, f"{error_count} wrong answers, first: {errors[:5]}"
    assert requests >= CLIENTS * SECONDS, "the load was not steady (fewer than one request per second per client)"
    assert growth < MAX_GROWTH, f"server memory grew {growth:.1%} (over {MAX_GROWTH:.0%}) under steady load"
    # uvicorn shuts down gracefully, then re-raises the signal it caught: -SIGTERM is a clean stop too
    assert exit_code in (0, -signal.SIGTERM), f"the server did not stop cleanly (exit {exit_code}):\n{log_text[-2000:]}"
    assert "Traceback" not in log_text, log_text[-2000:]
