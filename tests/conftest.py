"""Shared fixtures. Nothing may touch the network: the hub is switched off before anything imports it."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import random  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
POSITIVE = ["good", "great", "love", "excellent", "best", "fun", "nice", "happy"]
NEGATIVE = ["bad", "terrible", "hate", "awful", "worst", "boring", "poor", "sad"]
FILLER = ["the", "film", "movie", "was", "very", "really", "it", "this"]


def toy_sentiment(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Texts whose label is given by which sentiment words they contain: learnable by a tiny model."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        positive = i % 2 == 0
        words = rng.choices(POSITIVE if positive else NEGATIVE, k=2) + rng.choices(FILLER, k=rng.randint(1, 6))
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append("pos" if positive else "neg")
    return texts, labels


@pytest.fixture
def toy_data():
    return toy_sentiment(120, seed=0), toy_sentiment(40, seed=1)


@pytest.fixture
def toy_csv(tmp_path, toy_data):
    import pandas as pd

    (train_x, train_y), (test_x, test_y) = toy_data
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    pd.DataFrame({"text": train_x, "label": train_y}).to_csv(train, index=False)
    pd.DataFrame({"text": test_x, "label": test_y}).to_csv(test, index=False)
    return train, test


# Fast settings for the tiny random model: high learning rates, few epochs, no auto validation split.
TINY = dict(backbone="tiny-bert", epochs=4, head_epochs=20, lr=5e-3, head_lr=2e-2, batch_size=16, val_fraction=0.0)


def shared_dataset(name: str) -> Path:
    """A dataset from ../shared/datasets: skipped outside CI when absent, an error under CI=true."""
    path = SHARED_DATASETS / name
    if not path.is_dir():
        if os.environ.get("CI") == "true":
            raise AssertionError(f"CI needs the shared dataset {path}")
        pytest.skip(f"shared dataset {path} is not available (only in the project's checkout/CI)")
    return path


@pytest.fixture(autouse=True, scope="session")
def _feature_cache_in_tmp(tmp_path_factory):
    """Tests never write the user's ~/.cache."""
    os.environ["TRANSFERKIT_CACHE"] = str(tmp_path_factory.mktemp("transferkit-cache"))


CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; browser tests never download a browser
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"  # screenshots (gitignored)


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's Chromium: the browser tests skip without it, except under CI, which must install it."""
    if not CHROMIUM.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs {CHROMIUM} (Debian package `chromium`) for the browser tests")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium); the browser check needs it")
    return CHROMIUM
