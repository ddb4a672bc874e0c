"""Integration: the embedded Whisper tiny.en encoder on real recordings (FSDD spoken digits)."""

import csv

import numpy as np
import pytest

import transferkit as tk
from conftest import shared_dataset

pytestmark = pytest.mark.slow


def test_whisper_probe_recognises_an_unseen_speakers_digits(tmp_path):
    """Train on 5 speakers (20 clips per digit), test on the 6th: the honest transfer test, small."""
    root = shared_dataset("fsdd")
    with open(root / "splits.csv") as handle:
        rows = list(csv.DictReader(handle))
    held_out = "george"
    train = [r for r in rows if r["speaker"] != held_out and int(r["index"]) < 4]
    test = [r for r in rows if r["speaker"] == held_out and int(r["index"]) < 10]
    model = tk.FineTuner(strategy="probe").fit(
        [str(root / r["path"]) for r in train], [r["label"] for r in train], verbose=False
    )
    assert model.run_info_["backbone"]["name"] == "whisper-tiny"  # the default backbone for audio
    paths = [str(root / r["path"]) for r in test]
    accuracy = model.score(paths, [r["label"] for r in test])
    assert accuracy >= 0.8, accuracy  # chance is 0.1; measured 1.0
    model.save(tmp_path / "run")
    assert np.array_equal(tk.load(tmp_path / "run").predict_proba(paths[:8]), model.predict_proba(paths[:8]))
