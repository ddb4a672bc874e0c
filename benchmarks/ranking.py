"""Benchmark: does `transferkit rank` order backbones the way fine-tuning them would, and is it cheap?

For each dataset, every candidate available offline for its kind of data (pretrained backbones, random-init
twins, the classical baseline) is
  1. ranked: features extracted (cold: no feature cache) and scored by LogME and a 5-fold linear probe;
  2. fine-tuned: `lp-ft` on the same training rows, accuracy on the test rows (the baseline's "fine-tuning" is
     its linear model: TF-IDF + logistic regression for text, logistic regression on pixels / waveform
     statistics).
It prints the Kendall tau (tau-b) between each ranking score and the fine-tuned accuracy, and the cost: ranking
time against the fine-tuning time it saves (fine-tuning every candidate minus fine-tuning only the top-ranked).

    .venv/bin/python benchmarks/ranking.py                  # SST-2, CR, MNIST, FSDD; ~25 min on 2 cores
    .venv/bin/python benchmarks/ranking.py --quick          # fewer rows, 1 epoch; minutes
    .venv/bin/python benchmarks/ranking.py --datasets mnist --json ranking.json
    .venv/bin/python benchmarks/ranking.py --rank-share 0.5 --finetuned-from benchmarks/results/ranking-2026-11-30.json

`--rank-share` ranks on that stratified share of the training rows (what a user does before committing to a
fine-tune: a sample tells the order); fine-tuning always uses every training row. `--finetuned-from` takes the
fine-tuned accuracy and time of every candidate from an earlier run's JSON (same rows, epochs and strategy,
checked) and only ranks.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"

CANDIDATES = {
    "text": ["minilm", "random:minilm", "tfidf"],
    "image": [
        "efficientnet-lite0",
        "efficientnet-lite1",
        "efficientnet-lite2",
        "random:efficientnet-lite0",
        "pixels",
    ],
    "audio": ["whisper-tiny", "resemblyzer", "random:whisper-tiny", "waveform"],
}
DATASETS = {"sst2": "text", "cr": "text", "mnist": "image", "fsdd": "audio"}
# (train rows, test rows) per kind: fine-tuning five image backbones on 1,000 images takes most of an hour here
# (EfficientNet-Lite2 trains at about 5 images/s on 2 cores).
ROWS = {"text": (1000, 1000), "image": (300, 500), "audio": (300, 300)}
QUICK_ROWS = {"text": (300, 300), "image": (200, 200), "audio": (200, 150)}


def _subsample(inputs: list, labels: list, rows: int, seed: int = 0) -> tuple[list, list]:
    """A stratified sample of `rows` rows (every class in proportion), in a fixed order."""
    import numpy as np

    if rows >= len(inputs):
        return inputs, labels
    rng = np.random.default_rng(seed)
    labels_array = np.asarray(labels)
    picked: list[int] = []
    for c in np.unique(labels_array):
        members = np.flatnonzero(labels_array == c)
        share = max(1, round(rows * len(members) / len(inputs)))
        picked += rng.choice(members, min(share, len(members)), replace=False).tolist()
    picked.sort()
    return [inputs[i] for i in picked], [labels[i] for i in picked]


def load_dataset(name: str, rows: tuple[int, int]):
    """((train inputs, labels), (test inputs, labels)) as lists: texts, image paths or wav paths."""
    import pandas as pd

    path = DATA / name
    if not path.is_dir():
        sys.exit(f"dataset {path} not found (benchmarks read ../shared/datasets)")
    if DATASETS[name] == "text":
        train, test = pd.read_csv(path / "train.csv"), pd.read_csv(path / "test.csv")
        splits = [(train["text"].tolist(), train["label"].tolist()), (test["text"].tolist(), test["label"].tolist())]
    elif DATASETS[name] == "image":
        splits = []
        for part in ("train", "test"):
            files = sorted((path / part).glob("*/*.png"))
            splits.append(([str(f) for f in files], [f.parent.name for f in files]))
    else:
        with open(path / "splits.csv") as handle:
            table = list(csv.DictReader(handle))
        splits = [
            (
                [str(path / r["path"]) for r in table if r["split"] == part],
                [r["label"] for r in table if r["split"] == part],
            )
            for part in ("train", "test")
        ]
    return [_subsample(x, y, n) for (x, y), n in zip(splits, rows)]


def baseline_accuracy(name: str, train, test) -> float:
    """The classical baseline trained as a user would: a standardised logistic regression on its features."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from transferkit.selection.baselines import baseline_features

    if name == "tfidf":  # the vocabulary comes from the training texts only
        vectoriser = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=5000, sublinear_tf=True)
        model = make_pipeline(vectoriser, LogisticRegression(max_iter=3000))
        return float(model.fit(train[0], train[1]).score(test[0], test[1]))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    model.fit(baseline_features(name, train[0]), train[1])
    return float(model.score(baseline_features(name, test[0]), test[1]))


