"""strategy="auto"'s choice between two trained candidates: paired accuracy difference, then log loss."""

from __future__ import annotations

import numpy as np

from transferkit.strategies.auto_choice import Candidate, auto_val_fraction, challenger_wins, paired_difference


def candidate(name: str, right: list[int], log_loss: float) -> Candidate:
    correct = np.asarray(right, dtype=np.float64)
    return Candidate(name, float(correct.mean()), correct, log_loss)


def test_validation_share_reaches_200_rows_within_a_quarter():
    assert auto_val_fraction(0.1, 1000) == 0.2  # 200 rows
    assert auto_val_fraction(0.1, 300) == 0.25  # capped: a quarter
    assert auto_val_fraction(0.1, 5000) == 0.1  # 500 rows already
    assert auto_val_fraction(0.4, 1000) == 0.4  # a larger configured share is kept
    assert auto_val_fraction(0.0, 1000) == 0.0  # no validation asked for: none made up


def test_paired_difference_counts_only_rows_where_the_candidates_disagree():
    kept = candidate("probe", [1] * 80 + [0] * 20, 0.5)
    challenger = candidate("lora", [1] * 90 + [0] * 10, 0.5)  # right on the same 80 rows plus 10 more
    diff, se = paired_difference(challenger, kept)
    assert np.isclose(diff, 0.1)
    assert np.isclose(se, np.std([1] * 10 + [0] * 90, ddof=1) / 10)


def test_a_lead_beyond_the_noise_wins_even_with_worse_log_loss():
    kept = candidate("probe", [1] * 80 + [0] * 20, 0.3)
    challenger = candidate("lora", [1] * 90 + [0] * 10, 0.9)
    wins, why = challenger_wins(challenger, kept, "accuracy")
    assert wins and why.startswith("lora kept:") and "exceeds the noise" in why


def test_a_lag_beyond_the_noise_loses_even_with_better_log_loss():
    kept = candidate("probe", [1] * 90 + [0] * 10, 0.9)
    challenger = candidate("lora", [1] * 80 + [0] * 20, 0.1)
    wins, why = challenger_wins(challenger, kept, "accuracy")
    assert not wins and "trails beyond the noise" in why


def test_within_the_noise_the_lower_log_loss_decides():
    # Two candidates that disagree on 5 rows, 3-2: a 1-point lead on 100 rows is within one paired SE (2.2 points).
    kept = candidate("lp-ft", [1] * 80 + [1, 1, 0, 0, 0] + [0] * 15, 0.40)
    better_calibrated = candidate("lora", [1] * 80 + [0, 0, 1, 1, 1] + [0] * 15, 0.35)
    diff, se = paired_difference(better_calibrated, kept)
    assert 0 < diff <= se
    wins, why = challenger_wins(better_calibrated, kept, "accuracy")
    assert wins and "within the noise" in why and "lower log loss" in why
    worse_calibrated = candidate("lora", [1] * 80 + [0, 0, 1, 1, 1] + [0] * 15, 0.45)
    assert not challenger_wins(worse_calibrated, kept, "accuracy")[0]


def test_other_metrics_keep_strictly_higher_score():
    kept, challenger = Candidate("probe", 0.70), Candidate("full", 0.71)
    assert challenger_wins(challenger, kept, "macro_f1")[0]
    assert not challenger_wins(Candidate("full", 0.70), kept, "macro_f1")[0]
    assert not challenger_wins(Candidate("full", None), kept, "macro_f1")[0]
    assert challenger_wins(challenger, Candidate("probe", None), "macro_f1")[0]


def test_evidence_from_probabilities():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    c = Candidate.from_probabilities("probe", 2 / 3, probs, np.array([0, 1, 1]))
    assert c.correct.tolist() == [1.0, 1.0, 0.0]
    assert np.isclose(c.log_loss, -np.mean(np.log([0.9, 0.8, 0.4])))
    assert c.record() == {"val_score": 2 / 3, "val_log_loss": round(c.log_loss, 6)}
