"""Benchmark: few-shot text classification, SetFit vs transferkit's probe, lp-ft and contrastive, same MiniLM.

SST-2, CR, AG News and Emotion at 8 and 64 labelled examples per class, 5 seeds each (a seed picks the training
examples and seeds the fit), every method scored on the same test rows (at most 1,000 per dataset, sampled once
with seed 0). Every fit runs in its own process; its training time counts loading the backbone and training (not
importing libraries), and predicting the test rows is timed apart. No validation split for the fixed strategies:
few-shot rows all train (auto keeps its default, see STRATEGIES). Prints one Markdown table: mean ± std test
accuracy over the seeds, and the mean wall time per fit (training; training + predicting), then the issue's target
per cell: contrastive's accuracy >= SetFit's at <= 1/3 of SetFit's time. SetFit runs in a scratch working directory
(its default writes checkpoints to ./checkpoints).

SetFit (its defaults, all-MiniLM-L6-v2 from the same local directory) runs from a separate virtual environment,
since it pins its own sentence-transformers / transformers:

    python -m venv /tmp/setfit && /tmp/setfit/bin/pip install setfit
    .venv/bin/python benchmarks/fewshot.py --setfit-python /tmp/setfit/bin/python --json benchmarks/results/fewshot.json

Without --setfit-python the SetFit column is left out. `--quick` is a smoke test of the harness (SST-2, 8 per
class, 1 seed, 200 test rows, transferkit's strategies only unless --setfit-python is given): a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DATASETS = ["sst2", "cr", "ag_news", "emotion"]
SHOTS = [8, 64]
SEEDS = 5
TEST_ROWS = 1000
STRATEGIES = {  # transferkit's methods: strategy and options (val_fraction 0: the few rows all train)
    "probe": {"strategy": "probe"},
    "lp-ft": {"strategy": "lp-ft"},
    "contrastive": {"strategy": "contrastive"},
    # what a user who does not choose gets, with transferkit's default validation share: below 20 rows (SST-2, CR at
    # 8 per class) nothing can be held out and auto trains contrastive; above, it holds out a quarter and compares
    "auto": {"strategy": "auto", "val_fraction": 0.1},
}

# Runs inside the SetFit environment: reads a job (JSON) on stdin, prints {"predictions", "fit_s"} on stdout.
SETFIT_WORKER = r"""
import json, sys, time
job = json.load(sys.stdin)
from datasets import Dataset
import setfit
started = time.perf_counter()
model = setfit.SetFitModel.from_pretrained(job["model"])
train = Dataset.from_dict({"text": job["texts"], "label": job["labels"]})
if hasattr(setfit, "TrainingArguments"):  # setfit >= 1.0
    trainer = setfit.Trainer(model=model, args=setfit.TrainingArguments(seed=job["seed"]), train_dataset=train)
else:  # setfit 0.x
    trainer = setfit.SetFitTrainer(model=model, train_dataset=train, seed=job["seed"])
