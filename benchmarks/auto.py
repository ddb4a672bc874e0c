"""Benchmark: `strategy="auto"` under a time budget against every fixed strategy, on several datasets.

For each dataset the same training rows (a stratified sample), the same validation split (10% of them, the
default) and the same test rows go to each fixed strategy (probe, freeze, lora, full, lp-ft; no budget) and to
auto with `--time-budget`. Prints test accuracy and wall time per strategy and, per dataset, the checks the
strategies issue asks for: auto within 1 point of the best fixed strategy, ahead of the worst, and at or under
its budget (the hard limit is 1.1x).

    .venv/bin/python benchmarks/auto.py                        # SST-2, CR, AG News; 1,000 rows, 3m budget
    .venv/bin/python benchmarks/auto.py --quick                # 300 rows, 1m budget, minutes
    .venv/bin/python benchmarks/auto.py --datasets cr --budget 2m --json auto.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ranking import DATA, _subsample  # noqa: E402

FIXED = ["probe", "freeze", "lora", "full", "lp-ft"]
DATASETS = ["sst2", "cr", "ag_news"]


def load_text(name: str, train_rows: int, test_rows: int):
    import pandas as pd

    path = DATA / name
    if not path.is_dir():
        sys.exit(f"dataset {path} not found (benchmarks read ../shared/datasets)")
    train, test = pd.read_csv(path / "train.csv"), pd.read_csv(path / "test.csv")
    return (
        _subsample(train["text"].tolist(), train["label"].tolist(), train_rows),
        _subsample(test["text"].tolist(), test["label"].tolist(), test_rows),
    )


def fit_one(strategy: str, train, test, args) -> dict:
    import transferkit as tk

    options = dict(backbone="minilm", strategy=strategy, max_length=args.max_length, check_data=False)
    if strategy == "auto":
        options["time_budget"] = args.budget
    started = time.perf_counter()
    model = tk.FineTuner(**options).fit(train[0], train[1], verbose=False)
    wall = time.perf_counter() - started
    row = {"strategy": strategy, "accuracy": float(model.score(test[0], test[1])), "wall_s": wall}
    if strategy == "auto":
        decision = model.run_info_["auto"]
        row.update(chosen=decision["chosen"], trained=[r["strategy"] for r in decision["runs"]])
        row["reasons"] = decision["reasons"]
    return row


def run_dataset(name: str, args) -> dict:
    from transferkit.backbones import build_backbone
    from transferkit.config import parse_duration

    train, test = load_text(name, args.train_rows, args.test_rows)
    build_backbone("minilm", max_length=args.max_length)  # loaded once, outside every timing
    rows = []
    for strategy in [*FIXED, "auto"]:
        print(f"[{name}] {strategy} ...", file=sys.stderr, flush=True)
        rows.append(fit_one(strategy, train, test, args))
    fixed = [r for r in rows if r["strategy"] != "auto"]
    auto = rows[-1]
    best, worst = max(fixed, key=lambda r: r["accuracy"]), min(fixed, key=lambda r: r["accuracy"])
    budget = parse_duration(args.budget)
    return {
        "dataset": name,
        "train_rows": len(train[0]),
        "test_rows": len(test[0]),
        "rows": rows,
        "best_fixed": best["strategy"],
        "worst_fixed": worst["strategy"],
        "gap_to_best": auto["accuracy"] - best["accuracy"],
        "within_1_point": auto["accuracy"] >= best["accuracy"] - 0.01,
        "ahead_of_worst": auto["accuracy"] > worst["accuracy"],
        "budget_s": budget,
        "within_budget": auto["wall_s"] <= budget,
        "within_1_1x": auto["wall_s"] <= 1.1 * budget,
    }


def print_tables(results: list[dict], args) -> None:
    print(
        f"\nMiniLM, max_length {args.max_length}, default settings per strategy (3 epochs, early stopping on a 10% "
        f"validation split), auto --time-budget {args.budget}; {os.cpu_count()} CPU cores\n"
    )
    header = " | ".join(f"{s} acc (s)" for s in [*FIXED, "auto"])
    print(f"| dataset (train/test) | {header} | auto chose (trained) |")
    print("|---" * (len(FIXED) + 3) + "|")
    for r in results:
        cells = " | ".join(f"{row['accuracy']:.3f} ({row['wall_s']:.0f})" for row in r["rows"])
        auto = r["rows"][-1]
        print(
            f"| {r['dataset']} ({r['train_rows']}/{r['test_rows']}) | {cells} | {auto['chosen']} "
            f"({', '.join(auto['trained'])}) |"
        )
    print("\n| dataset | auto - best fixed | within 1 point | ahead of worst | auto wall / budget |")
    print("|---|---|---|---|---|")
    for r in results:
        auto = r["rows"][-1]
        print(
            f"| {r['dataset']} | {100 * r['gap_to_best']:+.1f} points ({r['best_fixed']}) | "
            f"{'yes' if r['within_1_point'] else 'NO'} | {'yes' if r['ahead_of_worst'] else 'NO'} "
            f"({r['worst_fixed']}) | {auto['wall_s']:.0f} / {r['budget_s']:.0f} s "
            f"{'' if r['within_budget'] else '(OVER)'} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--train-rows", type=int, default=1000)
    parser.add_argument("--test-rows", type=int, default=1000)
    parser.add_argument("--max-length", type=int, default=64, help="tokens per text")
    parser.add_argument("--budget", default="3m", help="auto's --time-budget")
    parser.add_argument("--quick", action="store_true", help="300 train / 300 test rows, 1m budget")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if args.quick:
        args.train_rows, args.test_rows, args.budget = 300, 300, "1m"
    results = [run_dataset(name.strip(), args) for name in args.datasets.split(",") if name.strip()]
    print_tables(results, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": vars(args), "results": results}, indent=2))


if __name__ == "__main__":
    main()
