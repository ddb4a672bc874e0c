"""Benchmark: hardware efficiency (MFU) of transferkit's training loop on this CPU.

MFU = achieved training FLOP/s / peak dense FLOP/s, both measured here, in one run:
  * peak: fp32 `torch.matmul` of large square matrices (2 n^3 FLOPs each), all of torch's threads, median of
    --matmul-repeats timed products after one warm-up, at each of --sizes; the best median is the peak (the
    most favourable dense matmul this CPU sustains, so MFU is not flattered by a weak denominator). Measured
    before and after training; both are reported;
  * achieved: transferkit `full` fine-tuning all-MiniLM-L6-v2 on SST-2 rows (batch 32, max_length 128, dynamic
    padding, length-grouped batches: the settings of benchmarks/trainer.py), FLOPs of forward + backward of
    every batch the loop ran, divided by the training phase's wall time (transferkit.json's
    training.full.seconds: includes data loading, the optimizer and everything else the loop does).
FLOPs are counted with torch.utils.flop_counter.FlopCounterMode (matmuls and attention products; elementwise
ops, embedding gradients and the optimizer count zero, the usual MFU convention). A transformer's step costs
exactly n (a L + b L^2 + c) FLOPs for n rows padded to L tokens, so a, b, c come from counting three lengths
(checked on a fourth shape); the loop's batches are rebuilt from the seed exactly as it builds them
(LengthGroupedBatches), so every (rows, padded length) it ran is summed. "Executed" counts padding tokens
(the work done); "useful" counts each row at its own length (model FLOPs proper). Target (issue 12): >= 40%.

    .venv/bin/python benchmarks/mfu.py              # 2,000 rows, 1 epoch, 3 repeats; matmul 1024/2048/4096
    .venv/bin/python benchmarks/mfu.py --quick      # 256 rows, 1 repeat; matmul 2048
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_report import markdown_table, spread, verdict  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sst2"
TARGET = 0.40
PROBE_LENGTHS = (8, 16, 32)  # three lengths fix a, b, c; a fourth shape checks them


def matmul_flops_per_s(rows: int, inner: int, cols: int, repeats: int) -> list[float]:
    """FLOP/s of fp32 (rows x inner) @ (inner x cols), one warm-up then `repeats` timed products."""
    import torch

    a, b = torch.randn(rows, inner), torch.randn(inner, cols)
    torch.matmul(a, b)
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        torch.matmul(a, b)
        rates.append(2 * rows * inner * cols / (time.perf_counter() - started))
    return rates


def matmul_peak(sizes: list[int], repeats: int) -> dict[int, list[float]]:
    return {n: matmul_flops_per_s(n, n, n, repeats) for n in sizes}


def fit(texts: list[str], labels: list[int], args):
    """One transferkit `full` fit (no validation); returns the model and its run record."""
    import transferkit as tk

    model = tk.FineTuner(
        backbone="minilm",
        strategy="full",
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_length=args.max_length,
        seed=args.seed,
        device="cpu",
        val_fraction=0.0,
        early_stopping_patience=None,
        check_data=False,
    )
    return model.fit(texts, labels, verbose=False)


def step_flops(module, rows: int, length: int) -> int:
    """Counted FLOPs of one training step's forward + backward on `rows` x `length` tokens."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    batch = {
        "input_ids": torch.full((rows, length), 1000, dtype=torch.long),
        "attention_mask": torch.ones(rows, length, dtype=torch.long),
    }
    with FlopCounterMode(display=False) as counter:
        loss = torch.nn.functional.cross_entropy(module(batch), torch.zeros(rows, dtype=torch.long))
        loss.backward()
    module.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def flop_formula(module):
    """(rows, length) -> FLOPs, from n (a L + b L^2 + c) fitted on three counted lengths, checked on a fourth."""
    import numpy as np

    module.train()
    module.requires_grad_(True)  # fit() leaves the model frozen for inference; training computes weight gradients
    lengths = np.array(PROBE_LENGTHS, dtype=float)
    counted = [step_flops(module, 1, int(length)) for length in lengths]
    a, b, c = np.linalg.solve(np.stack([lengths, lengths**2, np.ones(3)], axis=1), counted)

    def formula(rows: int, length: int) -> float:
        return float(rows * (a * length + b * length**2 + c))

    check = step_flops(module, 3, 24)
    if abs(formula(3, 24) - check) > 1e-6 * check:
        sys.exit(f"FLOPs are not n(aL + bL^2 + c) for this model: {formula(3, 24):.0f} vs counted {check}")
    return formula


def loop_shapes(lengths: list[int], args) -> Counter:
    """(rows, padded length) of every batch the loop ran: the same LengthGroupedBatches, seed and epochs."""
    from transferkit.training.batching import LengthGroupedBatches

    batches = LengthGroupedBatches(lengths, args.batch_size, args.seed, group_by_length=True)
    shapes: Counter = Counter()
    for epoch in range(1, args.epochs + 1):  # the loop's epochs count from 1
        batches.set_epoch(epoch)
        shapes.update((len(batch), max(lengths[i] for i in batch)) for batch in batches)
    return shapes


def training_flops(model, texts: list[str], args) -> dict:
    """Executed (with padding) and useful (each row at its own length) FLOPs of the whole training run."""
    lengths = [len(ids) for ids in model.model_.backbone.encode(texts)]
    formula = flop_formula(model.model_)
    shapes = loop_shapes(lengths, args)
    steps = model.run_info_["training"]["full"]["optimizer_steps"]
    assert sum(shapes.values()) == steps, (sum(shapes.values()), steps)  # one optimizer step per batch
    padded = sum(rows * length * count for (rows, length), count in shapes.items())
    return {
        "executed": sum(formula(rows, length) * count for (rows, length), count in shapes.items()),
        "useful": sum(formula(1, length) for length in lengths) * args.epochs,
        "tokens": sum(lengths) * args.epochs,
        "padded_tokens": padded,
        "batches": steps,
    }