trainer.train()
fit_s = time.perf_counter() - started
started = time.perf_counter()
predictions = [int(p) for p in model.predict(job["test"])]
print(json.dumps({"predictions": predictions, "fit_s": fit_s, "predict_s": time.perf_counter() - started}))
"""


def load_rows(dataset: str, shots: int, seed: int, test_rows: int) -> dict:
    """`shots` training rows per class (sampled with `seed`, shuffled) and the test rows (sampled with seed 0)."""
    import pandas as pd

    path = DATA / dataset
    if not path.is_dir():
        sys.exit(f"dataset {path} not found (benchmarks read ../shared/datasets)")
    train, test = pd.read_csv(path / "train.csv"), pd.read_csv(path / "test.csv")
    few = pd.concat([rows.sample(shots, random_state=seed) for _, rows in train.groupby("label")])
    few = few.sample(frac=1, random_state=seed)
    if test_rows < len(test):
        test = test.sample(test_rows, random_state=0)
    labels = sorted(train["label"].unique())
    return {
        "texts": few["text"].tolist(),
        "labels": [labels.index(v) for v in few["label"]],
        "test": test["text"].tolist(),
        "test_labels": [labels.index(v) for v in test["label"]],
        "seed": seed,
    }


def transferkit_worker(job: dict, method: str) -> dict:
    """Child process: one transferkit fit on a cold feature cache; the libraries are imported before the clock."""
    import importlib

    for name in ("torch", "transformers", "accelerate", "peft", "transferkit.training.loop"):
        importlib.import_module(name)
    import transferkit as tk

    options = {"val_fraction": 0.0, **STRATEGIES[method], "seed": job["seed"]}
    started = time.perf_counter()
    model = tk.FineTuner(backbone="minilm", **options).fit(job["texts"], job["labels"], verbose=False)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    predictions = [int(p) for p in model.predict(job["test"])]
    result = {"predictions": predictions, "fit_s": fit_s, "predict_s": time.perf_counter() - started}
    if "auto" in model.run_info_:
        result["chosen"] = model.run_info_["auto"]["chosen"]  # the strategy auto picked for this fit
    return result


def run_fit(method: str, job: dict, args) -> dict:
    """One fit in its own process; returns its accuracy on the test rows and its wall time."""
    if method == "setfit":
        from transferkit.backbones.embedded import minilm_dir

        python = os.path.abspath(args.setfit_python)  # not resolved: a venv's python is a link to the base one
        cmd, payload = [python, "-c", SETFIT_WORKER], {**job, "model": str(minilm_dir())}
    else:
        cmd, payload = [sys.executable, os.path.abspath(__file__), "--worker", method], job
    with tempfile.TemporaryDirectory(prefix="transferkit-fewshot-") as scratch:  # cold cache; SetFit's checkpoints
        env = {**os.environ, "TRANSFERKIT_CACHE": scratch}
        done = subprocess.run(cmd, input=json.dumps(payload), capture_output=True, text=True, env=env, cwd=scratch)
    if done.returncode != 0:
        sys.exit(f"{method} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    correct = sum(p == y for p, y in zip(result["predictions"], job["test_labels"]))
    measured = {
        "accuracy": correct / len(job["test_labels"]),
        "fit_s": result["fit_s"],
        "predict_s": result["predict_s"],
    }
    if "chosen" in result:
        measured["chosen"] = result["chosen"]
    return measured


def cell(runs: list[dict]) -> str:
    accuracies = [r["accuracy"] for r in runs]
    spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    fit, total = statistics.mean(r["fit_s"] for r in runs), statistics.mean(r["fit_s"] + r["predict_s"] for r in runs)
    return f"{statistics.mean(accuracies):.3f} ± {spread:.3f} ({fit:.1f} s; {total:.1f} s)"


def target_lines(results: dict) -> list[str]:
    """The few-shot issue's target per cell: contrastive's mean accuracy >= SetFit's at <= 1/3 of its mean time."""
    lines = []
    for (dataset, shots), by_method in results.items():
        ours, theirs = by_method.get("contrastive"), by_method.get("setfit")
        if not ours or not theirs:
            continue
        mean = lambda runs, key: statistics.mean(key(r) for r in runs)  # noqa: E731
        gain = 100 * (mean(ours, lambda r: r["accuracy"]) - mean(theirs, lambda r: r["accuracy"]))
        fit = mean(ours, lambda r: r["fit_s"]) / mean(theirs, lambda r: r["fit_s"])
        total = mean(ours, lambda r: r["fit_s"] + r["predict_s"]) / mean(theirs, lambda r: r["fit_s"] + r["predict_s"])
        met = gain >= 0 and total <= 1 / 3
        points = f"{gain:+.1f}" if abs(gain) >= 0.05 else f"{gain:+.2f}" if abs(gain) >= 0.005 else "0.00"
        lines.append(
            f"- {dataset} {shots}/class: contrastive - SetFit {points} points; time ratio {fit:.2f} (training), "
            f"{total:.2f} (training + predicting); target (>= 0 points at <= 0.33 of the time): "
            f"{'met' if met else 'NOT met'}"
        )
    return lines


