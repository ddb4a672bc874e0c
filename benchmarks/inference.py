"""Benchmark: inference throughput of one fitted model in PyTorch eager vs ONNX Runtime fp32 vs int8.

The model: MiniLM (all-MiniLM-L6-v2) with a probe head fitted on SST-2 training rows, saved, and exported with
`transferkit export RUN --format onnx --quantize int8` (validated on SST-2 dev rows). Each runtime predicts the
same SST-2 test sentences through the same FineTuner code path (tokenise -> model -> softmax), so the numbers are
end-to-end predictions per second, at batch sizes 1 and 32, median of --repeats timed passes (min-max shown)
after one untimed warm-up pass. PyTorch and ONNX Runtime get the same number of threads (torch.set_num_threads
and ORT intra-op threads = --threads; ORT inter-op threads 1). Prints one Markdown table, plus the int8 score
change recorded by the export.

    .venv/bin/python benchmarks/inference.py                 # 500 train, 872 dev, 512 timed test sentences
    .venv/bin/python benchmarks/inference.py --quick         # 200 train, 200 dev, 128 timed sentences
    .venv/bin/python benchmarks/inference.py --json out.json # also the measurements and the table as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_report import markdown_table  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
RUNTIMES = ("torch", "onnx", "onnx-int8")


def load_rows(args):
    import pandas as pd

    path = DATA / "sst2"
    if not path.is_dir():
        sys.exit(f"dataset {path} not found (benchmarks read ../shared/datasets)")
    train = pd.read_csv(path / "train.csv").sample(args.train_rows, random_state=0)
    dev = pd.read_csv(path / "dev.csv")
    dev = dev.sample(min(args.dev_rows, len(dev)), random_state=0)
    test = pd.read_csv(path / "test.csv").sample(args.timed_rows, random_state=0)
    return train, dev, test


def fit_and_export(args, train, dev, directory: Path) -> dict:
    import transferkit as tk
    from transferkit.export.onnx_export import OnnxExportConfig, export_onnx

    model = tk.FineTuner(backbone="minilm", strategy="probe", max_length=args.max_length)
    model.fit(train, verbose=False).save(directory / "run")
    dev.to_csv(directory / "dev.csv", index=False)
    return export_onnx(directory / "run", data=directory / "dev.csv", config=OnnxExportConfig(quantize="int8"))


def loaded(run: Path, runtime: str, threads: int):
    import transferkit as tk
    from transferkit.export.onnx_runtime import FILES, OnnxRunner

    model = tk.load(run, device="cpu", runtime=runtime)
    if runtime != "torch":  # the same thread count as PyTorch
        model.runner_ = OnnxRunner(run / FILES[runtime], threads=threads)
    return model


def throughput(model, texts: list[str], batch_size: int, repeats: int) -> list[float]:
    model._probabilities(texts, batch_size)  # warm-up: allocations, ORT's first-run planning
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        model._probabilities(texts, batch_size)
        rates.append(len(texts) / (time.perf_counter() - started))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-rows", type=int, default=500)
    parser.add_argument("--dev-rows", type=int, default=872, help="validation rows for the int8 score change")
    parser.add_argument("--timed-rows", type=int, default=512, help="test sentences each timed pass predicts")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="torch threads = ORT intra-op threads")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="200 train, 200 dev, 128 timed rows, 3 repeats")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if args.quick:
        args.train_rows, args.dev_rows, args.timed_rows, args.repeats = 200, 200, 128, 3

    import torch

    torch.set_num_threads(args.threads)
    train, dev, test = load_rows(args)
    with tempfile.TemporaryDirectory(prefix="transferkit-bench-inference-") as tmp:
        directory = Path(tmp)
        print("fitting the probe and exporting ...", file=sys.stderr, flush=True)
        record = fit_and_export(args, train, dev, directory)
        texts, labels = test["text"].tolist(), test["label"].tolist()
        rows = []
        for runtime in RUNTIMES:
            model = loaded(directory / "run", runtime, args.threads)
            accuracy = sum(p == y for p, y in zip(model.predict(texts), labels)) / len(texts)
            for batch_size in (1, 32):
                print(f"timing {runtime}, batch {batch_size} ...", file=sys.stderr, flush=True)
                rates = throughput(model, texts, batch_size, args.repeats)
                rows.append((runtime, batch_size, rates, accuracy))
        table = _table(args, record, rows, directory / "run")
    print("\n" + markdown_table(table))
    if args.json:
        runs = [
            {"runtime": r, "batch_size": b, "predictions_per_s": rates, "test_accuracy": a} for r, b, rates, a in rows
        ]
        result = {"benchmark": "inference", "settings": vars(args), "runs": runs, "export": record, "table": table}
        Path(args.json).write_text(json.dumps(result, indent=2, default=str) + "\n")


def _table(args, record: dict, rows: list, run: Path) -> dict:
    """The Markdown table (bench_report format): one row per runtime and batch size, the export's checks as notes."""
    from importlib import metadata

    base = {b: statistics.median(r) for runtime, b, r, _ in rows if runtime == "torch"}
    sizes = {"torch": (run / "weights.safetensors"), "onnx": run / "model.onnx", "onnx-int8": run / "model.int8.onnx"}
    caption = (
        f"SST-2, MiniLM + probe head ({args.train_rows} train rows), max_length {args.max_length}; {len(rows) // 2} "
        f"runtimes x {args.timed_rows} test sentences, end to end (tokenise + model + softmax); {args.threads} thread(s) "
        f"for torch and ONNX Runtime alike; median of {args.repeats} passes (min-max); {os.cpu_count()} CPU cores; "
        f"torch {metadata.version('torch')}, onnxruntime {metadata.version('onnxruntime')}"
    )
    cells = []
    for runtime, batch_size, rates, accuracy in rows:
        median = statistics.median(rates)
        cells.append(
            [runtime, batch_size, f"{median:.1f}", f"{min(rates):.1f}-{max(rates):.1f}", f"{median / base[batch_size]:.2f}x",
             f"{accuracy:.4f}", f"{sizes[runtime].stat().st_size / 1e6:.1f}"]
        )  # fmt: skip
    score, parity = record["int8"]["score"], record["parity"]
    notes = [
        f"parity fp32 ONNX vs PyTorch on {parity['examples']} dev rows: max |Δprob| {parity['max_abs_prob_diff']:.1e}, "
        f"labels identical: {parity['labels_identical']}",
        f"int8 vs fp32 on {score['examples']} dev rows: accuracy {score['fp32']:.4f} -> {score['int8']:.4f} "
        f"({score['change']:+.4f}), same prediction on {100 * record['int8']['agreement_with_fp32']:.1f}% of rows",
    ]
    columns = [
        "runtime",
        "batch",
        "predictions/s (median)",
        "min-max",
        "vs PyTorch",
        "test accuracy",
        "model file (MB)",
    ]
    return {"caption": caption, "columns": columns, "rows": cells, "notes": notes}


if __name__ == "__main__":
    main()
