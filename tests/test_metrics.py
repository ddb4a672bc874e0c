import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from transferkit.evaluation.metrics import classification_metrics, format_metrics_table, majority_baseline


def test_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    ours = classification_metrics(y_true, y_pred, 3, ["a", "b", "c"])
    assert ours["accuracy"] == accuracy_score(y_true, y_pred)
    assert np.isclose(ours["macro_f1"], f1_score(y_true, y_pred, average="macro"))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred)
    assert np.allclose([ours["per_class"][k]["precision"] for k in "abc"], precision)
    assert np.allclose([ours["per_class"][k]["recall"] for k in "abc"], recall)
    assert ours["confusion_matrix"] == confusion_matrix(y_true, y_pred).tolist()
    assert "confusion" in format_metrics_table(ours)


def test_majority_baseline():
    base = majority_baseline(["a", "a", "b"], ["a", "b", "b", "b"])
    assert base["label"] == "a" and base["accuracy"] == 0.25
