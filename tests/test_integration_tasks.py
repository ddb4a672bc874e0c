"""Integration: multi-label and regression on real images with the embedded EfficientNet-Lite0 (ImageNet weights).

Multi-label: two real MNIST digits side by side, labelled with the set of digits shown. Regression: a digit's
value predicted as a number. Both with a probe on frozen ImageNet features; both must clearly beat the
baseline that ignores the image.
"""

import random

import numpy as np
import pytest
from PIL import Image

import transferkit as tk
from conftest import shared_dataset

pytestmark = pytest.mark.slow


def _digit_files(split: str) -> dict[int, list]:
    root = shared_dataset("mnist") / split
    return {d: sorted((root / str(d)).iterdir()) for d in range(10)}


def _digit_pairs(split: str, n: int, seed: int) -> tuple[list, list]:
    rng, files = random.Random(seed), _digit_files(split)
    images, labels = [], []
    for _ in range(n):
        a, b = rng.randrange(10), rng.randrange(10)
        canvas = Image.new("L", (56, 28))
        canvas.paste(Image.open(rng.choice(files[a])).convert("L"), (0, 0))
        canvas.paste(Image.open(rng.choice(files[b])).convert("L"), (28, 0))
        images.append(canvas.convert("RGB"))
        labels.append(tuple(sorted({str(a), str(b)})))
    return images, labels


def test_multilabel_probe_reads_both_digits(tmp_path):
    x, y = _digit_pairs("train", 400, seed=0)
    test_x, test_y = _digit_pairs("test", 150, seed=1)
    model = tk.FineTuner(task="multilabel", strategy="probe").fit(x, y, verbose=False)
    metrics = model.evaluate(test_x, test_y)
    # Predicting every label scores micro-F1 ~0.32 here (each digit is in ~19% of the label sets).
    assert metrics["micro_f1"] >= 0.45, metrics["micro_f1"]
    assert metrics["ci95"]["micro_f1"][0] <= metrics["micro_f1"] <= metrics["ci95"]["micro_f1"][1]
    assert metrics["threshold_source"] == "validation" and len(model.task_.thresholds) == 10
    model.save(tmp_path / "run")
    assert tk.load(tmp_path / "run").predict(test_x[:10]) == model.predict(test_x[:10])


def test_regression_probe_predicts_a_digits_value():
    files = _digit_files("train"), _digit_files("test")
    (x, y), (test_x, test_y) = (
        ([str(p) for d in range(10) for p in split[d][:per]], [float(d) for d in range(10) for _ in range(per)])
        for split, per in zip(files, (40, 20))
    )
    model = tk.FineTuner(task="regression", strategy="probe").fit(x, y, verbose=False)
    metrics = model.evaluate(test_x, test_y)
    assert metrics["r2"] >= 0.4, metrics  # the training mean scores R² ~0 (MAE 2.5)
    assert metrics["mae"] < 0.7 * metrics["mean_baseline"]["mae"], metrics
    assert np.all(np.isfinite(model.predict(test_x[:5])))