def fine_tune(candidate: str, train, test, args) -> tuple[float, float]:
    """(test accuracy, wall seconds of the fit) for one candidate, with a cold start (no cached features)."""
    import transferkit as tk
    from transferkit.selection.baselines import BASELINES

    started = time.perf_counter()
    if candidate in BASELINES.values():
        accuracy = baseline_accuracy(candidate, train, test)
        return accuracy, time.perf_counter() - started
    model = tk.FineTuner(
        backbone=candidate,
        strategy=args.strategy,
        epochs=args.epochs,
        feature_cache=False,
        check_data=False,
        max_length=args.max_length,
    )
    model.fit(train[0], train[1], verbose=False)
    wall = time.perf_counter() - started
    return float(model.score(test[0], test[1])), wall


def earlier_finetuned(name: str, train_rows: int, test_rows: int, args) -> dict[str, tuple[float, float]] | None:
    """{candidate: (fine-tuned accuracy, seconds)} for `name` from --finetuned-from, its settings checked."""
    if not args.finetuned_from:
        return None
    earlier = json.loads(Path(args.finetuned_from).read_text())
    for key in ("strategy", "epochs", "max_length", "quick"):
        if earlier["settings"][key] != getattr(args, key):
            sys.exit(f"--finetuned-from used {key}={earlier['settings'][key]}, this run {getattr(args, key)}")
    for result in earlier["results"]:
        if result["dataset"] == name and (result["train_rows"], result["test_rows"]) == (train_rows, test_rows):
            return {r["candidate"]: (r["finetuned"], r["finetune_s"]) for r in result["candidates"]}
    sys.exit(f"--finetuned-from {args.finetuned_from} has no {name} results on {train_rows}/{test_rows} rows")


def run_dataset(name: str, args) -> dict:
    from scipy.stats import kendalltau

    from transferkit.data.examples import load_examples
    from transferkit.selection.rank import rank_backbones

    kind = DATASETS[name]
    train, test = load_dataset(name, (QUICK_ROWS if args.quick else ROWS)[kind])
    candidates = CANDIDATES[kind]
    ranked = _subsample(train[0], train[1], round(args.rank_share * len(train[0])))
    print(f"[{name}] ranking {len(candidates)} candidates on {len(ranked[0])} rows ...", file=sys.stderr, flush=True)
    examples = load_examples(*ranked)
    warm = load_examples(*_subsample(train[0], train[1], 40))
    rank_backbones(warm, candidates[:1], folds=2, feature_cache=False, max_length=args.max_length)  # warm imports
    started = time.perf_counter()
    ranking = rank_backbones(examples, candidates, max_rows=None, feature_cache=False, max_length=args.max_length)
    rank_s = time.perf_counter() - started
    rows = {row["candidate"]: row for row in ranking.rows}
    earlier = earlier_finetuned(name, len(train[0]), len(test[0]), args)
    for candidate in candidates:
        if earlier is not None:
            rows[candidate]["finetuned"], rows[candidate]["finetune_s"] = earlier[candidate]
            continue
        print(f"[{name}] fine-tuning {candidate} ({args.strategy}) ...", file=sys.stderr, flush=True)
        rows[candidate]["finetuned"], rows[candidate]["finetune_s"] = fine_tune(candidate, train, test, args)
    table = [rows[c] for c in candidates]
    accuracy = [r["finetuned"] for r in table]
    top = ranking.rows[0]["candidate"]
    best = max(table, key=lambda r: r["finetuned"])["candidate"]
    total = sum(r["finetune_s"] for r in table)
    saved = total - rows[top]["finetune_s"]
    return {
        "dataset": name,
        "kind": kind,
        "train_rows": len(train[0]),
        "ranked_rows": len(ranked[0]),
        "test_rows": len(test[0]),
        "candidates": table,
        "tau_logme": float(kendalltau([r["logme"] for r in table], accuracy).statistic),
        "tau_probe": float(kendalltau([r["probe"] for r in table], accuracy).statistic),
        "top_by_logme": top,
        "best_finetuned": best,
        "top_accuracy": rows[top]["finetuned"],
        "best_accuracy": rows[best]["finetuned"],
        "rank_s": rank_s,
        "finetune_all_s": total,
        "saved_s": saved,
        "cost_share": rank_s / saved if saved > 0 else float("inf"),
    }


