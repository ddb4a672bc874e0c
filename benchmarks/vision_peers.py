"""Benchmark: a plain timm fine-tuning loop vs transferkit `full` and `lp-ft`, same backbone and MNIST subset.

fastai is not installed here, so the peer is the loop a careful timm user writes (issue 12 allows either):
`timm.create_model("tf_efficientnet_lite0")` with the same ImageNet weights transferkit's `efficientnet-lite0`
loads (the embedded .pth, remapped in order by transferkit's own loader, so both start from identical weights),
`reset_classifier`, timm's preprocessing from the model's data config (`create_transform(is_training=True)`:
random-resized crop, flip, colour jitter; eval: resize + centre crop to 224), AdamW without decay on biases
and norms (timm's rule), the backbone at --lr and the new classifier at --head-lr (transferkit's two rates),
linear warmup then linear decay, gradient clipping at 1.0, model.train() (BatchNorm statistics update).

transferkit runs with the same epochs, batch size, learning rates, weight decay and warmup, no validation split.
Its own defaults stay on, and they differ from the plain loop: BatchNorm keeps its pretrained statistics
(`batchnorm="frozen"`), training images also get RandAugment, and `lp-ft` first trains the head alone on cached
features (its 30 head epochs) before the same fine-tuning epochs.

Each fit runs in a fresh process on the same training images (drawn per class with the repeat's seed) and is
scored on the same test images. Wall time: from creating the model (weights loaded) to the end of training;
decoding the PNGs and importing libraries are outside the clock, predicting the test set too. transferkit's
feature cache starts cold. Median wall time of --repeats (min-max), accuracy mean +- std over the repeats.

    .venv/bin/python benchmarks/vision_peers.py             # 50/class, 3 epochs, 2 repeats, all 500 test images
    .venv/bin/python benchmarks/vision_peers.py --quick     # 10/class, 1 epoch, 1 repeat, 100 test images
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_report import markdown_table, spread  # noqa: E402

MNIST = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist"
ARCH = "tf_efficientnet_lite0"
METHODS = {"timm": "plain timm loop", "full": "transferkit `full`", "lp-ft": "transferkit `lp-ft`"}


def draw(per_class: int, test_images: int, seed: int) -> dict:
    """`per_class` training PNGs per digit (seeded) and the first `test_images` of a fixed test shuffle."""
    import random

    if not MNIST.is_dir():
        sys.exit(f"{MNIST} not found (benchmarks read ../shared/datasets)")
    rng = random.Random(seed)
    train = []
    for folder in sorted((MNIST / "train").iterdir()):
        paths = sorted(folder.glob("*.png"))
        train += [(str(p), int(folder.name)) for p in rng.sample(paths, min(per_class, len(paths)))]
    rng.shuffle(train)
    test = sorted((str(p), int(p.parent.name)) for p in (MNIST / "test").glob("*/*.png"))
    random.Random(0).shuffle(test)
    return {"train": train, "test": test[:test_images] if test_images else test, "seed": seed}


def _arrays(pairs) -> tuple[list, list[int]]:
    import numpy as np
    from PIL import Image

    return [np.asarray(Image.open(p).convert("L")) for p, _ in pairs], [y for _, y in pairs]


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def transferkit_worker(job: dict, strategy: str) -> dict:
    """Child: one transferkit fit (cold feature cache); the clock covers loading the backbone and training."""
    import importlib

    for name in ("torch", "timm", "accelerate", "transferkit.training.loop"):
        importlib.import_module(name)
    import transferkit as tk

    images, labels = _arrays(job["train"])
    test_images, test_labels = _arrays(job["test"])
    s = job["settings"]
    started = time.perf_counter()
    model = tk.FineTuner(
        backbone="efficientnet-lite0",
        strategy=strategy,
        epochs=s["epochs"],
        batch_size=s["batch_size"],
        lr=s["lr"],
        head_lr=s["head_lr"],
        weight_decay=s["weight_decay"],
        warmup_ratio=s["warmup_ratio"],
        seed=job["seed"],
        device=s["device"],
        val_fraction=0.0,
        early_stopping_patience=None,
        check_data=False,
    ).fit(images, labels, verbose=False)
    fit_s = time.perf_counter() - started
    accuracy = sum(int(p) == y for p, y in zip(model.predict(test_images), test_labels)) / len(test_labels)
    return {"fit_s": fit_s, "accuracy": accuracy, "peak_rss_mib": peak_rss_mib()}


def timm_worker(job: dict) -> dict:
    """Child: the plain timm loop, timed from model creation to the last optimizer step."""
    import timm
    import timm.data
    import torch

    from transferkit.backbones.embedded import efficientnet_lite_weights
    from transferkit.backbones.timm_vision import load_into, load_state_dict_file

    images, labels = _arrays(job["train"])
    test_images, test_labels = _arrays(job["test"])
    s = job["settings"]
    started = time.perf_counter()
    torch.manual_seed(job["seed"])
    model = timm.create_model(ARCH, pretrained=False, num_classes=0)
    load_into(model, load_state_dict_file(efficientnet_lite_weights(0)), remap_in_order=True)
    model.reset_classifier(10)
    config = timm.data.resolve_model_data_config(model)
    train_transform = timm.data.create_transform(**config, is_training=True)
    loader = torch.utils.data.DataLoader(
        Pictures(images, labels, train_transform),
        batch_size=s["batch_size"],
        shuffle=True,
        generator=torch.Generator().manual_seed(job["seed"]),
    )
    train_timm(model, loader, s)
    fit_s = time.perf_counter() - started
    predictions = predict_timm(model, test_images, timm.data.create_transform(**config))
    accuracy = sum(p == y for p, y in zip(predictions, test_labels)) / len(test_labels)
    return {"fit_s": fit_s, "accuracy": accuracy, "peak_rss_mib": peak_rss_mib()}


class Pictures:
    """Grey MNIST arrays -> RGB PIL images -> the transform; with their labels (a map-style dataset)."""

    def __init__(self, images, labels, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index]).convert("RGB")), self.labels[index]


def train_timm(model, loader, s: dict) -> None:
    """AdamW (two learning rates, no decay on 1-d parameters), linear warmup + decay, clipping; BatchNorm trains."""
    import torch

    head = {id(p) for p in model.get_classifier().parameters()}
    groups: dict[tuple[float, float], list] = {}
    for param in model.parameters():
        lr = s["head_lr"] if id(param) in head else s["lr"]
        groups.setdefault((lr, 0.0 if param.ndim <= 1 else s["weight_decay"]), []).append(param)
    optimizer = torch.optim.AdamW([{"params": p, "lr": lr, "weight_decay": wd} for (lr, wd), p in groups.items()])
    total = len(loader) * s["epochs"]
    warmup = int(s["warmup_ratio"] * total)
    schedule = lambda step: (step + 1) / warmup if step < warmup else max(0.0, (total - step) / max(1, total - warmup))  # noqa: E731
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    model.train()
    for _ in range(s["epochs"]):
        for pixels, targets in loader:
            loss = torch.nn.functional.cross_entropy(model(pixels), targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()


def predict_timm(model, images, transform, batch_size: int = 64) -> list[int]:
    import torch
    from PIL import Image

    model.eval()
    predictions = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = [transform(Image.fromarray(a).convert("RGB")) for a in images[start : start + batch_size]]
            predictions += model(torch.stack(batch)).argmax(-1).tolist()
    return predictions


def run_fit(method: str, job: dict) -> dict:
    """One fit in a fresh process with a cold transferkit feature cache."""
    with tempfile.TemporaryDirectory(prefix="transferkit-bench-vision-") as cache:
        env = {**os.environ, "TRANSFERKIT_CACHE": cache}
        command = [sys.executable, __file__, "--worker", method]
        done = subprocess.run(command, input=json.dumps(job), capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(f"{method} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(runs: dict[str, list[dict]], args, train_images: int, test_images: int) -> dict:
    base = statistics.median(r["fit_s"] for r in runs["timm"])
    rows = []
    for method, name in METHODS.items():
        accuracies, seconds = [r["accuracy"] for r in runs[method]], [r["fit_s"] for r in runs[method]]
        std = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
        rows.append(
            [
                name,
                f"{statistics.mean(accuracies):.3f} +- {std:.3f}",
                spread(seconds),
                f"{statistics.median(seconds) / base:.2f}x",
                f"{statistics.median(r['peak_rss_mib'] for r in runs[method]):.0f}",
            ]
        )
    caption = (
        f"MNIST ({train_images} training images = {args.per_class}/class, {test_images} test images), "
        f"EfficientNet-Lite0 (ImageNet, same weights), {args.epochs} epoch(s), batch {args.batch_size}, lr "
        f"{args.lr:g} backbone / {args.head_lr:g} head, weight decay {args.weight_decay:g}, warmup "
        f"{args.warmup_ratio:g}; {args.repeats} repeat(s) with seeds 0..{args.repeats - 1}, each fit in its own "
        f"process; {os.cpu_count()} CPU cores"
    )
    notes = [
        "wall time: model creation with weights to the end of training (lp-ft includes its feature extraction "
        "and head-only epochs); lower is better",
        "transferkit keeps BatchNorm statistics frozen and adds RandAugment; the plain loop trains BatchNorm",
    ]
    columns = ["method", "test accuracy (mean +- std)", "wall time (s)", "time vs timm loop", "peak RSS (MiB)"]
    return {"caption": caption, "columns": columns, "rows": rows, "notes": notes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=50, help="training images per digit (at most 100)")
    parser.add_argument("--test-images", type=int, default=0, help="0: all 500")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-5, help="backbone learning rate")
    parser.add_argument("--head-lr", type=float, default=1e-3, help="new classifier's learning rate")
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=2, help="fits per method, seeds 0, 1, ...")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="10/class, 1 epoch, 1 repeat, 100 test images")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--worker", choices=list(METHODS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        job = json.load(sys.stdin)
        result = timm_worker(job) if args.worker == "timm" else transferkit_worker(job, args.worker)
        print(json.dumps(result))
        return
    if args.quick:
        args.per_class, args.epochs, args.repeats, args.test_images = 10, 1, 1, 100
    settings = {k: getattr(args, k) for k in ("epochs", "batch_size", "lr", "head_lr", "weight_decay", "device")}
    settings["warmup_ratio"] = args.warmup_ratio
    runs: dict[str, list[dict]] = {method: [] for method in METHODS}
    for seed in range(args.repeats):
        job = {**draw(args.per_class, args.test_images, seed), "settings": settings}
        for method in METHODS:
            print(f"[vision] {method}, seed {seed} ...", file=sys.stderr, flush=True)
            runs[method].append({"seed": seed, **run_fit(method, job)})
    steps = math.ceil(len(job["train"]) / args.batch_size) * args.epochs
    result = {"benchmark": "vision", "settings": vars(args), "optimizer_steps": steps, "runs": runs}
    result["table"] = table(runs, args, len(job["train"]), len(job["test"]))
    print("\n" + markdown_table(result["table"]))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
