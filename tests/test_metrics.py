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


def test_balanced_weighted_log_loss_and_calibration_match_scikit_learn():
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.metrics import log_loss as sk_log_loss

    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 4, 300)
    probabilities = rng.dirichlet([1, 1, 1, 1], 300)
    y_pred = np.where(rng.random(300) < 0.6, y_true, probabilities.argmax(1))
    ours = classification_metrics(y_true, y_pred, 4, probabilities=probabilities)
    assert np.isclose(ours["balanced_accuracy"], balanced_accuracy_score(y_true, y_pred))
    assert np.isclose(ours["weighted_f1"], f1_score(y_true, y_pred, average="weighted"))
    assert np.isclose(ours["log_loss"], sk_log_loss(y_true, probabilities, labels=[0, 1, 2, 3]))
    bins = ours["calibration"]
    assert sum(b["count"] for b in bins) == 300
    gap = sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / 300
    assert np.isclose(ours["ece"], gap) and 0 <= ours["ece"] <= 1


def test_perfectly_calibrated_predictions_have_zero_calibration_error():
    y_true = np.array([0, 1, 0, 1])
    probabilities = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    assert classification_metrics(y_true, y_true, 2, probabilities=probabilities)["ece"] == 0.0


def test_bootstrap_intervals_contain_the_estimate_are_seeded_and_shrink_with_more_data():
    rng = np.random.default_rng(2)

    def scores(n):
        y_true = rng.integers(0, 3, n)
        y_pred = np.where(rng.random(n) < 0.75, y_true, rng.integers(0, 3, n))
        return y_true, y_pred, classification_metrics(y_true, y_pred, 3, intervals=True)

    y_true, y_pred, small = scores(80)
    for key in ("accuracy", "balanced_accuracy", "macro_f1"):
        low, high = small["ci95"][key]
        assert low <= small[key] <= high
    assert classification_metrics(y_true, y_pred, 3, intervals=True)["ci95"] == small["ci95"]  # same seed
    _, _, large = scores(2000)
    width = lambda m: m["ci95"]["accuracy"][1] - m["ci95"]["accuracy"][0]  # noqa: E731
    assert width(large) < width(small) / 3
    assert "95% CI" in format_metrics_table(small)


def test_worst_examples_are_the_most_confident_mistakes_first():
    from transferkit.evaluation.metrics import worst_examples

    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.05, 0.95], [0.7, 0.3]])
    y_true = [0, 0, 0, 0, 1]  # rows 1, 2, 3 and 4 are wrong; row 3 has the lowest p(true)
    rows = worst_examples(["a", "b", "c", "d", "e"], y_true, probabilities, ["neg", "pos"], "text", k=3)
    assert [r["input"] for r in rows] == ["d", "b", "e"]
    assert rows[0] == {
        "index": 3, "input": "d", "modality": "text", "label": "neg", "predicted": "pos", "confidence": 0.95,
        "p_true": 0.05,
    }  # fmt: skip
    clip = worst_examples([(np.zeros(8000), 16000)], [1], np.array([[0.8, 0.2]]), ["a", "b"], "audio")
    assert clip[0]["input"] == "<audio clip 0.50 s>"
    image = worst_examples([np.zeros((28, 28, 3))], [1], np.array([[0.8, 0.2]]), ["a", "b"], "image")
    assert image[0]["input"] == "<image array (28, 28, 3)>"
    vector = worst_examples([np.arange(10.0)], [1], np.array([[0.8, 0.2]]), ["a", "b"], "vector")
    assert vector[0]["input"].startswith("[0, 1, 2") and vector[0]["input"].endswith(", ...]")
    metrics = classification_metrics(y_true, probabilities.argmax(1), 2, ["neg", "pos"])
    metrics["worst_examples"] = rows
    assert "neg -> pos (0.95)  d" in format_metrics_table(metrics)
