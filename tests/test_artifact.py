"""Artifact directory: bit-for-bit reload, plain-transformers loading, atomic writes."""

import json

import numpy as np
import pytest
import torch

import transferkit as tk
from conftest import TINY
from transferkit.errors import ArtifactError
from transferkit.export import artifact as artifact_module

PROBE_TEXTS = ["good film", "awful boring movie, the worst", "it was fine", "love it love it really very much"]


@pytest.fixture(scope="module")
def trained():
    from conftest import toy_sentiment

    return tk.FineTuner(**TINY).fit(*toy_sentiment(120), verbose=False)


def test_reload_gives_identical_predictions(tmp_path, trained):
    trained.save(tmp_path / "run")
    reloaded = tk.load(tmp_path / "run")
    assert np.array_equal(reloaded.predict_proba(PROBE_TEXTS), trained.predict_proba(PROBE_TEXTS))
    assert reloaded.predict(PROBE_TEXTS) == trained.predict(PROBE_TEXTS)
    for key, value in trained.model_.state_dict().items():
        assert torch.equal(value, reloaded.model_.state_dict()[key]), key


def test_manifest_records_the_run(tmp_path, trained):
    trained.save(tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "transferkit.json").read_text())
    assert manifest["labels"] == ["neg", "pos"]
    assert manifest["backbone"] == {"source": "hf_text", "name": "tiny-bert", "pooling": "mean", "max_length": 64}
    assert manifest["strategy"] == "full" and manifest["seed"] == 42
    assert manifest["config"]["train"]["lr"] == TINY["lr"]
    assert len(manifest["data"]["train_fingerprint"]) == 16 and manifest["data"]["train_rows"] == 120
    assert {"torch", "transformers", "python"} <= set(manifest["packages"])
    assert manifest["native_export"]["written"] is True and manifest["native_export"]["max_abs_logit_diff"] < 1e-3
    assert manifest["training"]["full"]["history"] and "wall_time_s" in manifest and "command" in manifest
    assert (tmp_path / "run" / "weights.safetensors").is_file() and (
        tmp_path / "run" / "backbone" / "config.json"
    ).is_file()


def _plain_transformers_probabilities(directory, texts):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(directory).eval()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    with torch.no_grad():
        logits = model(**tokenizer(texts, padding=True, truncation=True, return_tensors="pt")).logits
    return torch.softmax(logits, -1).numpy(), model.config.id2label


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_artifact_loads_in_plain_transformers_with_the_same_predictions(tmp_path, pooling):
    from conftest import toy_sentiment

    model = tk.FineTuner(**{**TINY, "pooling": pooling}).fit(*toy_sentiment(120), verbose=False)
    model.save(tmp_path / "run")
    theirs, id2label = _plain_transformers_probabilities(tmp_path / "run", PROBE_TEXTS)
    ours = model.predict_proba(PROBE_TEXTS)
    assert np.allclose(theirs, ours, atol=1e-4)
    assert [id2label[i] for i in theirs.argmax(1)] == model.predict(PROBE_TEXTS)


def test_mlp_head_records_why_there_is_no_transformers_export(tmp_path):
    from conftest import toy_sentiment

    model = tk.FineTuner(**{**TINY, "head": "mlp", "epochs": 1}).fit(*toy_sentiment(40), verbose=False)
    model.save(tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "transferkit.json").read_text())
    assert manifest["native_export"]["written"] is False and "MLP head" in manifest["native_export"]["reason"]
    assert not (tmp_path / "run" / "model.safetensors").exists()
    assert tk.load(tmp_path / "run").predict(["good"]) == model.predict(["good"])


def test_failed_save_leaves_nothing_behind(tmp_path, trained, monkeypatch):
    def broken_export(model, directory):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        artifact_module.save_artifact(tmp_path / "run", trained.model_, {}, native_export=broken_export)
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_the_previous_run(tmp_path, trained):
    trained.save(tmp_path / "run")
    before = (tmp_path / "run" / "transferkit.json").read_text()

    def broken_export(model, directory):
        raise OSError("disk full")

    with pytest.raises(OSError):
        artifact_module.save_artifact(tmp_path / "run", trained.model_, {}, overwrite=True, native_export=broken_export)
    assert (tmp_path / "run" / "transferkit.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_loading_something_that_is_not_a_run(tmp_path):
    with pytest.raises(ArtifactError, match="not a transferkit run directory"):
        tk.load(tmp_path)
    (tmp_path / "transferkit.json").write_text("{broken")
    with pytest.raises(ArtifactError, match="corrupt"):
        tk.load(tmp_path)
