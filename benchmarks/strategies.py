"""Benchmark: the five strategies on one real dataset, side by side, in one run on this machine.

Prints one Markdown table: accuracy, macro-F1, wall time, peak memory and trainable parameters per strategy,
plus the two reference points the strategies issue asks for:
  * a scikit-learn LogisticRegression on the same frozen MiniLM embeddings (every strategy should reach it);
  * a probe sweep of 10 head configurations on cached features, timed against one feature-extraction pass.

Each strategy runs in its own subprocess, so peak memory (sampled RSS) is that strategy's alone.

    .venv/bin/python benchmarks/strategies.py                  # SST-2, 2,000 train sentences, full test set
    .venv/bin/python benchmarks/strategies.py --quick          # 400 train / 400 test, minutes
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
STRATEGIES = ["probe", "freeze", "lora", "full", "lp-ft"]


class PeakRSS:
    """Samples this process's resident memory every 20 ms; `peak` and `base` in MiB."""

    def __init__(self) -> None:
        import psutil

        self.process = psutil.Process()
        self.base = self.peak = self.process.memory_info().rss / 2**20
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss / 2**20)

    def __enter__(self) -> PeakRSS:
        self.base = self.process.memory_info().rss / 2**20
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def load_split(name: str, n_train: int | None, n_test: int | None, seed: int = 0):
    import pandas as pd

    path = DATA / name
    if not path.is_dir():
        sys.exit(f"dataset {path} not found (benchmarks read ../shared/datasets)")
    train, test = pd.read_csv(path / "train.csv"), pd.read_csv(path / "test.csv")
    if n_train and n_train < len(train):
        train = train.sample(n_train, random_state=seed)
    if n_test and n_test < len(test):
        test = test.sample(n_test, random_state=seed)
    return train, test


def run_one(args) -> dict:
    """Child process: fit one strategy and report metrics, time and memory as JSON."""
    import transferkit as tk
    from transferkit.backbones import build_backbone

    train, test = load_split(args.dataset, args.train_rows, args.test_rows)
    build_backbone("minilm")  # load libraries and weights once, so the memory baseline includes them
    options = json.loads(args.options)
    with PeakRSS() as memory:
        started = time.perf_counter()
        model = tk.FineTuner(
            backbone="minilm", strategy=args.run, max_length=args.max_length, batch_size=args.batch_size, **options
        )
        model.fit(train, verbose=False)
        wall = time.perf_counter() - started
    metrics = model.evaluate(test)
    return {
        "strategy": args.run,
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "wall_s": wall,
        "peak_rss_mib": memory.peak,
        "train_mem_mib": memory.peak - memory.base,
        "trainable": model.run_info_["parameters"]["trainable"],
        "share": model.run_info_["parameters"]["trainable_share"],
    }


def probe_sweep(args) -> dict:
    """One feature-extraction pass vs. 10 head configurations trained on the cached features."""
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegressionCV

    import transferkit as tk
    from transferkit.backbones import build_backbone
    from transferkit.training.inference import run_batched

    train, test = load_split(args.dataset, args.train_rows, args.test_rows)
    backbone = build_backbone("minilm", max_length=args.max_length).eval()

    def features(texts):
        items = backbone.encode(texts)
        return run_batched(
            backbone.forward_features, items, backbone.collate, [len(i) for i in items], 64, torch.device("cpu")
        ).numpy()

    started = time.perf_counter()
    train_x = features(train["text"].tolist())
    extraction = time.perf_counter() - started
    test_x = features(test["text"].tolist())
    # The reference: scikit-learn's logistic regression, C chosen by 5-fold cross-validation on the training set.
    reference = LogisticRegressionCV(Cs=[0.01, 0.1, 1.0, 10.0], cv=5, max_iter=5000).fit(train_x, train["label"])
    sweep = [dict(probe_lr=lr, head=head) for lr in (1e-3, 3e-3, 1e-2, 3e-2, 1e-1) for head in ("linear", "mlp")]
    os.environ["TRANSFERKIT_CACHE"] = args.cache  # warm: the features were cached by the probe run
    tk.FineTuner(strategy="probe", max_length=args.max_length).fit(train, verbose=False)  # backbone loaded once
    fitted, started = [], time.perf_counter()
    for cfg in sweep:
        fitted.append(tk.FineTuner(strategy="probe", max_length=args.max_length, **cfg).fit(train, verbose=False))
    sweep_time = time.perf_counter() - started
    chosen = max(fitted, key=lambda m: m.run_info_["metrics"]["validation"]["accuracy"])  # picked on validation
    return {
        "extraction_s": extraction,
        "sweep_s": sweep_time,
        "sweep_chosen": chosen.score(test),
        "sweep_configs": len(sweep),
        "logreg_accuracy": float(reference.score(test_x, test["label"])),
        "logreg_C": float(reference.C_[0]),
        "train_dims": list(np.shape(train_x)),
    }