def print_tables(results: list[dict], args) -> None:
    print(
        f"\nlp-ft {args.epochs} epochs per candidate (max_length {args.max_length} for text), {os.cpu_count()} CPU "
        "cores; ranking and fine-tuning both start cold (no feature cache)\n"
    )
    print(f"ranked on {100 * args.rank_share:.0f}% of the training rows (stratified)\n")
    print("| dataset (train/test) | candidate | LogME | 5-fold probe | fine-tuned accuracy | fine-tune time (s) |")
    print("|---|---|---|---|---|---|")
    for result in results:
        first = f"{result['dataset']} ({result['train_rows']}/{result['test_rows']})"
        for i, row in enumerate(sorted(result["candidates"], key=lambda r: -r["logme"])):
            print(
                f"| {first if i == 0 else ''} | {row['candidate']} | {row['logme']:.3f} | {row['probe']:.3f} | "
                f"{row['finetuned']:.3f} | {row['finetune_s']:.1f} |"
            )
    print(
        "\n| dataset | Kendall tau (LogME) | Kendall tau (probe) | top by LogME (fine-tuned) | best fine-tuned | "
        "ranking (s) | fine-tuning all (s) | saved (s) | ranking / saved |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['dataset']} | {r['tau_logme']:+.2f} | {r['tau_probe']:+.2f} | {r['top_by_logme']} "
            f"({r['top_accuracy']:.3f}) | {r['best_finetuned']} ({r['best_accuracy']:.3f}) | {r['rank_s']:.1f} | "
            f"{r['finetune_all_s']:.1f} | {r['saved_s']:.1f} | {100 * r['cost_share']:.1f}% |"
        )
    mean_tau = sum(r["tau_logme"] for r in results) / len(results)
    share = sum(r["rank_s"] for r in results) / max(sum(r["saved_s"] for r in results), 1e-9)
    print(
        f"\nmean Kendall tau (LogME) {mean_tau:+.2f}; ranking cost over all datasets {100 * share:.1f}% of the saving"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated: " + ", ".join(DATASETS))
    parser.add_argument("--strategy", default="lp-ft", help="fine-tuning strategy for every backbone")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=64, help="tokens per text")
    parser.add_argument("--quick", action="store_true", help="fewer rows and 1 epoch")
    parser.add_argument("--rank-share", type=float, default=1.0, help="share of the training rows ranked (0-1]")
    parser.add_argument("--finetuned-from", help="reuse the fine-tuned results of an earlier run's --json file")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if args.quick:
        args.epochs = 1
    if not 0 < args.rank_share <= 1:
        sys.exit(f"--rank-share must be in (0, 1], got {args.rank_share}")
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        sys.exit(f"unknown datasets {unknown}; choose from {list(DATASETS)}")
    results = []
    for name in names:
        results.append(run_dataset(name, args))
        print_tables(results[-1:], args)  # as each dataset ends: a long run that stops early keeps its results
        if args.json:
            Path(args.json).write_text(json.dumps({"settings": vars(args), "results": results}, indent=2))
    print("\nall datasets:")
    print_tables(results, args)


if __name__ == "__main__":
    main()
