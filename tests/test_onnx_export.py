"""ONNX export: parity with PyTorch for every modality, the ONNX runtime behind tk.load / predict, int8, failures."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from PIL import Image

import transferkit as tk
from conftest import TINY, shared_dataset, toy_sentiment
from transferkit.cli import main
from transferkit.data import load_examples
from transferkit.errors import ArtifactError, ConfigError, ExportError
from transferkit.export.onnx_export import OnnxExportConfig, export_onnx
from transferkit.export.onnx_runtime import OnnxRunner

QUICK = {**TINY, "epochs": 1, "head_epochs": 3}
TEXTS = ["good film", "awful boring movie, the worst", "it was fine", "love it love it really very much", "bad"]


def _manifest(run) -> dict:
    return json.loads((run / "transferkit.json").read_text())


def _same_predictions(run, inputs, runtime="onnx") -> None:
    torch_model, onnx_model = tk.load(run), tk.load(run, runtime=runtime)
    if torch_model.task_.name == "regression":
        expected, actual = np.asarray(torch_model.predict(inputs)), np.asarray(onnx_model.predict(inputs))
        assert np.allclose(actual, expected, rtol=1e-4, atol=1e-4)
        return
    assert np.abs(onnx_model.predict_proba(inputs) - torch_model.predict_proba(inputs)).max() <= 1e-4
    assert onnx_model.predict(inputs) == torch_model.predict(inputs)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """A tiny-bert run trained from a CSV file with 25% of its rows held out: export finds them by itself."""
    root = tmp_path_factory.mktemp("text")
    texts, labels = toy_sentiment(60)
    pd.DataFrame({"text": texts, "label": labels}).to_csv(root / "train.csv", index=False)
    tk.FineTuner(**{**QUICK, "val_fraction": 0.25}).fit(root / "train.csv", verbose=False).save(root / "run")
    record = export_onnx(root / "run")
    return root / "run", record


def test_text_export_passes_parity_and_is_recorded(text_run):
    run, record = text_run
    assert (run / "model.onnx").is_file() and record["file"] == "model.onnx"
    onnx = _manifest(run)["onnx"]
    assert onnx["parity"]["passed"] is True and onnx["parity"]["labels_identical"] is True
    assert onnx["parity"]["max_abs_prob_diff"] <= 1e-4 and onnx["parity"]["examples"] == 16
    assert "held out of" in onnx["parity"]["examples_source"]  # the run's own validation rows, read again
    assert onnx["inputs"]["input_ids"]["shape"] == ["batch", "sequence"] and onnx["opset"] == 17
    assert onnx["onnxruntime_version"] and onnx["lora_merged"] is False and "int8" not in onnx


def test_onnx_runtime_predicts_like_torch_for_any_batch_and_length(text_run):
    run, _ = text_run
    model = tk.load(run, runtime="onnx")
    assert model.runtime_ == "onnx" and isinstance(model.runner_, OnnxRunner)
    _same_predictions(run, TEXTS)
    _same_predictions(run, ["one text alone"])
    many = toy_sentiment(70, seed=5)[0]  # more than one eval batch: batches of several sizes and lengths
    torch_proba = tk.load(run).predict_proba(many)
    assert np.abs(model.predict_proba(many) - torch_proba).max() <= 1e-4


def test_int8_quantisation_reports_the_score_change(text_run, tmp_path):
    run = shutil.copytree(text_run[0], tmp_path / "run")
    record = export_onnx(run, config=OnnxExportConfig(quantize="int8"))
    int8 = _manifest(run)["onnx"]["int8"]
    assert (run / "model.int8.onnx").is_file() and int8 == record["int8"]
    score = int8["score"]
    assert score["metric"] == "accuracy" and score["examples"] == 16
    assert score["change"] == pytest.approx(score["int8"] - score["fp32"])
    assert 0 <= int8["agreement_with_fp32"] <= 1
    assert len(tk.load(run, runtime="onnx-int8").predict(TEXTS)) == len(TEXTS)


def test_failed_parity_refuses_and_records_the_failure(text_run, tmp_path, monkeypatch, capsys):
    run = shutil.copytree(text_run[0], tmp_path / "run")
    original = OnnxRunner.__call__

    def wrong_graph(self, batch):
        outputs = original(self, batch)
        outputs[:, 0] += 0.5  # one class's logit off: probabilities differ
        return outputs

    monkeypatch.setattr(OnnxRunner, "__call__", wrong_graph)
    with pytest.raises(ExportError, match=r"failed its parity check.*max \|Δprob\| = "):
        export_onnx(run)
    parity = _manifest(run)["onnx"]["parity"]
    assert parity["passed"] is False and parity["max_abs_prob_diff"] > 1e-4
    assert not (run / "model.onnx").exists() and (run / "model.onnx.failed").is_file()
    with pytest.raises(ArtifactError, match="no model.onnx"):
        tk.load(run, runtime="onnx")
    assert main(["export", str(run), "--format", "onnx"]) == 2
    assert "parity check" in capsys.readouterr().err


def test_cli_export_and_predict_with_onnx_runtime(text_run, tmp_path, capsys):
    run = shutil.copytree(text_run[0], tmp_path / "run")
    assert main(["export", str(run), "--format", "onnx"]) == 0
    assert "parity with PyTorch on 16 examples: passed" in capsys.readouterr().out
    assert main(["predict", str(run), *TEXTS]) == 0
    torch_lines = capsys.readouterr().out
    assert main(["predict", str(run), *TEXTS, "--runtime", "onnx"]) == 0
    assert capsys.readouterr().out == torch_lines  # labels and probabilities to 3 decimals


def test_runtime_errors_say_how_to_fix(tmp_path):
    run = tk.FineTuner(**QUICK).fit(*toy_sentiment(30), verbose=False).save(tmp_path / "run")
    with pytest.raises(ArtifactError, match="transferkit export .* --format onnx"):
        tk.load(run, runtime="onnx")
    with pytest.raises(ConfigError, match="onnx-int8"):
        tk.load(run, runtime="tensorrt")
    with pytest.raises(ExportError, match="--data"):  # trained from lists: no file to read held-out rows from
        export_onnx(run)
    pd.DataFrame({"text": TEXTS}).to_csv(tmp_path / "inputs.csv", index=False)
    with pytest.raises(ExportError, match="labelled"):  # int8 scores need labels
        export_onnx(run, data=tmp_path / "inputs.csv", config=OnnxExportConfig(quantize="int8"))
    assert export_onnx(run, data=tmp_path / "inputs.csv")["parity"]["passed"]  # parity needs inputs only


def _val_csv(path, texts, labels):
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    return path


def test_lora_run_is_merged_before_export(tmp_path):
    model = tk.FineTuner(**{**QUICK, "strategy": "lora"}).fit(*toy_sentiment(40), verbose=False)
    run = model.save(tmp_path / "run")
    assert _manifest(run)["strategy_info"]["merged"] is False  # adapters saved unmerged
    record = export_onnx(run, data=_val_csv(tmp_path / "val.csv", *toy_sentiment(20, seed=2)))
    assert record["lora_merged"] is True and record["parity"]["passed"]
    _same_predictions(run, TEXTS)


def _multilabel(n, seed=0):
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        chosen = [label for label in ("good", "film") if rng.random() < 0.5]
        texts.append(" ".join(chosen * 2 + rng.choices(["the", "it", "was", "very"], k=3)))
        labels.append("|".join(chosen))
    return texts, labels


def _regression(n, seed=0):
    rng = random.Random(seed)
    texts, targets = [], []
    for _ in range(n):
        good = rng.randint(0, 3)
        texts.append(" ".join(["good"] * good + ["the", "film"]))
        targets.append(1000.0 + 50.0 * good)  # large values: the relative tolerance is what parity uses
    return texts, targets


@pytest.mark.parametrize("task, make", [("multilabel", _multilabel), ("regression", _regression)])
def test_multilabel_and_regression_runs(tmp_path, task, make):
    run = tk.FineTuner(**{**QUICK, "task": task}).fit(*make(40), verbose=False).save(tmp_path / "run")
    record = export_onnx(
        run, data=_val_csv(tmp_path / "val.csv", *make(20, seed=1)), config=OnnxExportConfig(quantize="int8")
    )
    assert record["parity"]["passed"]
    if task == "regression":
        assert record["parity"]["max_rel_value_diff"] <= 1e-4 and record["parity"]["labels_identical"] is None
        assert record["int8"]["score"]["metric"] == "r2" and record["int8"]["agreement_with_fp32"] is None
    else:
        assert record["int8"]["score"]["metric"] == "subset_accuracy"
    _same_predictions(run, TEXTS)


def _images(root):
    for name, colour in {"red": (220, 30, 30), "blue": (30, 30, 220)}.items():
        (root / name).mkdir(parents=True)
        for i in range(5):
            rng = np.random.default_rng(i + len(name))
            pixels = np.clip(np.array(colour)[None, None, :] + rng.normal(0, 25, (40, 40, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def _clips(root):
    for name, freq in {"low": 300.0, "high": 2500.0}.items():
        (root / name).mkdir(parents=True)
        for i in range(4):
            rng = np.random.default_rng(i)
            seconds = 0.3 + 0.4 * i  # shorter and longer than the 1 s window: padded and cropped clips
            t = np.arange(int(seconds * 8000)) / 8000
            wave = 0.4 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.standard_normal(len(t))
            sf.write(root / name / f"{i}.wav", wave.astype(np.float32), 8000)
    return root


def _vectors(root):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 12)).astype(np.float32)
    np.savez(root / "data.npz", X=x, y=(x[:, 0] > 0).astype(int))
    return root / "data.npz"


MODALITIES = {
    "image-timm": ("tiny-efficientnet", _images, {}),
    "audio-whisper": ("tiny-whisper", _clips, {"clip_seconds": 1.5}),  # two encoder windows in one graph
    "audio-wav2vec2": ("tiny-wav2vec2", _clips, {}),
    "audio-resemblyzer": ("tiny-resemblyzer", _clips, {}),
    "vector-mlp": ("mlp:12-16", _vectors, {}),
}


@pytest.mark.parametrize("name", sorted(MODALITIES))
def test_every_modality_exports_with_parity(tmp_path, name):
    backbone, make, options = MODALITIES[name]
    data = make(tmp_path / "data") if make is not _vectors else make(tmp_path)
    params = dict(backbone=backbone, strategy="full", epochs=1, head_epochs=2, val_fraction=0.0, batch_size=4)
    run = tk.FineTuner(**params, **options).fit(data, verbose=False).save(tmp_path / "run")
    record = export_onnx(run, data=data)
    assert record["parity"]["passed"] and record["parity"]["labels_identical"]
    assert all(shape[0] == "batch" for shape in (i["shape"] for i in record["inputs"].values()))
    inputs = load_examples(data, modality=tk.load(run).modality_).inputs
    _same_predictions(run, inputs)
    _same_predictions(run, inputs[:1])


@pytest.mark.slow
def test_real_minilm_probe_exports_with_parity(tmp_path):
    path = shared_dataset("sst2")
    train = pd.read_csv(path / "train.csv").sample(48, random_state=0)
    val = pd.read_csv(path / "dev.csv").sample(32, random_state=0)
    val.to_csv(tmp_path / "val.csv", index=False)
    model = tk.FineTuner(backbone="minilm", strategy="probe", max_length=64).fit(train, verbose=False)
    run = model.save(tmp_path / "run")
    record = export_onnx(run, data=tmp_path / "val.csv", config=OnnxExportConfig(quantize="int8"))
    assert record["parity"]["passed"] and record["parity"]["examples"] == 32
    assert abs(record["int8"]["score"]["change"]) <= 0.15
    _same_predictions(run, val["text"].tolist()[:8])


def test_whisper_static_encoding_equals_the_windowed_one():
    """The traced (ONNX) Whisper path encodes every window size in one graph and must equal encode_clip."""
    import torch
    from transformers import WhisperModel

    from transferkit.backbones.testing import tiny_whisper_dir
    from transferkit.backbones.whisper_clip import encode_clip, encode_clip_static, window_sizes

    encoder = WhisperModel.from_pretrained(tiny_whisper_dir()).get_encoder().eval()
    features = torch.randn(4, 80, 300)
    frames = torch.tensor([30, 100, 101, 150])  # windows 200, 200, 300, 300
    assert window_sizes(150) == [200, 300] and window_sizes(100) == [200]
    with torch.no_grad():
        expected = encode_clip(encoder, features, frames)
        actual = encode_clip_static(encoder, features, frames, window_sizes(150))
    assert torch.allclose(actual, expected, atol=1e-5)
