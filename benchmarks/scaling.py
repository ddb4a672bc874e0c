"""Benchmark: training throughput with 1 and 2 data-parallel processes (`transferkit fit --nproc N`).

Full fine-tuning of MiniLM on SST-2 rows, the same global batch in every setting, so each setting trains the same
model (tests/test_distributed.py checks that 2 processes equal 1). Settings on this machine, with the per-process
thread counts that make the comparison fair (never more threads than cores in all):

- 1 process x all cores (the default),
- N processes x cores/N threads (`--nproc N` sets OMP_NUM_THREADS itself),
- 1 process x 1 thread (what each of 2 processes gets on a 2-core machine).

Throughput is training rows x epochs / the training phase's wall time (transferkit.json: training.full.seconds),
so model loading, tokenising and process start-up are not counted; the median of --repeats runs, with min-max.

    .venv/bin/python benchmarks/scaling.py                          # 1,024 rows, 2 epochs, 2 repeats
    .venv/bin/python benchmarks/scaling.py --quick                  # 256 rows, 1 epoch, 1 repeat

On a multi-GPU machine the same comparison is (one process per GPU, NCCL):

    .venv/bin/python benchmarks/scaling.py --nproc 1,2,4,8 --device cuda --rows 20000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sst2"


def one_run(rows_file: Path, nproc: int, threads: int, args, scratch: Path) -> dict:
    out = scratch / f"run-{nproc}-{threads}-{len(list(scratch.iterdir()))}"
    command = [sys.executable, "-m", "transferkit", "fit", "--data", str(rows_file), "--out", str(out)]
    command += ["--backbone", "minilm", "--strategy", "full", "--epochs", str(args.epochs), "--val-fraction", "0"]
    command += ["--batch-size", str(args.batch_size), "--max-length", str(args.max_length), "--no-check-data"]
    command += ["--device", args.device] + (["--nproc", str(nproc)] if nproc > 1 else [])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env["OMP_NUM_THREADS"] = str(threads)  # --nproc N sets cores/N itself; set here too for the 1-process rows
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    manifest = json.loads((out / "transferkit.json").read_text())
    seconds = manifest["training"]["full"]["seconds"]
    return {"seconds": seconds, "rows_per_s": args.rows * args.epochs / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32, help="the global batch, split between processes")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--nproc", default="1,2", help="process counts to compare")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="256 rows, 1 epoch, 1 repeat")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.epochs, args.repeats = 256, 1, 1
    import pandas as pd

    if not DATA.is_dir():
        sys.exit(f"dataset {DATA} not found (benchmarks read ../shared/datasets)")
    cores = os.cpu_count() or 1
    settings = [(n, max(cores // n, 1), f"{n} x {max(cores // n, 1)} threads") for n in map(int, args.nproc.split(","))]
    if args.device == "cpu" and cores > 1:
        settings.append((1, 1, "1 x 1 thread"))
    results = []
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        rows_file = scratch / "train.csv"
        pd.read_csv(DATA / "train.csv").head(args.rows).to_csv(rows_file, index=False)
        for nproc, threads, label in settings:
            runs = []
            for repeat in range(args.repeats):
                print(f"[scaling] {label}, run {repeat + 1}/{args.repeats} ...", file=sys.stderr, flush=True)
                runs.append(one_run(rows_file, nproc, threads, args, scratch))
            speeds = [r["rows_per_s"] for r in runs]
            results.append({"setting": label, "nproc": nproc, "rows_per_s": statistics.median(speeds), "runs": runs})
    base = results[0]["rows_per_s"]
    print(
        f"\nMiniLM full fine-tuning, SST-2 {args.rows} rows x {args.epochs} epochs, global batch {args.batch_size}, "
        f"max_length {args.max_length}, {cores} CPU cores, device {args.device}; median of {args.repeats}\n"
    )
    print("| processes x threads | training rows/s (min-max) | vs 1 process |")
    print("|---|---|---|")
    for r in results:
        speeds = [x["rows_per_s"] for x in r["runs"]]
        print(
            f"| {r['setting']} | {r['rows_per_s']:.1f} ({min(speeds):.1f}-{max(speeds):.1f}) | {r['rows_per_s'] / base:.2f}x |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": vars(args), "results": results}, indent=2))


if __name__ == "__main__":
    main()