def print_table(results: dict, methods: list[str], args) -> None:
    print(
        f"\nFew-shot accuracy on <= {args.test_rows} test rows, mean ± std over {args.seeds} seed(s), (mean wall time "
        f"per fit: training; training + predicting the test rows); MiniLM-L6 for every method; "
        f"{os.cpu_count()} CPU cores\n"
    )
    print("| dataset | per class | " + " | ".join(methods) + " |")
    print("|---|---|" + "---|" * len(methods))
    for (dataset, shots), by_method in results.items():
        print(f"| {dataset} | {shots} | " + " | ".join(cell(by_method[m]) for m in methods) + " |")
    print("\n".join(["", *target_lines(results)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setfit-python", help="python of a virtual environment with setfit installed")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--shots", default=",".join(map(str, SHOTS)), help="examples per class, comma-separated")
    parser.add_argument("--seeds", type=int, default=SEEDS)
    parser.add_argument("--test-rows", type=int, default=TEST_ROWS)
    parser.add_argument("--quick", action="store_true", help="SST-2, 8 per class, 1 seed, 200 test rows")
    parser.add_argument("--json", help="also write every fit's result to this file")
    parser.add_argument(
        "--methods",
        help=f"comma-separated subset of setfit,{','.join(STRATEGIES)} (default: all; setfit needs --setfit-python)",
    )
    parser.add_argument(
        "--append",
        action="store_true",
        help="keep the fits already in --json and run only the missing ones (same dataset, shots, method and seed): "
        "a long benchmark can stop and go on later",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(transferkit_worker(json.load(sys.stdin), args.worker)))
        return
    if args.quick:
        args.datasets, args.shots, args.seeds, args.test_rows = "sst2", "8", 1, 200
    methods = (["setfit"] if args.setfit_python else []) + list(STRATEGIES)
    if args.methods:
        asked = args.methods.split(",")
        unknown = [m for m in asked if m not in methods]
        if unknown:
            sys.exit(f"unknown method(s) {', '.join(unknown)}: choose from {', '.join(methods)}")
        methods = asked
    results: dict = {}
    earlier = earlier_fits(args)  # --append: not run again (a long benchmark can span several sessions)
    done = {fit_key(fit): {k: v for k, v in fit.items() if k not in ("dataset", "shots", "method")} for fit in earlier}
    for dataset in args.datasets.split(","):
        for shots in map(int, args.shots.split(",")):
            by_method = results.setdefault((dataset, shots), {m: [] for m in methods})
            for seed in range(args.seeds):
                job = load_rows(dataset, shots, seed, args.test_rows)
                for method in methods:
                    if (dataset, shots, method, seed) in done:  # --append: measured by an earlier run, kept
                        by_method[method].append(done[dataset, shots, method, seed])
                        continue
                    print(f"{dataset} {shots}/class seed {seed}: {method} ...", file=sys.stderr, flush=True)
                    by_method[method].append({"seed": seed, **run_fit(method, job, args)})
                    # after every fit: a long run that stops early keeps what it measured
                    write_json(results, args, earlier)
            print_table({(dataset, shots): by_method}, methods, args)  # each cell's table as it ends
    print_table(results, methods, args)


def fit_key(fit: dict) -> tuple:
    return fit["dataset"], fit["shots"], fit["method"], fit["seed"]


def earlier_fits(args) -> list[dict]:
    """With --append, the fits already in --json; else none."""
    if args.append and args.json and Path(args.json).exists():
        return json.loads(Path(args.json).read_text()).get("fits", [])
    return []


def write_json(results: dict, args, earlier: list[dict]) -> None:
    """Every fit of this run, after the `earlier` ones it did not measure again."""
    if not args.json:
        return
    rows = [
        {"dataset": d, "shots": k, "method": m, **r}
        for (d, k), ms in results.items()
        for m, rs in ms.items()
        for r in rs
    ]
    now = {fit_key(fit) for fit in rows}
    rows = [fit for fit in earlier if fit_key(fit) not in now] + rows
    Path(args.json).write_text(json.dumps({"settings": vars(args), "fits": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
