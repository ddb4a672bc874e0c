"""Micro-batching: the batcher alone (gathering, routing, error isolation, draining) and a real uvicorn server
under concurrent clients (each gets its own answer, fewer batches than requests), bad requests and client
disconnects that leave the worker serving, and a graceful shutdown that finishes in-flight requests."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

import transferkit as tk
from conftest import toy_sentiment
from serve_helpers import running_server, text_run
from transferkit.errors import DataError, RequestError
from transferkit.serving import ServeConfig, create_app
from transferkit.serving.batcher import MicroBatcher


def run_async(coroutine):
    return asyncio.run(coroutine)


def doubling(calls: list[list[int]]):
    def run(items):
        calls.append(list(items))
        time.sleep(0.01)  # the model is busy: callers arriving meanwhile queue up for the next batch
        if any(item < 0 for item in items):
            raise DataError("negative input")
        return [2 * item for item in items]

    return run


def test_concurrent_callers_are_batched_and_each_gets_its_own_results():
    calls: list[list[int]] = []

    async def scenario():
        batcher = MicroBatcher(doubling(calls), max_batch_size=8, max_wait_ms=20)
        results = await asyncio.gather(*(batcher.submit([i, 100 + i]) for i in range(20)))
        await batcher.stop()
        return results, batcher.stats

    results, stats = run_async(scenario())
    assert results == [[2 * i, 200 + 2 * i] for i in range(20)]
    assert stats.requests == 20 and stats.items == 40 and stats.batches == len(calls) < 20
    assert max(len(c) for c in calls) <= 8 and stats.largest_batch == 8


def test_a_lone_client_does_not_wait_for_company_after_its_first_request():
    """The gathering wait is skipped after a batch that held one request, and resumes once callers overlap."""
    calls: list[list[int]] = []

    async def scenario():
        batcher = MicroBatcher(doubling(calls), max_batch_size=8, max_wait_ms=3000)
        first = await batcher.submit([1])  # waits out the window: nobody joins
        started = time.perf_counter()
        second = await batcher.submit([2])  # the last batch was alone: runs at once
        lone = time.perf_counter() - started
        together = await asyncio.gather(*(batcher.submit([i]) for i in range(3, 7)))  # queued together: one batch
        await batcher.stop()
        return first, second, lone, together

    first, second, lone, together = run_async(scenario())
    assert (first, second, together) == ([2], [4], [[6], [8], [10], [12]])
    assert lone < 1.5, f"a lone request waited {lone:.2f} s for company (the window is 3 s)"
    assert calls[2:] == [[3, 4, 5, 6]]


def test_batch_size_one_and_requests_larger_than_a_batch():
    calls: list[list[int]] = []

    async def scenario():
        single = MicroBatcher(doubling(calls), max_batch_size=1, max_wait_ms=20)
        small = await asyncio.gather(*(single.submit([i]) for i in range(5)))
        await single.stop()
        batcher = MicroBatcher(doubling(calls), max_batch_size=4, max_wait_ms=5)
        big = await batcher.submit(list(range(10)))  # never split: it runs as one batch of its own
        await batcher.stop()
        return small, big

    small, big = run_async(scenario())
    assert small == [[2 * i] for i in range(5)] and all(len(c) == 1 for c in calls[:5])
    assert big == [2 * i for i in range(10)] and calls[5] == list(range(10))


def test_a_failing_input_fails_only_its_own_request():
    calls: list[list[int]] = []

    async def scenario():
        batcher = MicroBatcher(doubling(calls), max_batch_size=16, max_wait_ms=30)
        outcomes = await asyncio.gather(*(batcher.submit([i]) for i in (1, 2, -3, 4)), return_exceptions=True)
        after = await batcher.submit([5])
        await batcher.stop()
        return outcomes, after

    outcomes, after = run_async(scenario())
    assert outcomes[:2] == [[2], [4]] and outcomes[3] == [8] and after == [10]
    assert isinstance(outcomes[2], DataError)


def test_stop_drains_queued_work_then_refuses_new_requests():
    async def scenario():
        batcher = MicroBatcher(doubling([]), max_batch_size=2, max_wait_ms=1)
        pending = [asyncio.ensure_future(batcher.submit([i])) for i in range(7)]
        await asyncio.sleep(0)  # queued, not yet served
        await batcher.stop()
        assert all(task.done() for task in pending)
        with pytest.raises(RequestError) as refused:
            await batcher.submit([1])
        return [task.result() for task in pending], refused.value

    results, refused = run_async(scenario())
    assert results == [[2 * i] for i in range(7)] and refused.status == 503


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    return tk.load(text_run(tmp_path_factory))


def test_concurrent_http_clients_each_get_their_own_answer(text_model):
    import httpx2

    texts = list(dict.fromkeys(toy_sentiment(80, seed=7)[0]))[:40]
    assert len(texts) == 40
    expected = {text: text_model.predict_proba([text])[0] for text in texts}
    app = create_app(text_model, ServeConfig(max_batch_size=16, max_wait_ms=20))

    async def clients(url):
        async with httpx2.AsyncClient(base_url=url, timeout=60) as http:
            responses = await asyncio.gather(*(http.post("/predict", json={"inputs": [t], "top_k": 2}) for t in texts))
        return [r.json() for r in responses]

    with running_server(app) as (url, _):
        answers = run_async(clients(url))
    for text, answer in zip(texts, answers):
        top = {t["label"]: t["probability"] for t in answer["predictions"][0]["top"]}
        got = [top[label] for label in text_model.classes_]
        np.testing.assert_allclose(got, expected[text], atol=1e-5)  # padding in a batch changes nothing
    stats = app.state.batcher.stats
    assert stats.requests == 40 and stats.batches < 40 and stats.largest_batch > 1, stats


def test_bad_requests_and_vanished_clients_leave_the_worker_serving(text_model):
    import httpx2

    app = create_app(Slow(text_model, 0.5), ServeConfig(max_body_bytes=2048, max_wait_ms=1))
    with running_server(app) as (url, _), httpx2.Client(base_url=url, timeout=30) as http:
        json_type = {"content-type": "application/json"}
        assert http.post("/predict", content=b"{oops", headers=json_type).status_code == 422
        assert http.post("/predict", content=b"x" * 5000, headers=json_type).status_code == 413
        assert http.post("/predict", content=b"hello", headers={"content-type": "text/plain"}).status_code == 415
        assert http.post("/predict", json={"inputs": [" "]}).status_code == 422
        with pytest.raises(httpx2.TimeoutException):  # a client that gives up while its batch runs
            http.post("/predict", json={"inputs": ["good film"]}, timeout=0.1)
        answer = http.post("/predict", json={"inputs": ["good film"]}).json()
        assert answer["predictions"][0]["label"] == text_model.predict(["good film"])[0]
        assert http.get("/health").json() == {"status": "ok"}


class Slow:
    """The text model, taking `seconds` per batch: a request is surely in flight when shutdown starts."""

    def __init__(self, model, seconds: float) -> None:
        self.model, self.seconds = model, seconds

    def __getattr__(self, name):
        return getattr(self.model, name)

    def predict_proba(self, inputs):
        time.sleep(self.seconds)
        return self.model.predict_proba(inputs)


def test_graceful_shutdown_finishes_in_flight_requests(text_model):
    import httpx2

    app = create_app(Slow(text_model, 1.0), ServeConfig(max_wait_ms=1))
    outcome: dict[str, object] = {}

    def call(url):
        outcome["response"] = httpx2.post(f"{url}/predict", json={"inputs": ["good film"]}, timeout=30)

    with running_server(app) as (url, server):
        caller = threading.Thread(target=call, args=(url,))
        caller.start()
        time.sleep(0.4)  # the request is inside the model now
        server.should_exit = True  # what SIGTERM / Ctrl-C does
        caller.join(timeout=30)
        deadline = time.monotonic() + 10
        while app.state.batcher._worker is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(httpx2.TransportError):
            httpx2.get(f"{url}/health", timeout=2)  # no longer accepting
    assert outcome["response"].status_code == 200 and outcome["response"].json()["predictions"][0]["label"]
    assert app.state.batcher._worker is None  # the lifespan shutdown stopped the batcher after draining
