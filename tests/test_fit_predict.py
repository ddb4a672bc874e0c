"""FineTuner on the tiny random BERT: learning, strategies, determinism, persistence, errors."""

import numpy as np
import pytest
import torch

import transferkit as tk
from conftest import TINY
from transferkit.errors import ArtifactError, DataError, NotFittedError, TrainingError


def _fit(train, **overrides):
    params = {**TINY, **overrides}
    return tk.FineTuner(**params).fit(*train, verbose=False)


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_full_fine_tuning_learns_and_changes_every_weight(toy_data):
    train, test = toy_data
    from transferkit.backbones import build_backbone

    before = _state(build_backbone("tiny-bert").model)
    model = _fit(train, strategy="full")
    assert model.score(*test) >= 0.9
    after = model.model_.backbone.model.state_dict()
    changed = [k for k, v in before.items() if not torch.equal(v, after[k]) and v.dtype.is_floating_point]
    assert len(changed) >= len([v for v in before.values() if v.dtype.is_floating_point]) - 2  # token-type row 1 unused
    info = model.run_info_
    assert info["parameters"]["trainable"] == info["parameters"]["total"]


def test_probe_freezes_the_backbone_bit_for_bit(toy_data):
    train, test = toy_data
    from transferkit.backbones import build_backbone

    before = _state(build_backbone("tiny-bert").model)
    model = _fit(train, strategy="probe")
    after = model.model_.backbone.model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())
    assert model.score(*test) >= 0.8
    assert model.run_info_["parameters"]["trainable"] == 32 * 2 + 2


def test_same_seed_same_model_different_seed_different(toy_data):
    train, _ = toy_data
    a, b = _fit(train, epochs=1), _fit(train, epochs=1)
    c = _fit(train, epochs=1, seed=7)
    probe = ["good film", "awful movie"]
    assert np.array_equal(a.predict_proba(probe), b.predict_proba(probe))
    assert not np.array_equal(a.predict_proba(probe), c.predict_proba(probe))


def test_early_stopping_restores_the_best_epoch(toy_data):
    train, _ = toy_data
    model = _fit(train, epochs=6, val_fraction=0.2, early_stopping_patience=1, lr=1e-1)
    training = model.run_info_["training"]["full"]
    rows = training["history"]
    best = max(rows, key=lambda r: (r["val_accuracy"], -r["val_loss"]))
    assert training["best_epoch"] == best["epoch"]
    assert model.run_info_["metrics"]["validation"]["accuracy"] == best["val_accuracy"]


def test_gradient_accumulation_and_cosine_schedule_run(toy_data):
    train, test = toy_data
    model = _fit(train, grad_accum_steps=2, schedule="cosine", batch_size=8)
    assert model.run_info_["training"]["full"]["optimizer_steps"] == 4 * 8  # 15 micro-batches -> 8 steps per epoch
    assert model.score(*test) >= 0.8


def test_mlp_head_and_cls_pooling(toy_data):
    train, test = toy_data
    model = _fit(train, head="mlp", pooling="cls", strategy="full")
    assert model.model_.backbone.pooling == "cls"
    assert model.score(*test) >= 0.7


def test_nan_loss_stops_with_a_clear_message(toy_data):
    train, _ = toy_data
    with pytest.raises(TrainingError, match=r"loss became nan at epoch 1.*Lower the learning rate"):
        _fit(train, lr=1e38, head_lr=1e38, max_grad_norm=None)


def test_predict_before_fit_and_single_class():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        tk.FineTuner().predict(["x"])
    with pytest.raises(DataError, match="single class"):
        tk.FineTuner(**TINY).fit(["a", "b", "c"], ["x", "x", "x"], verbose=False)


def test_unseen_labels_in_validation_and_evaluation(toy_data):
    train, _ = toy_data
    with pytest.raises(DataError, match="never saw in training.*'meh'"):
        tk.FineTuner(**TINY).fit(*train, val=["so so"], val_labels=["meh"], verbose=False)
    model = _fit(train, epochs=1)
    with pytest.raises(DataError, match="never saw"):
        model.evaluate(["fine"], ["meh"])


def test_predict_accepts_one_string_lists_and_frames(toy_data):
    import pandas as pd

    train, _ = toy_data
    model = _fit(train, epochs=1)
    assert len(model.predict("good")) == 1
    assert model.predict(pd.DataFrame({"text": ["good", "bad"]})) == model.predict(["good", "bad"])
    probabilities = model.predict_proba(["good", "bad", "fine film"])
    assert probabilities.shape == (3, 2) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-6)
    assert model.classes_ == ["neg", "pos"]


def test_evaluate_reports_per_class_confusion_and_baseline(toy_data):
    train, test = toy_data
    metrics = _fit(train).evaluate(*test)
    assert set(metrics["per_class"]) == {"neg", "pos"}
    assert np.array(metrics["confusion_matrix"]).sum() == len(test[0])
    assert metrics["majority_baseline"]["accuracy"] == 0.5


def test_out_directory_is_refused_unless_overwrite(tmp_path, toy_data):
    train, _ = toy_data
    model = _fit(train, epochs=1)
    model.save(tmp_path / "run")
    with pytest.raises(ArtifactError, match="already holds a transferkit run.*--overwrite"):
        model.save(tmp_path / "run")
    model.save(tmp_path / "run", overwrite=True)
    assert tk.load(tmp_path / "run").predict(["good"]) == model.predict(["good"])
