"""Text-generation metrics: SQuAD EM/F1, ROUGE-L, sacrebleu chrF/BLEU, bootstrap intervals, markdown table."""

from __future__ import annotations

import pytest

from transferkit.errors import TransferkitError
from transferkit.generation.metrics import (
    bootstrap_interval,
    corpus_bleu,
    corpus_chrf,
    exact_match,
    format_generation_table,
    generation_metrics,
    normalize_answer,
    rouge_l,
    token_f1,
)


def test_normalize_answer_follows_squad():
    assert normalize_answer("  The Cat, sat on A mat!  ") == "cat sat on mat"
    assert normalize_answer("an apple") == "apple"
    # Articles are removed only as whole words.
    assert normalize_answer("Theory and anthem") == "theory and anthem"


def test_exact_match_ignores_case_punctuation_and_articles():
    assert exact_match("The Cat", "cat") == 1.0
    assert exact_match("Paris.", "paris") == 1.0
    assert exact_match("cat", "dog") == 0.0
    assert exact_match("black cat", "cat") == 0.0


def test_token_f1_partial_overlap_matches_hand_computation():
    # Normalised: "cat sat on mat" (4 tokens) vs "cat sat" (2 tokens): overlap 2, P=1/2, R=1 -> F1=2/3.
    assert token_f1("the cat sat on the mat", "a cat sat") == pytest.approx(2 / 3)
    # Repeated tokens count only as often as they occur in both: overlap 1, P=1/3, R=1 -> F1=1/2.
    assert token_f1("cat cat cat", "cat") == pytest.approx(0.5)
    assert token_f1("New York City", "new york city") == 1.0
    assert token_f1("dog", "cat") == 0.0


def test_token_f1_empty_answers():
    assert token_f1("", "") == 1.0
    assert token_f1("the", "") == 1.0  # normalises to empty on both sides
    assert token_f1("", "cat") == 0.0
    assert token_f1("cat", "") == 0.0


def test_rouge_l_matches_hand_computed_lcs():
    # LCS of "a b c d" and "a c e" is "a c" (2): P=2/4, R=2/3 -> F=4/7.
    assert rouge_l("a b c d", "a c e") == pytest.approx(4 / 7)
    # LCS "the cat on the mat" (5 of 6 tokens each side) -> P=R=F=5/6; case and punctuation are ignored.
    assert rouge_l("The cat sat on the mat.", "the cat is on the mat") == pytest.approx(5 / 6)
    assert rouge_l("x y z", "x y z") == 1.0
    assert rouge_l("x y z", "p q") == 0.0
    assert rouge_l("", "") == 1.0
    assert rouge_l("", "cat") == 0.0


def test_rouge_l_rewards_order():
    assert rouge_l("a b c d", "a b c d") > rouge_l("d c b a", "a b c d")
    assert rouge_l("d c b a", "a b c d") == pytest.approx(0.25)  # LCS is a single token


def test_chrf_and_bleu_identical_and_disjoint():
    texts = ["the quick brown fox jumps over the lazy dog", "a stitch in time saves nine"]
    assert corpus_chrf(texts, texts) == pytest.approx(100.0)
    assert corpus_bleu(texts, texts) == pytest.approx(100.0)
    disjoint = ["xyz qqq vvv www", "kkk jjj"]
    assert corpus_chrf(disjoint, texts) < 5.0
    assert corpus_bleu(disjoint, texts) < 1.0


def test_generation_metrics_keys_ranges_and_rounding():
    predictions = ["The Cat", "new york", "completely wrong answer here"]
    references = ["cat", "New York City", "paris"]
    result = generation_metrics(predictions, references)
    assert set(result) == {"n", "exact_match", "token_f1", "rouge_l", "chrf", "bleu"}
    assert result["n"] == 3
    assert result["exact_match"] == round(1 / 3, 4)
    # Per-example F1: 1, 0.8 (P=1, R=2/3), 0 -> mean 0.6.
    assert result["token_f1"] == pytest.approx(0.6)
    # ROUGE-L keeps "the": "the cat" vs "cat" -> 2/3; 0.8; 0 -> mean 22/45.
    assert result["rouge_l"] == round((2 / 3 + 0.8) / 3, 4)
    assert 0.0 <= result["chrf"] <= 100.0
    assert 0.0 <= result["bleu"] <= 100.0
    assert result["chrf"] == round(corpus_chrf(predictions, references), 2)


def test_generation_metrics_empty_and_mismatched():
    assert generation_metrics([], []) == {
        "n": 0,
        "exact_match": 0.0,
        "token_f1": 0.0,
        "rouge_l": 0.0,
        "chrf": 0.0,
        "bleu": 0.0,
    }
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        generation_metrics(["a", "b"], ["a"])
    with pytest.raises(TransferkitError):
        generation_metrics(["a"], [])


def test_bootstrap_interval_contains_mean_and_narrows_with_more_data():
    small = [0.0, 1.0] * 10
    large = [0.0, 1.0] * 500
    low_s, high_s = bootstrap_interval(small)
    low_l, high_l = bootstrap_interval(large)
    assert low_s <= 0.5 <= high_s
    assert low_l <= 0.5 <= high_l
    assert high_l - low_l < (high_s - low_s) / 3  # width shrinks roughly like 1/sqrt(n)
    assert bootstrap_interval(small, seed=1) == bootstrap_interval(small, seed=1)


def test_bootstrap_interval_level_and_degenerate_cases():
    scores = [0.1, 0.4, 0.9, 0.3, 0.7, 0.2, 0.8, 0.5]
    low90, high90 = bootstrap_interval(scores, level=0.90)
    low99, high99 = bootstrap_interval(scores, level=0.99)
    assert low99 <= low90 <= high90 <= high99
    assert bootstrap_interval([0.7, 0.7, 0.7]) == pytest.approx((0.7, 0.7))
    with pytest.raises(ValueError):
        bootstrap_interval([])
    with pytest.raises(ValueError):
        bootstrap_interval(scores, level=1.5)


def test_format_generation_table_numbers_and_missing_perplexity():
    table = format_generation_table(
        {
            "base": {"exact_match": 0.1234, "token_f1": 0.5, "rouge_l": 0.45678, "chrf": 41.26, "bleu": 12.34},
            "fine-tuned": {
                "exact_match": 0.6,
                "token_f1": 0.75,
                "rouge_l": 0.7,
                "chrf": 63.05,
                "bleu": 30.0,
                "perplexity": 5.4321,
            },
        }
    )
    lines = table.splitlines()
    assert lines[0] == "| model | exact_match | token_f1 | rouge_l | chrf | bleu | perplexity |"
    assert lines[1].startswith("|---|")
    assert lines[2] == "| base | 0.123 | 0.500 | 0.457 | 41.3 | 12.3 | - |"
    assert lines[3] == "| fine-tuned | 0.600 | 0.750 | 0.700 | 63.0 | 30.0 | 5.43 |"


def test_format_generation_table_without_perplexity_column():
    table = format_generation_table({"base": {"exact_match": 1.0, "token_f1": 1.0, "rouge_l": 1.0, "chrf": 100.0}})
    assert "perplexity" not in table
    assert table.splitlines()[-1] == "| base | 1.000 | 1.000 | 1.000 | 100.0 | - |"
