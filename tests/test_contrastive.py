"""strategy="contrastive": pairs, the pair loss, the centroid head start, the feature cache after the body trained,
save -> load, auto's few-shot rule and the errors for tasks it cannot train. (The conformance checks it shares with
every strategy are rows of tests/test_strategies.py.)"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import transferkit as tk
from conftest import TINY, toy_sentiment
from transferkit.config import RunConfig
from transferkit.data.examples import ExampleSet
from transferkit.errors import ConfigError
from transferkit.strategies.auto import CANDIDATES, FEW_SHOT_PER_CLASS, candidates
from transferkit.strategies.pairs import cosine_pair_loss, pair_targets

PROBE_TEXTS = ["good film", "awful boring movie, the worst", "it was fine", "love it love it really very much"]
FAST = {**TINY, "strategy": "contrastive", "contrastive_epochs": 3, "head_epochs": 5}


def _fit(**options):
    return tk.FineTuner(**{**FAST, **options}).fit(*toy_sentiment(64), verbose=False)


def test_pairs_within_a_batch_are_balanced_without_self_pairs_and_correctly_labelled():
    labels = torch.tensor([0, 0, 1, 2, 1, 0, 2])
    target, weight = pair_targets(labels)
    same = (labels[:, None] == labels[None, :]).float()
    assert torch.equal(target, same)
    assert torch.all(weight.diagonal() == 0) and torch.all(weight.tril() == 0)  # no self-pairs, each pair once
    pairs = weight > 0
    assert pairs.sum() == len(labels) * (len(labels) - 1) // 2  # every unordered pair, once
    positive, negative = weight[pairs & (same == 1)], weight[pairs & (same == 0)]
    assert len(positive) == 5 and len(negative) == 16
    assert torch.isclose(positive.sum(), torch.tensor(0.5)) and torch.isclose(negative.sum(), torch.tensor(0.5))
    assert torch.allclose(positive, positive[0]) and torch.allclose(negative, negative[0])  # equal within a kind


def test_pairs_of_one_kind_single_rows_and_two_sets():
    _, weight = pair_targets(torch.tensor([1, 1, 1]))  # only positives: all the weight on them
    assert torch.isclose(weight.sum(), torch.tensor(1.0))
    _, weight = pair_targets(torch.tensor([3]))  # a batch of one has no pair: no weight, and a zero loss
    assert weight.sum() == 0
    assert cosine_pair_loss(torch.randn(1, 4, requires_grad=True), torch.tensor([3])).item() == 0
    target, weight = pair_targets(torch.tensor([0, 1]), torch.tensor([0, 0, 1]))  # between sets: every pair counts
    assert torch.equal(target, torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    assert torch.isclose(weight[target == 1].sum(), torch.tensor(0.5)) and torch.all(weight > 0)


def test_pair_loss_is_setfits_cosine_mse():
    embeddings, labels = torch.randn(5, 8), torch.tensor([0, 1, 0, 1, 1])
    cosine = torch.nn.functional.cosine_similarity(embeddings[:, None], embeddings[None, :], dim=-1)
    target, weight = pair_targets(labels)
    expected = (weight * (cosine - target) ** 2).sum()
    assert torch.isclose(cosine_pair_loss(embeddings, labels), expected, atol=1e-6)


def test_pair_loss_decreases_on_a_toy_problem():
    from transferkit.backbones import build_backbone
    from transferkit.strategies.pairs import Embedder

    torch.manual_seed(0)
    backbone = build_backbone("tiny-bert")
    texts, names = toy_sentiment(32)
    batch = backbone.collate(backbone.encode(texts))
    labels = torch.tensor([names.index(n) for n in names])
    embedder = Embedder(backbone).train()
    optimizer = torch.optim.AdamW(embedder.parameters(), lr=5e-3)
    losses = []
    for _ in range(25):
        loss = cosine_pair_loss(embedder(batch), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_head_starts_as_the_nearest_centroid_classifier_with_soft_probabilities():
    from transferkit.config import HeadConfig
    from transferkit.heads import build_head, start_at_centroids

    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 4.0]])
    labels = torch.arange(3).repeat(8)
    features = centres[labels] + torch.randn(24, 3, generator=generator)
    head = build_head(HeadConfig(), 3, 3)
    assert start_at_centroids(head, features, labels)
    points = torch.randn(50, 3, generator=generator) * 3
    nearest = torch.cdist(points, torch.stack([features[labels == c].mean(0) for c in range(3)])).argmin(-1)
    with torch.no_grad():
        probabilities = head(points).softmax(-1)
    assert torch.equal(probabilities.argmax(-1), nearest)
    assert 0.5 < probabilities[:, :].max(-1).values.median() < 0.999  # confident, not saturated
    assert not start_at_centroids(build_head(HeadConfig(head="mlp"), 3, 3), features, labels)


def test_centroid_head_is_the_cosine_nearest_centroid_classifier_as_a_plain_linear_layer():
    from transferkit.config import HeadConfig
    from transferkit.heads import build_head, start_at_cosine_centroids

    generator = torch.Generator().manual_seed(0)
    directions = torch.tensor([[1.0, 0.2, 0.0], [0.0, 1.0, 0.3], [0.2, 0.0, 1.0]])
    labels = torch.tensor([0, 1, 2] * 8)
    norms = torch.rand(24, 1, generator=generator) * 9 + 1  # norms from 1 to 10: cosine ignores them, Euclid not
    features = norms * (directions[labels] + 0.3 * torch.randn(24, 3, generator=generator))
    head = build_head(HeadConfig(), 3, 4)  # a 4th class without training rows
    assert start_at_cosine_centroids(head, features, labels)
    assert torch.all(head.out.bias[:3] == 0) and head.out.bias[3] < -1e3
    points = torch.randn(200, 3, generator=generator) * torch.rand(200, 1, generator=generator) * 20
    unit = torch.nn.functional.normalize
    centroids = unit(torch.stack([features[labels == c].mean(0) for c in range(3)]), dim=-1)
    nearest = (unit(points, dim=-1) @ centroids.T).argmax(-1)
    with torch.no_grad():
        probabilities = head(points).softmax(-1)
        typical = head(features).softmax(-1)  # training rows: confident, not saturated
    assert torch.equal(probabilities.argmax(-1), nearest)
    assert 0.5 < typical.max(-1).values.median() < 0.999
    assert not start_at_cosine_centroids(build_head(HeadConfig(head="mlp"), 3, 3), features, labels)


def test_default_head_is_set_from_the_adapted_features_without_training():
    model = _fit()
    assert model.run_info_["training"]["head"]["optimizer_steps"] == 0
    assert model.run_info_["strategy_info"]["head"] == "centroids"
    trained = _fit(contrastive_head="trained")
    assert trained.run_info_["training"]["head"]["optimizer_steps"] > 0


def test_centroid_head_reports_its_validation_scores_as_a_trained_head_does():
    model = _fit(val_fraction=0.25)
    head = model.run_info_["training"]["head"]  # set, not trained: scored once, as "epoch 0"
    assert head["optimizer_steps"] == 0 and head["best_epoch"] == 0 and [r["epoch"] for r in head["history"]] == [0]
    x, y = toy_sentiment(64)
    held = model.run_info_["data"]["split_indices"]["val"]
    right = np.mean([p == y[i] for p, i in zip(model.predict([x[i] for i in held]), held)])
    assert model.run_info_["metrics"]["validation"]["accuracy"] == pytest.approx(right, abs=1e-6)


def test_head_trains_on_the_adapted_backbones_features_not_the_pretrained_ones(tmp_path, monkeypatch):
    from transferkit.training.feature_cache import FeatureCache

    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path))
    probe = tk.FineTuner(**{**TINY, "strategy": "probe", "head_epochs": 2}).fit(*toy_sentiment(64), verbose=False)
    model = _fit(contrastive_body="full")
    directory = model.run_info_["feature_cache"]["directory"]
    assert directory != probe.run_info_["feature_cache"]["directory"]
    backbone = model.model_.backbone
    items = backbone.encode(toy_sentiment(64)[0])
    cached = FeatureCache(tmp_path / "features", directory.rsplit("/", 1)[-1]).features(items, lambda i: 1 / 0)[0]
    with torch.no_grad():
        now = backbone.forward_features(backbone.collate(items))
    assert torch.allclose(cached, now, atol=1e-5)


@pytest.mark.parametrize(
    "options",
    [
        {"contrastive_body": "full"},
        {"merge_adapters": True},
        {"contrastive_body": "full", "contrastive_head": "trained"},
    ],
    ids=["full", "merged", "trained-head"],
)
def test_save_load_identical_predictions(tmp_path, options):
    model = _fit(**options)
    model.save(tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "transferkit.json").read_text())
    info = manifest["strategy_info"]
    assert info["body"] == options.get("contrastive_body", "lora") and info.get("merged", True) is True
    assert not (tmp_path / "run" / "adapter").exists()
    reloaded = tk.load(tmp_path / "run")
    assert np.array_equal(reloaded.predict_proba(PROBE_TEXTS), model.predict_proba(PROBE_TEXTS))


def _examples(per_class: int, classes: int = 2, task: str = "classification") -> ExampleSet:
    labels = [f"c{i % classes}" for i in range(per_class * classes)]
    return ExampleSet([f"text {i}" for i in range(len(labels))], labels, "test", task=task)


def test_auto_adds_contrastive_for_few_examples_per_class():
    config = RunConfig.from_dict({"strategy": "auto"})
    assert candidates(config, _examples(8)) == ("probe", "contrastive", *CANDIDATES[1:])
    assert candidates(config, _examples(FEW_SHOT_PER_CLASS, classes=4))[1] == "contrastive"
    assert candidates(config, _examples(FEW_SHOT_PER_CLASS + 1)) == CANDIDATES
    regression = RunConfig.from_dict({"strategy": "auto", "task": "regression"})
    assert "contrastive" not in candidates(regression, _examples(8))


@pytest.mark.parametrize("task", ["multilabel", "regression"])
def test_tasks_without_single_labels_are_refused_with_the_alternatives(task):
    with pytest.raises(ConfigError, match=rf"needs task='classification'.*got task='{task}'.*probe, freeze, lora"):
        RunConfig.from_dict({"strategy": "contrastive", "task": task})


def test_bad_options_say_what_is_valid():
    with pytest.raises(ConfigError, match=r"contrastive_body must be one of \('lora', 'full'\), got 'adapters'"):
        RunConfig.from_dict({"contrastive_body": "adapters"})
    with pytest.raises(ConfigError, match=r"contrastive_head must be one of \('centroids', 'trained'\), got 'knn'"):
        RunConfig.from_dict({"contrastive_head": "knn"})
    with pytest.raises(ConfigError, match="contrastive_epochs must be >= 1"):
        RunConfig.from_dict({"contrastive_epochs": 0})
