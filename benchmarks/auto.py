"""Benchmark: `strategy="auto"` under a time budget against every fixed strategy, on several datasets.

For each dataset the same training rows (a stratified sample), the same validation split (10% of them, the
default) and the same test rows go to each fixed strategy (probe, freeze, lora, full, lp-ft; no budget) and to
auto with `--time-budget`. Prints test accuracy and wall time per strategy and, per dataset, the checks the
strategies issue asks for: auto within 1 point of the best fixed strategy, ahead of the worst, and at or under
its budget (the hard limit is 1.1x).

    .venv/bin/python benchmarks/auto.py                        # SST-2, CR, AG News; 1,000 rows, 3m budget
    .venv/bin/python benchmarks/auto.py --quick                # 300 rows, 1m budget, minutes
    .venv/bin/python benchmarks/auto.py --datasets cr --budget 2m --json auto.json
    .venv/bin/python benchmarks/auto.py --fixed-from benchmarks/results/auto-2026-11-30.json   # rerun auto only

`--fixed-from` takes the fixed strategies' rows from an earlier run's JSON (same rows, seeds and settings, checked)
and trains only auto: after a change to auto, the comparison costs one auto fit per dataset.
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
        row.update(reasons=decision["reasons"], val_rows=decision.get("val_rows"))
    return row


def earlier_fixed_rows(name: str, args) -> list[dict] | None:
    """The fixed strategies' rows for `name` from --fixed-from, after checking it used the same settings."""
    if not args.fixed_from:
        return None
    earlier = json.loads(Path(args.fixed_from).read_text())
    for key in ("train_rows", "test_rows", "max_length"):
        if earlier["settings"][key] != getattr(args, key):
            sys.exit(
                f"--fixed-from {args.fixed_from} used {key}={earlier['settings'][key]}, this run {getattr(args, key)}"
            )
    for result in earlier["results"]:
        if result["dataset"] == name:
            return [r for r in result["rows"] if r["strategy"] in FIXED]
    sys.exit(f"--fixed-from {args.fixed_from} has no {name} results")


def run_dataset(name: str, args) -> dict:
    from transferkit.backbones import build_backbone
    from transferkit.config import parse_duration

    train, test = load_text(name, args.train_rows, args.test_rows)
    build_backbone("minilm", max_length=args.max_length)  # loaded once, outside every timing
    rows = earlier_fixed_rows(name, args) or []
    for strategy in [*FIXED, "auto"][len(rows) :]:
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
    parser.add_argument("--fixed-from", help="reuse the fixed strategies' rows of an earlier run's --json file")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if args.quick:
        args.train_rows, args.test_rows, args.budget = 300, 300, "1m"
    results = []
    for name in [n.strip() for n in args.datasets.split(",") if n.strip()]:
        results.append(run_dataset(name, args))
        if args.json:  # after every dataset: a long run that stops early keeps what it measured
            Path(args.json).write_text(json.dumps({"settings": vars(args), "results": results}, indent=2))
    print_tables(results, args)


if __name__ == "__main__":
    main()