def load_rows(args) -> tuple[list[str], list[int]]:
    import pandas as pd

    if not DATA.is_dir():
        sys.exit(f"dataset {DATA} not found (benchmarks read ../shared/datasets)")
    train = pd.read_csv(DATA / "train.csv").sample(args.rows, random_state=0)
    labels = sorted(train["label"].unique())
    return train["text"].tolist(), [labels.index(v) for v in train["label"]]


def measure(args) -> dict:
    """Peak before, the timed fits, the FLOP count (once: every repeat runs the same batches), peak after."""
    import torch

    sizes = [int(n) for n in args.sizes.split(",")]
    print(f"[mfu] matmul peak ({args.sizes}) ...", file=sys.stderr, flush=True)
    before = matmul_peak(sizes, args.matmul_repeats)
    texts, labels = load_rows(args)
    seconds = []
    for repeat in range(args.repeats):
        print(f"[mfu] training, run {repeat + 1}/{args.repeats} ...", file=sys.stderr, flush=True)
        model = fit(texts, labels, args)
        seconds.append(model.run_info_["training"]["full"]["seconds"])
    flops = training_flops(model, texts, args)
    typical = round(flops["padded_tokens"] / flops["batches"])  # tokens of an average batch
    shaped = matmul_flops_per_s(typical, 384, 1536, args.matmul_repeats)  # MiniLM's feed-forward matmul
    after = matmul_peak(sizes, args.matmul_repeats)
    return {
        "threads": torch.get_num_threads(),
        "matmul_before": before,
        "matmul_after": after,
        "matmul_loop_shape": {"shape": [typical, 384, 1536], "flops_per_s": shaped},
        "train_seconds": seconds,
        "flops": flops,
    }


def summarize(measured: dict) -> dict:
    """The peak (best median over sizes, before and after training pooled) and MFU per timed fit."""
    both = {n: measured["matmul_before"][n] + measured["matmul_after"][n] for n in measured["matmul_before"]}
    best = max(both, key=lambda n: statistics.median(both[n]))
    peak = statistics.median(both[best])
    flops, seconds = measured["flops"], measured["train_seconds"]
    mfu = [flops["executed"] / s / peak for s in seconds]
    return {
        "peak_size": best,
        "peak_flops_per_s": peak,
        "mfu": mfu,
        "useful_mfu": [flops["useful"] / s / peak for s in seconds],
        "target_met": bool(statistics.median(mfu) >= TARGET),
    }


def _gflops(values: list[float]) -> str:
    return spread([v / 1e9 for v in values])


def table(measured: dict, summary: dict, args) -> dict:
    flops, seconds, peak = measured["flops"], measured["train_seconds"], summary["peak_flops_per_s"]
    rows = [
        [
            f"fp32 matmul {n}x{n}, before / after training",
            f"{_gflops(before)} / {_gflops(measured['matmul_after'][n])}",
            "",
        ]
        for n, before in measured["matmul_before"].items()
    ]
    shape = measured["matmul_loop_shape"]
    share = statistics.median(shape["flops_per_s"]) / peak
    rows.append(
        [
            f"fp32 matmul {'x'.join(map(str, shape['shape']))} (the loop's feed-forward shape)",
            _gflops(shape["flops_per_s"]),
            f"{share:.0%}",
        ]
    )
    executed, useful = statistics.median(summary["mfu"]), statistics.median(summary["useful_mfu"])
    rows.append(
        [
            "transferkit `full` training, executed FLOPs (with padding)",
            _gflops([flops["executed"] / s for s in seconds]),
            f"**{executed:.1%}**",
        ]
    )
    rows.append(
        [
            "transferkit `full` training, useful FLOPs (real tokens)",
            _gflops([flops["useful"] / s for s in seconds]),
            f"{useful:.1%}",
        ]
    )
    caption = (
        f"MFU: all-MiniLM-L6-v2 `full` on {args.rows:,} SST-2 rows x {args.epochs} epoch(s), batch {args.batch_size}, "
        f"max_length {args.max_length}; {flops['executed'] / 1e12:.2f} TFLOP executed in {flops['batches']} steps "
        f"({flops['tokens']:,} tokens, {flops['padded_tokens']:,} with padding); training time {spread(seconds)} s; "
        f"peak = median fp32 matmul {summary['peak_size']}^2 = {peak / 1e9:.1f} GFLOP/s; "
        f"{measured['threads']} threads, {os.cpu_count()} CPU cores; median of {args.repeats} run(s) (min-max)"
    )
    notes = [
        f"MFU (executed FLOPs) {executed:.1%}; target >= {TARGET:.0%}: {verdict(summary['target_met'])}",
        "FLOPs count matmuls and attention only (forward + backward); the time is everything the loop does "
        "(batching, padding, elementwise ops, AdamW over all 22.7M weights each step)",
    ]
    columns = ["what", "GFLOP/s median (min-max)", "share of peak"]
    return {"caption": caption, "columns": columns, "rows": rows, "notes": notes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000, help="SST-2 training rows")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeats", type=int, default=3, help="timed fits")
    parser.add_argument("--sizes", default="1024,2048,4096", help="square matmul sizes for the peak")
    parser.add_argument("--matmul-repeats", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="256 rows, 1 repeat, matmul 2048 x 5")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeats, args.sizes, args.matmul_repeats = 256, 1, "2048", 5
    measured = measure(args)
    summary = summarize(measured)
    result = {"benchmark": "mfu", "settings": vars(args), **measured, **summary}
    result["table"] = table(measured, summary, args)
    print("\n" + markdown_table(result["table"]))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
