"""Benchmark: does the pretrained EfficientNet-Lite0 beat raw pixels and the same network from random init?

MNIST (the 1,000/500 subset in ../shared/datasets/mnist) and Fashion-MNIST (Debian package
`dataset-fashion-mnist`, /usr/share/datasets/fashion-mnist; 2,000 test images), with 10 and 100 training
images per class, 5 seeds each (different draws; MNIST has exactly 100 per class, so at 100 only training
randomness changes). Methods:
  * pixels + LR: scikit-learn LogisticRegression on the raw 28x28 pixels;
  * probe: a head on frozen Lite0 ImageNet features (features cached once, so seeds cost head time);
  * probe (random init): the same architecture and head, random weights;
  * lp-ft / full (`--finetune`): fine-tune the pretrained network; full (random init) trains it from scratch.
    These cost minutes per run on a CPU: by default at 10 per class only (`--finetune-shots 10,100`).

    .venv/bin/python benchmarks/images.py [--finetune] [--finetune-only] [--finetune-shots 10,100] [--seeds 5]
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist"
FASHION = Path("/usr/share/datasets/fashion-mnist")


def mnist():
    import numpy as np
    from PIL import Image

    def split(name):
        paths = sorted((SHARED / name).glob("*/*.png"))
        return [np.asarray(Image.open(p).convert("L")) for p in paths], [int(p.parent.name) for p in paths]

    if not SHARED.is_dir():
        sys.exit(f"{SHARED} not found (benchmarks read ../shared/datasets)")
    return split("train"), split("test")


def fashion_mnist(test_size: int = 2000, seed: int = 0):
    import numpy as np

    if not FASHION.is_dir():
        sys.exit("Fashion-MNIST not found: apt-get install dataset-fashion-mnist")

    def read(kind):
        with gzip.open(FASHION / f"{kind}-images-idx3-ubyte.gz") as f:
            images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
        with gzip.open(FASHION / f"{kind}-labels-idx1-ubyte.gz") as f:
            labels = np.frombuffer(f.read(), np.uint8, offset=8)
        return images, labels

    train_x, train_y = read("train")
    test_x, test_y = read("t10k")
    pick = np.random.default_rng(seed).choice(len(test_x), test_size, replace=False)
    return (list(train_x), [int(y) for y in train_y]), ([test_x[i] for i in pick], [int(test_y[i]) for i in pick])


def draw(labels, per_class: int, seed: int) -> list[int]:
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    return sorted(
        int(i) for c in np.unique(labels) for i in rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
    )


def pixels_lr(train, test, index) -> float:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.stack([train[0][i].reshape(-1) for i in index]) / 255.0
    model = LogisticRegression(max_iter=3000).fit(x, [train[1][i] for i in index])
    return float(model.score(np.stack([t.reshape(-1) for t in test[0]]) / 255.0, test[1]))


def random_init_weights() -> str:
    import timm
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)
    path = Path(tempfile.mkdtemp()) / "lite0-random.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--finetune", action="store_true", help="also lp-ft / full / full from random init at 10 per class"
    )
    parser.add_argument("--finetune-only", action="store_true", help="only the fine-tuning methods")
    parser.add_argument("--shots", default="10,100", help="comma-separated training images per class")
    parser.add_argument("--finetune-shots", default="10", help="per-class sizes at which to fine-tune as well")
    parser.add_argument("--datasets", default="MNIST,Fashion-MNIST", help="comma-separated: MNIST, Fashion-MNIST")
    args = parser.parse_args()
    os.environ.setdefault("TRANSFERKIT_CACHE", tempfile.mkdtemp(prefix="transferkit-bench-images-"))
    import transferkit as tk

    random_weights = random_init_weights()
    methods = {
        "probe": dict(strategy="probe"),
        "probe (random init)": dict(strategy="probe", backbone="timm:tf_efficientnet_lite0", weights=random_weights),
    }
    finetune = {
        "lp-ft": dict(strategy="lp-ft", epochs=5),
        "full": dict(strategy="full", epochs=5),
        "full (random init)": dict(
            strategy="full",
            epochs=5,
            backbone="timm:tf_efficientnet_lite0",
            weights=random_weights,
            lr=1e-3,
            batchnorm="train",  # from scratch there are no pretrained statistics to keep
        ),
    }
    rows = []
    wanted = args.datasets.split(",")
    for name, loader in [(n, f) for n, f in (("MNIST", mnist), ("Fashion-MNIST", fashion_mnist)) if n in wanted]:
        train, test = loader()
        tuned = {int(n) for n in args.finetune_shots.split(",")}
        for shots in sorted(tuned) if args.finetune_only else [int(n) for n in args.shots.split(",")]:
            scores: dict[str, list[float]] = {"pixels + LR": []}
            times: dict[str, float] = {}
            chosen = dict(methods, **(finetune if args.finetune and shots in tuned else {}))
            if args.finetune_only:
                chosen = finetune
            for seed in range(args.seeds):
                index = draw(train[1], shots, seed)
                scores["pixels + LR"].append(pixels_lr(train, test, index))
                for method, params in chosen.items():
                    started = time.perf_counter()
                    model = tk.FineTuner(seed=seed, **params).fit(
                        [train[0][i] for i in index], [train[1][i] for i in index], verbose=False
                    )
                    scores.setdefault(method, []).append(model.score(test[0], test[1]))
                    times[method] = times.get(method, 0.0) + time.perf_counter() - started
                print(
                    f"{name} {shots}/class seed {seed}: " + ", ".join(f"{m} {s[-1]:.3f}" for m, s in scores.items()),
                    file=sys.stderr,
                )
            for method, values in scores.items():
                rows.append(
                    (
                        name,
                        shots,
                        method,
                        statistics.mean(values),
                        statistics.stdev(values) if len(values) > 1 else 0.0,
                        times.get(method, 0.0) / args.seeds,
                    )
                )
    print(f"\n{args.seeds} seeds; test sets: MNIST 500 images, Fashion-MNIST 2,000; {os.cpu_count()} CPU cores\n")
    print("| dataset | train per class | method | accuracy (mean +- std) | fit + score time per seed (s) |")
    print("|---|---|---|---|---|")
    for name, shots, method, mean, std, seconds in rows:
        print(f"| {name} | {shots} | {method} | {mean:.3f} +- {std:.3f} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
