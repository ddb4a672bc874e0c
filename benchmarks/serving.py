"""Benchmark: `transferkit serve` under concurrent clients, micro-batching on vs. off (max_batch_size=1).

A probe on the real MiniLM backbone is fitted on SST-2 sentences and served by a real uvicorn server (a separate
process, 127.0.0.1). N asyncio clients (httpx2) each send one SST-2 test sentence per request, back to back, for a
bounded time. Prints one Markdown table: throughput, p50/p95/p99 latency, errors (must be 0) and the mean batch the
server ran, for 1, 8 and 32 clients in both modes, then the micro-batching speed-up at the highest client count.

    .venv/bin/python benchmarks/serving.py            # 30 s per cell, 400 training sentences
    .venv/bin/python benchmarks/serving.py --quick    # 6 s per cell, about 2 minutes in all
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def fit_run(train_rows: int, max_length: int, out: Path) -> Path:
    import pandas as pd

    import transferkit as tk

    path = DATA / "sst2"
    if not path.is_dir():
        sys.exit(f"dataset {path} not found (benchmarks read ../shared/datasets)")
    train = pd.read_csv(path / "train.csv").sample(train_rows, random_state=0)
    model = tk.FineTuner(backbone="minilm", strategy="probe", max_length=max_length, val_fraction=0.0)
    return model.fit(train, verbose=False).save(out / "sst2-minilm")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(run: Path, max_batch_size: int, max_wait_ms: float) -> tuple[subprocess.Popen, str]:
    import httpx2

    port = free_port()
    command = [sys.executable, "-m", "transferkit", "serve", str(run), "--port", str(port), "--log-level", "warning"]
    command += ["--max-batch-size", str(max_batch_size), "--max-wait-ms", str(max_wait_ms)]
    server = subprocess.Popen(command)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server exited with status {server.returncode}")
        try:
            if httpx2.get(f"{url}/health", timeout=1).status_code == 200:
                return server, url
        except httpx2.TransportError:
            time.sleep(0.2)
    server.kill()
    sys.exit("the server did not start within 120 s")


async def load(url: str, texts: list[str], clients: int, seconds: float) -> dict:
    """`clients` callers sending one text per request, back to back, for `seconds`; latencies in ms."""
    import httpx2

    latencies: list[float] = []
    errors = 0
    limits = httpx2.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx2.AsyncClient(base_url=url, timeout=60, limits=limits) as http:

        async def client(index: int) -> None:
            nonlocal errors
            i = index
            stop = time.perf_counter() + seconds
            while time.perf_counter() < stop:
                started = time.perf_counter()
                try:
                    response = await http.post("/predict", json={"inputs": [texts[i % len(texts)]]})
                    ok = response.status_code == 200 and len(response.json()["predictions"]) == 1
                except httpx2.HTTPError:
                    ok = False
                if ok:
                    latencies.append(1000 * (time.perf_counter() - started))
                else:
                    errors += 1
                i += clients

        started = time.perf_counter()
        await asyncio.gather(*(client(k) for k in range(clients)))
        wall = time.perf_counter() - started
    return {"requests": len(latencies), "errors": errors, "wall": wall, "latencies": np.asarray(latencies)}


def batching_stats(url: str) -> dict:
    import httpx2

    return httpx2.get(f"{url}/metadata", timeout=10).json()["batching"]


def measure(run: Path, texts: list[str], mode: str, args) -> list[dict]:
    max_batch_size = 1 if mode == "batch size 1" else args.max_batch_size
    server, url = start_server(run, max_batch_size, args.max_wait_ms)
    rows = []
    try:
        asyncio.run(load(url, texts, 4, 1.0))  # warm up: first calls pay one-off costs
        for clients in args.clients:
            print(f"{mode}: {clients} clients for {args.seconds:g} s ...", file=sys.stderr, flush=True)
            before = batching_stats(url)
            result = asyncio.run(load(url, texts, clients, args.seconds))
            after = batching_stats(url)
            batches = after["batches"] - before["batches"]
            result.update(mode=mode, clients=clients, mean_batch=(after["items"] - before["items"]) / max(batches, 1))
            rows.append(result)
    finally:
        server.send_signal(signal.SIGINT)  # graceful: in-flight requests finish
        server.wait(timeout=60)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="load time per (mode, clients) cell")
    parser.add_argument("--clients", default="1,8,32", help="comma-separated concurrent client counts")
    parser.add_argument("--train-rows", type=int, default=400)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="6 s per cell, 300 training sentences")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.train_rows = 6.0, 300
    args.clients = [int(c) for c in args.clients.split(",")]
    import pandas as pd

    texts = pd.read_csv(DATA / "sst2" / "test.csv")["text"].tolist()
    with tempfile.TemporaryDirectory(prefix="transferkit-bench-serve-") as tmp:
        print("fitting the MiniLM probe ...", file=sys.stderr, flush=True)
        run = fit_run(args.train_rows, args.max_length, Path(tmp))
        rows = [row for mode in ("micro-batching", "batch size 1") for row in measure(run, texts, mode, args)]
    print(
        f"\nSST-2 MiniLM probe (max_length {args.max_length}), one sentence per request, {args.seconds:g} s per row, "
        f"server and clients on 127.0.0.1, {os.cpu_count()} CPU cores; micro-batching: max_batch_size "
        f"{args.max_batch_size}, max_wait_ms {args.max_wait_ms:g}\n"
    )
    print("| mode | clients | requests | throughput (req/s) | p50 (ms) | p95 (ms) | p99 (ms) | errors | mean batch |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        p50, p95, p99 = np.percentile(r["latencies"], [50, 95, 99]) if r["requests"] else (float("nan"),) * 3
        print(
            f"| {r['mode']} | {r['clients']} | {r['requests']} | {r['requests'] / r['wall']:.1f} | {p50:.1f} | "
            f"{p95:.1f} | {p99:.1f} | {r['errors']} | {r['mean_batch']:.1f} |"
        )
    top = max(args.clients)
    on, off = (
        next(r for r in rows if r["mode"] == m and r["clients"] == top) for m in ("micro-batching", "batch size 1")
    )
    speedup = (on["requests"] / on["wall"]) / max(off["requests"] / off["wall"], 1e-9)
    print(f"\nmicro-batching vs batch size 1 at {top} clients: {speedup:.2f}x throughput (target >= 2x)")
    if sum(r["errors"] for r in rows):
        sys.exit("errors: every request should have succeeded")


if __name__ == "__main__":
    main()
