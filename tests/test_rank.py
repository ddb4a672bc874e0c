"""Ranking backbones before training: LogME against the paper's reference code, the k-fold probe, candidates."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from conftest import toy_sentiment
from transferkit.cli import main
from transferkit.data.examples import load_examples
from transferkit.errors import ConfigError
from transferkit.selection.baselines import pixel_features, tfidf_features, waveform_features
from transferkit.selection.logme import logme_score
from transferkit.selection.probe import fold_ids, kfold_probe_score
from transferkit.selection.rank import rank_backbones


def _reference_logme(f: np.ndarray, y: np.ndarray, classes: int) -> float:
    """The LogME authors' implementation (thuml/LogME, D x D eigendecomposition), for comparison."""
    f = f.astype(np.float64)
    fh, f = f, f.T
    d, n = f.shape
    v, s, vh = np.linalg.svd(f @ fh, full_matrices=True)
    evidences = []
    for c in range(classes):
        y_ = (y == c).astype(np.float64)
        alpha, beta, lam = 1.0, 1.0, 1.0
        tmp = vh @ (f @ y_)
        for _ in range(11):
            gamma = (s / (s + lam)).sum()
            m = v @ (tmp * beta / (alpha + beta * s))
            alpha_de = (m * m).sum()
            alpha = gamma / (alpha_de + 1e-5)
            beta_de = ((y_ - fh @ m) ** 2).sum()
            beta = (n - gamma) / (beta_de + 1e-5)
            new_lam = alpha / beta
            if np.abs(new_lam - lam) / lam < 0.01:
                break
            lam = new_lam
        evidence = (
            d / 2 * np.log(alpha) + n / 2 * np.log(beta) - 0.5 * np.sum(np.log(alpha + beta * s))
            - beta / 2 * (beta_de + 1e-5) - alpha / 2 * (alpha_de + 1e-5) - n / 2 * np.log(2 * np.pi)
        )  # fmt: skip
        evidences.append(evidence / n)
    return float(np.mean(evidences))


@pytest.mark.parametrize("n,d", [(200, 30), (60, 150)])  # more examples than features, and fewer
def test_logme_equals_the_reference_implementation(n, d):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    features = rng.normal(size=(n, d)) + 0.8 * y[:, None] * (np.arange(d) < 4)
    assert logme_score(features, np.eye(3)[y]) == pytest.approx(_reference_logme(features, y, 3), rel=1e-9)


def test_logme_and_probe_prefer_informative_features():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    informative = rng.normal(size=(300, 16)) + 1.5 * y[:, None]
    noise = rng.normal(size=(300, 16))
    assert logme_score(informative, np.eye(2)[y]) > logme_score(noise, np.eye(2)[y])
    accuracy, spread = kfold_probe_score(informative, y)
    assert accuracy > 0.95 and spread < 0.1 and kfold_probe_score(noise, y)[0] < 0.65
    target = informative @ rng.normal(size=16)
    assert kfold_probe_score(informative, target, "regression")[0] > 0.99  # a linear target: R² ~1
    tags = np.stack([y, 1 - y], axis=1).astype(float)
    assert kfold_probe_score(informative, tags, "multilabel")[0] > 0.95


def test_folds_are_stratified_and_seeded():
    y = np.array([0] * 20 + [1] * 10)
    ids = fold_ids(y, "classification", 5, seed=0)
    for k in range(5):
        assert (y[ids == k] == 0).sum() == 4 and (y[ids == k] == 1).sum() == 2
    assert np.array_equal(ids, fold_ids(y, "classification", 5, seed=0))


def test_baseline_features(tmp_path):
    matrix = tfidf_features(["good film", "good film, great film", "bad film"])
    assert matrix.shape == (3, 3) and np.allclose(np.linalg.norm(matrix, axis=1), 1.0)  # film, good, "good film"
    Image.new("RGB", (50, 40), (255, 0, 0)).save(tmp_path / "red.png")
    pixels = pixel_features([str(tmp_path / "red.png")])
    assert pixels.shape == (1, 3072) and pixels[0, 0] == 1.0 and pixels[0, 1] == 0.0
    t = np.arange(8000) / 8000
    sf.write(tmp_path / "tone.wav", (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 8000)
    assert waveform_features([str(tmp_path / "tone.wav")]).shape == (1, 130)


def test_rank_orders_candidates_and_reuses_cached_features():
    x, y = toy_sentiment(100)
    examples = load_examples(x, y)
    result = rank_backbones(examples, ["tfidf", "random:tiny-bert", "tiny-bert"], folds=4)
    assert [r["logme"] for r in result.rows] == sorted((r["logme"] for r in result.rows), reverse=True)
    by_name = {r["candidate"]: r for r in result.rows}
    assert by_name["tfidf"]["kind"] == "baseline" and by_name["random:tiny-bert"]["kind"] == "random init"
    assert by_name["tiny-bert"]["dims"] == 32 and by_name["tiny-bert"]["parameters"] > 0
    assert by_name["random:tiny-bert"]["logme"] != by_name["tiny-bert"]["logme"]  # other weights, other features
    again = rank_backbones(examples, ["tiny-bert"], folds=4, by="probe")
    assert again.rows[0]["from_cache"] and again.rows[0]["logme"] == by_name["tiny-bert"]["logme"]
    with pytest.raises(ConfigError, match="'pixels' is the baseline for image data"):
        rank_backbones(examples, ["pixels"])


def test_rank_cli(toy_csv, capsys):
    train, _ = toy_csv
    assert main(["rank", "--data", str(train), "--backbones", "tiny-bert,tfidf", "--folds", "3"]) == 0
    table = capsys.readouterr().out
    assert "3-fold linear-probe accuracy" in table and "tfidf" in table
    assert main(["rank", "--data", str(train), "--backbones", "tfidf", "--task", "regression", "--json"]) == 2
    assert "regression" in capsys.readouterr().err  # string labels cannot be a regression target
    assert main(["rank", "--data", str(train), "--backbones", "tiny-bert", "--by", "probe", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["settings"]["by"] == "probe"


def test_random_init_backbone_trains_saves_and_reloads(tmp_path):
    """`random:<backbone>` is a real backbone for fit: fresh (fixed-seed) weights, saved and reloaded like any other."""
    import torch

    import transferkit as tk
    from transferkit.backbones import build_backbone

    def weights(backbone):
        return backbone.model.embeddings.word_embeddings.weight

    pretrained, fresh, again = (build_backbone(n) for n in ("tiny-bert", "random:tiny-bert", "random:tiny-bert"))
    assert not torch.equal(weights(pretrained), weights(fresh))
    assert torch.equal(weights(fresh), weights(again)), "random:<backbone> is one fixed draw"
    texts, labels = toy_sentiment(48)
    model = tk.FineTuner(backbone="random:tiny-bert", strategy="full", epochs=1, val_fraction=0.0)
    model.fit(texts, labels, verbose=False).save(tmp_path / "run")
    loaded = tk.load(tmp_path / "run")
    assert loaded.run_info_["backbone"]["name"] == "random:tiny-bert"
    np.testing.assert_allclose(loaded.predict_proba(texts[:6]), model.predict_proba(texts[:6]), atol=1e-6)
