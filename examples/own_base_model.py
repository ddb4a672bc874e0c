"""Transfer your own pretrained network to new tasks: new classes, and a new input width.

The reference case: a source model `1000 features -> Dense 128 (ReLU) -> 10 classes (softmax)`, trained
with Adam and cross-entropy for 10 epochs, then carried to

  1. a NEW task with 3 classes and only a few labelled rows per class: the old output layer is dropped, a
     new head sized to the new labels is attached, and the 128-unit hidden layer is the transferred
     representation. Compared with the same architecture trained from scratch, over several seeds;
  2. a task whose rows have 784 features instead of 1000: transferkit puts a trainable input projection
     in front of the pretrained layers (the run log and transferkit.json say so).

The data are synthetic but learnable: every task observes points of one shared 8-d latent space through a
fixed random linear "sensor" plus noise, so what the source model learned about that space is useful later.

    .venv/bin/python examples/own_base_model.py [--seeds 5] [--per-class 20] [--out runs/own-model]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

LATENT = 8  # dimensions of the shared latent space
NOISE = 1.5  # sensor noise per feature, as strong as the signal: a few rows cannot tell which of 1000 directions matter
SEPARATION = 2.0  # spread of class centres in the latent space (within-class spread is 1)
# The reference model: Adam(lr=1e-3) on everything, batch 32, 10 epochs, no early stopping or warmup
SOURCE_PARAMS = dict(
    strategy="full",
    epochs=10,
    lr=1e-3,
    head_lr=1e-3,
    batch_size=32,
    warmup_ratio=0.0,
    weight_decay=0.0,
    early_stopping_patience=None,
)


class World:
    """The shared latent space and the sensors that observe it."""

    def __init__(self, seed: int = 0) -> None:
        import numpy as np

        self.rng = np.random.default_rng(seed)
        self.sensors: dict[int, np.ndarray] = {}

    def centres(self, classes: int):
        return self.rng.standard_normal((classes, LATENT)) * SEPARATION

    def sample(self, centres, per_class: int, width: int = 1000):
        """`per_class` rows of each class, seen through the sensor of the given width."""
        import numpy as np

        if width not in self.sensors:
            self.sensors[width] = self.rng.standard_normal((LATENT, width)) / np.sqrt(width)
        latent = np.concatenate([c + self.rng.standard_normal((per_class, LATENT)) for c in centres])
        rows = latent @ self.sensors[width] + NOISE * self.rng.standard_normal((len(latent), width))
        return rows.astype(np.float32), np.repeat(np.arange(len(centres)), per_class)


def fit_and_score(params: dict, train, test, seed: int) -> float:
    import transferkit as tk

    model = tk.FineTuner(seed=seed, **params).fit(train[0], train[1], verbose=False)
    return model.score(test[0], test[1])


def compare(name: str, world: World, centres, width: int, seeds: int, per_class: int, source_dir: Path):
    """Transfer (probe; lp-ft) from the source model vs the same architecture trained from scratch."""
    methods = {
        "transfer: probe": dict(backbone=str(source_dir), strategy="probe"),
        "transfer: lp-ft": dict(backbone=str(source_dir), strategy="lp-ft", epochs=10, lr=1e-4, head_lr=1e-3),
        "from scratch": dict(backbone=f"mlp:{width}-128", strategy="full", epochs=10, lr=1e-3, head_lr=1e-3),
    }
    scores: dict[str, list[float]] = {m: [] for m in methods}
    test = world.sample(centres, 300, width)
    for seed in range(seeds):
        train = world.sample(centres, per_class, width)
        for method, params in methods.items():
            scores[method].append(fit_and_score(params, train, test, seed))
        print(f"  {name} seed {seed}: " + ", ".join(f"{m} {s[-1]:.3f}" for m, s in scores.items()), flush=True)
    return scores


def run(seeds: int = 5, per_class: int = 20, source_per_class: int = 300, out: str | Path = "runs/own-model"):
    """The three steps; returns the source accuracy and the accuracies of each method on both new tasks."""
    import transferkit as tk

    world = World(seed=0)
    source_centres = world.centres(10)
    source_train = world.sample(source_centres, source_per_class)
    source_test = world.sample(source_centres, 100)

    print(f"1. source task: 10 classes, 1000 features, {len(source_train[0])} rows; model mlp:1000-128 + 10-way head")
    source = tk.FineTuner(backbone="mlp:1000-128", **SOURCE_PARAMS).fit(*source_train)
    source_dir = source.save(Path(out) / "source", overwrite=True)
    source_accuracy = source.score(*source_test)
    print(f"   source accuracy {source_accuracy:.3f} on 1,000 held-out rows; saved to {source_dir}")

    print(f"2. new task: 3 new classes in the same space, {per_class} rows per class, {seeds} seeds")
    new_classes = compare("3 classes", world, world.centres(3), 1000, seeds, per_class, source_dir)
    print("3. new task with 784 features (another sensor): an input projection 784 -> 1000 is added")
    wide_centres = world.centres(3)
    wide = compare("784 features", world, wide_centres, 784, seeds, per_class, source_dir)
    model = tk.FineTuner(backbone=str(source_dir), strategy="probe").fit(*world.sample(wide_centres, 5, 784))
    print(f"   transferkit.json records: {model.run_info_['backbone_input']}")
    return {
        "source_accuracy": source_accuracy,
        "new_classes": new_classes,
        "wide": wide,
        "backbone_input": model.run_info_["backbone_input"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="repeats of each new task (fresh draws of the rows)")
    parser.add_argument("--per-class", type=int, default=20, help="labelled rows per class in the new tasks")
    parser.add_argument("--source-per-class", type=int, default=300, help="rows per class in the source task")
    parser.add_argument("--out", default="runs/own-model", help="where the source model is saved")
    args = parser.parse_args()

    started = time.perf_counter()
    results = run(args.seeds, args.per_class, args.source_per_class, args.out)
    new_classes, wide = results["new_classes"], results["wide"]
    print(f"\nAccuracy on 900 test rows, mean ± std over {args.seeds} seeds ({args.per_class} rows per class):")
    print(f"{'method':18} {'3 new classes':>16} {'784 features':>16}")
    for method in new_classes:
        cells = [
            f"{statistics.mean(s[method]):.3f} ± {statistics.stdev(s[method]) if len(s[method]) > 1 else 0:.3f}"
            for s in (new_classes, wide)
        ]
        print(f"{method:18} {cells[0]:>16} {cells[1]:>16}")
    gain = statistics.mean(new_classes["transfer: probe"]) - statistics.mean(new_classes["from scratch"])
    print(f"\ntransfer (probe) vs from scratch on the new classes: {gain:+.3f} accuracy")
    print(f"total {time.perf_counter() - started:.0f} s")
    if gain <= 0:
        sys.exit("transfer did not beat training from scratch")


if __name__ == "__main__":
    main()
