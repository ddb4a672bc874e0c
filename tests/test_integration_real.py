"""Integration: the real embedded MiniLM on real data (SST-2 from ../shared, drug reviews from a pip package)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import transferkit as tk
from conftest import shared_dataset

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sst2():
    path = shared_dataset("sst2")
    train = pd.read_csv(path / "train.csv").sample(400, random_state=0)
    test = pd.read_csv(path / "test.csv").sample(300, random_state=0)
    return train, test


def _majority(train, test) -> float:
    return float((test["label"] == train["label"].mode()[0]).mean())


def test_full_fine_tuning_beats_majority_and_loads_in_plain_transformers(sst2, tmp_path):
    train, test = sst2
    model = tk.FineTuner(backbone="minilm", strategy="full", max_length=64).fit(train, verbose=False)
    accuracy = model.score(test)
    assert accuracy >= _majority(train, test) + 0.2, accuracy

    model.save(tmp_path / "run")
    texts = test["text"].tolist()[:32]
    reloaded = tk.load(tmp_path / "run")
    assert np.array_equal(reloaded.predict_proba(texts), model.predict_proba(texts))

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "run").eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "run")
    with torch.no_grad():
        logits = plain(**tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")).logits
    assert np.allclose(torch.softmax(logits, -1).numpy(), model.predict_proba(texts), atol=1e-4)
    assert [plain.config.id2label[i] for i in logits.argmax(-1).tolist()] == model.predict(texts)


def test_probe_beats_majority(sst2):
    train, test = sst2
    model = tk.FineTuner(backbone="minilm", strategy="probe", max_length=64, head_lr=1e-2).fit(train, verbose=False)
    assert model.score(test) >= _majority(train, test) + 0.2
    assert model.run_info_["parameters"]["trainable"] == 384 * 2 + 2


@pytest.mark.parametrize(
    "strategy, options",
    [("freeze", {"trainable_blocks": 2}), ("lora", {}), ("lp-ft", {"head_lr": 1e-2})],
)
def test_other_strategies_beat_majority(sst2, strategy, options):
    train, test = sst2
    model = tk.FineTuner(backbone="minilm", strategy=strategy, max_length=64, **options).fit(train, verbose=False)
    assert model.score(test) >= _majority(train, test) + 0.2


def test_demo_script_on_drug_reviews(tmp_path):
    """What `make demo` runs: fine-tune on 600 real reviews, beat the majority baseline, reload, predict."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "drug_reviews.py"), "--out", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    test_line, base_line = lines["test"], lines["majority"]
    accuracy = float(test_line.split("accuracy ")[1].split(",")[0])
    macro_f1 = float(test_line.split("macro-F1 ")[1].split()[0])
    base_accuracy = float(base_line.split("accuracy ")[1].split(",")[0])
    base_f1 = float(base_line.split("macro-F1 ")[1])
    assert accuracy > base_accuracy + 0.03 and macro_f1 > base_f1 + 0.1, done.stdout
    assert (tmp_path / "demo" / "transferkit.json").is_file()