def child(args, run: str, options: dict | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", run, "--options", json.dumps(options or {})]
    cmd += ["--dataset", args.dataset, "--max-length", str(args.max_length), "--batch-size", str(args.batch_size)]
    cmd += ["--cache", args.cache]
    if args.train_rows:
        cmd += ["--train-rows", str(args.train_rows)]
    if args.test_rows:
        cmd += ["--test-rows", str(args.test_rows)]
    env = {**os.environ, "TRANSFERKIT_CACHE": args.cache}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"{run} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="sst2")
    parser.add_argument("--train-rows", type=int, default=2000)
    parser.add_argument("--test-rows", type=int, default=None, help="default: the whole test split")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="400 train / 400 test rows")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--cache", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.run = args.child
        print(json.dumps(probe_sweep(args) if args.child == "sweep" else run_one(args)))
        return
    if args.quick:
        args.train_rows, args.test_rows = 400, 400
    args.cache = tempfile.mkdtemp(prefix="transferkit-bench-cache-")  # cold cache: the probe pays extraction
    rows = []
    for strategy in STRATEGIES:
        print(f"running {strategy} ...", file=sys.stderr, flush=True)
        rows.append(child(args, strategy))
    sweep = child(args, "sweep")
    full = next(r for r in rows if r["strategy"] == "full")
    lora = next(r for r in rows if r["strategy"] == "lora")
    print(
        f"\n{args.dataset}: {args.train_rows or 'all'} train rows, test {args.test_rows or 'all'}, MiniLM, max_length "
        f"{args.max_length}, batch {args.batch_size}, {os.cpu_count()} CPU cores\n"
    )
    print(
        "| strategy | accuracy | macro-F1 | wall time (s) | peak RSS (MiB) | training memory (MiB) | trainable params |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['strategy']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {r['wall_s']:.1f} | {r['peak_rss_mib']:.0f} | "
            f"{r['train_mem_mib']:.0f} | {r['trainable']:,} ({100 * r['share']:.2f}%) |"
        )
    print(
        f"| LogisticRegression on frozen embeddings (C={sweep['logreg_C']} by 5-fold CV) | {sweep['logreg_accuracy']:.4f} | | | | | |"
    )
    print()
    print(
        f"probe sweep: {sweep['sweep_configs']} head configurations on cached features took {sweep['sweep_s']:.1f} s = "
        f"{sweep['sweep_s'] / sweep['extraction_s']:.2f}x one feature-extraction pass ({sweep['extraction_s']:.1f} s); "
        f"test accuracy of the configuration chosen on validation {sweep['sweep_chosen']:.4f}"
    )
    print(
        f"lora vs full: training memory {lora['train_mem_mib'] / full['train_mem_mib']:.2f}x, peak RSS "
        f"{lora['peak_rss_mib'] / full['peak_rss_mib']:.2f}x; accuracy {100 * (lora['accuracy'] - full['accuracy']):+.1f} points"
    )
    below = [r["strategy"] for r in rows if r["accuracy"] < sweep["logreg_accuracy"]]
    print(f"strategies below the LogisticRegression reference: {', '.join(below) or 'none'}")


if __name__ == "__main__":
    main()
