"""Benchmark: spoken digits (FSDD, real recordings of 6 speakers) with Whisper tiny.en features vs MFCC.

Splits: (a) the official one (recordings 0-4 of every speaker and digit are the test set), (b) speaker held
out: train on 5 speakers, test on the 6th, for each speaker in turn (the honest test of transfer). Plus a
few-shot column: 5 clips per digit drawn from the training part (5 draws).
Methods:
  * MFCC + LR: 13 MFCCs (DCT of Whisper's own log-mel features), mean and std over time, then scikit-learn's
    logistic regression on standardised features;
  * probe: a linear head on frozen backbone features (features cached once): Whisper tiny.en (mean-pooled
    encoder states) and, with `--backbones whisper-tiny,resemblyzer`, the Resemblyzer speaker encoder;
  * lp-ft / lora / full (`--finetune`): fine-tuning the encoder (minutes per run on a CPU).

    .venv/bin/python benchmarks/audio.py [--finetune] [--splits official,speaker] [--folds theo,lucas] [--draws 5]
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
FSDD = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "fsdd"


def read_fsdd() -> list[dict]:
    if not (FSDD / "splits.csv").is_file():
        sys.exit(f"{FSDD} not found (benchmarks read ../shared/datasets)")
    with open(FSDD / "splits.csv") as handle:
        return [{**row, "path": str(FSDD / row["path"]), "label": int(row["label"])} for row in csv.DictReader(handle)]


def mfcc_features(paths: list[str]):
    import numpy as np
    from scipy.fft import dct
    from transformers import WhisperFeatureExtractor

    from transferkit.data.audio import read_audio

    extractor = WhisperFeatureExtractor(feature_size=80)
    rows = []
    for path in paths:
        wave = read_audio(path, 16000)
        mel = extractor(wave, sampling_rate=16000, padding="max_length", max_length=len(wave), return_tensors="np")
        frames = mel["input_features"][0][:, : max(1, len(wave) // 160)]
        coefficients = dct(frames, type=2, axis=0, norm="ortho")[:13]
        rows.append(np.concatenate([coefficients.mean(axis=1), coefficients.std(axis=1)]))
    return np.stack(rows)


def mfcc_lr(train: list[dict], test: list[dict], cache: dict) -> float:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def features(rows):
        missing = [r["path"] for r in rows if r["path"] not in cache]
        if missing:
            cache.update(zip(missing, mfcc_features(missing)))
        return np.stack([cache[r["path"]] for r in rows])

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    model.fit(features(train), [r["label"] for r in train])
    return float(model.score(features(test), [r["label"] for r in test]))


def folds(rows: list[dict], which: str):
    if which == "official":
        yield "official", [r for r in rows if r["split"] == "train"], [r for r in rows if r["split"] == "test"]
    else:
        for speaker in sorted({r["speaker"] for r in rows}):
            yield speaker, [r for r in rows if r["speaker"] != speaker], [r for r in rows if r["speaker"] == speaker]


def few_shot(rows: list[dict], per_class: int, seed: int) -> list[dict]:
    import random

    rng = random.Random(seed)
    return [r for c in range(10) for r in rng.sample([x for x in rows if x["label"] == c], per_class)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--splits", default="official,speaker", help="comma-separated: official, speaker")
    parser.add_argument("--finetune", action="store_true", help="also fine-tune (slow on a CPU): see --methods")
    parser.add_argument("--methods", default="lp-ft,lora,full", help="fine-tuning strategies with --finetune")
    parser.add_argument("--draws", type=int, default=5, help="few-shot draws (5 clips per digit) per fold")
    parser.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs")
    parser.add_argument(
        "--folds", default="", help="speaker-held-out folds to run (comma-separated speakers; all if empty)"
    )
    parser.add_argument("--backbones", default="whisper-tiny", help="comma-separated: whisper-tiny, resemblyzer")
    args = parser.parse_args()
    os.environ.setdefault("TRANSFERKIT_CACHE", tempfile.mkdtemp(prefix="transferkit-bench-audio-"))
    import transferkit as tk

    rows, cache = read_fsdd(), {}
    backbones = args.backbones.split(",")

    def named(method: str, backbone: str) -> str:
        return method if len(backbones) == 1 else f"{method} ({backbone})"

    methods = {}
    for backbone in backbones:
        methods[named("probe", backbone)] = dict(strategy="probe", backbone=backbone)
        if args.finetune:
            for m in args.methods.split(","):
                methods[named(m, backbone)] = dict(strategy=m, epochs=args.epochs, backbone=backbone)
    table = []
    for which in args.splits.split(","):
        scores: dict[str, list[float]] = {}
        times: dict[str, float] = {}
        for name, train, test in folds(rows, which):
            if which == "speaker" and args.folds and name not in args.folds.split(","):
                continue
            labels = [r["label"] for r in train]
            fold = {"MFCC + LR": mfcc_lr(train, test, cache)}
            for method, params in methods.items():
                started = time.perf_counter()
                model = tk.FineTuner(**params).fit([r["path"] for r in train], labels, verbose=False)
                fold[method] = model.score([r["path"] for r in test], [r["label"] for r in test])
                times[method] = times.get(method, 0.0) + time.perf_counter() - started
            shots_scores: dict[str, list[float]] = {}
            for seed in range(args.draws):
                shots = few_shot(train, 5, seed)
                shots_scores.setdefault("MFCC + LR, 5/digit", []).append(mfcc_lr(shots, test, cache))
                for backbone in backbones:
                    model = tk.FineTuner(strategy="probe", backbone=backbone, seed=seed).fit(
                        [r["path"] for r in shots], [r["label"] for r in shots], verbose=False
                    )
                    score = model.score([r["path"] for r in test], [r["label"] for r in test])
                    shots_scores.setdefault(named("probe", backbone) + ", 5/digit", []).append(score)
            fold |= {name: statistics.mean(values) for name, values in shots_scores.items()}
            for method, value in fold.items():
                scores.setdefault(method, []).append(value)
            print(f"{which} {name}: " + ", ".join(f"{m} {v:.3f}" for m, v in fold.items()), flush=True)
        for method, values in scores.items():
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            table.append((which, method, statistics.mean(values), spread, len(values), times.get(method)))
    print("\n| split | method | accuracy | folds | time per fold (s) |\n|---|---|---|---|---|")
    for which, method, mean, spread, n, seconds in table:
        shown = f"{seconds / n:.0f}" if seconds else "-"
        print(f"| {which} | {method} | {mean:.3f} +- {spread:.3f} | {n} | {shown} |")


if __name__ == "__main__":
    main()
