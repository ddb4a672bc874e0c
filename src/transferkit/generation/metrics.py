"""Text-generation metrics: compare generated strings with reference strings.

- **Exact match** (SQuAD): 1.0 when prediction and reference are equal after `normalize_answer`
  (lowercase, no punctuation, no articles, single spaces), else 0.0. Strict; good for short answers.
- **Token F1** (SQuAD): harmonic mean of precision and recall over the multiset of normalised tokens.
  Gives partial credit when an answer is close but not identical.
- **ROUGE-L**: F-measure (beta=1) built from the longest common subsequence of lowercased tokens, so it
  rewards words in the right order without requiring them to be contiguous. Common for summaries.
- **chrF** (sacrebleu): character n-gram F-score over the whole corpus, 0-100; robust to morphology and
  tokenisation, a good default for translation and free-form text.
- **BLEU** (sacrebleu): corpus-level modified n-gram precision (n=1..4) with a brevity penalty, 0-100.
  Reported for comparability with the literature; noisy on short or few outputs.

`generation_metrics` computes them all at once; `bootstrap_interval` gives a confidence interval for a
per-example mean; `format_generation_table` renders several models' metrics as a markdown table.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

from transferkit.errors import DataError
from transferkit.evaluation.intervals import bootstrap_interval  # noqa: F401  (re-exported: per-answer scores)

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)
_WORD = re.compile(r"\w+")

# Column order of the table, with decimals: chrF/BLEU are 0-100 so one decimal is already fine-grained.
_TABLE_COLUMNS: dict[str, int] = {"exact_match": 3, "token_f1": 3, "rouge_l": 3, "chrf": 1, "bleu": 1}
_PERPLEXITY_DECIMALS = 2


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lowercase, strip punctuation and the articles a/an/the, collapse whitespace."""
    lowered = text.lower()
    # Punctuation goes before articles so that "the," still counts as the article "the".
    no_punct = "".join(ch for ch in lowered if ch not in _PUNCTUATION)
    no_articles = _ARTICLES.sub(" ", no_punct)
    return " ".join(no_articles.split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalised strings are identical, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 over normalised tokens; two empty answers agree (1.0), one empty answer scores 0.0."""
    pred_tokens = normalize_answer(prediction).split()
    ref_tokens = normalize_answer(reference).split()
    if not pred_tokens or not ref_tokens:
        # SQuAD v2 convention: "no answer" is only right when the reference is also "no answer".
        return float(pred_tokens == ref_tokens)
    overlap = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


def _rouge_tokens(text: str) -> list[str]:
    """Lowercased word tokens; punctuation and whitespace both separate tokens."""
    return _WORD.findall(text.lower())


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, in O(len(a) * len(b)) time and O(len(b)) memory."""
    previous = [0] * (len(b) + 1)
    for token_a in a:
        current = [0] * (len(b) + 1)
        for j, token_b in enumerate(b, start=1):
            if token_a == token_b:
                current[j] = previous[j - 1] + 1
            else:
                current[j] = max(previous[j], current[j - 1])
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (beta=1): harmonic mean of LCS/len(prediction) and LCS/len(reference)."""
    pred_tokens = _rouge_tokens(prediction)
    ref_tokens = _rouge_tokens(reference)
    if not pred_tokens or not ref_tokens:
        return float(pred_tokens == ref_tokens)
    lcs = _lcs_length(pred_tokens, ref_tokens)
    if lcs == 0:
        return 0.0
    precision = lcs / len(pred_tokens)
    recall = lcs / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


def corpus_chrf(predictions: Sequence[str], references: Sequence[str]) -> float:
    """sacrebleu corpus chrF (0-100) with one reference per prediction."""
    from sacrebleu.metrics import CHRF  # lazy: keeps `import transferkit` fast

    return float(CHRF().corpus_score(list(predictions), [list(references)]).score)


def corpus_bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    """sacrebleu corpus BLEU (0-100) with default settings, one reference per prediction."""
    from sacrebleu.metrics import BLEU  # lazy: keeps `import transferkit` fast

    # effective_order is a sentence-level smoothing fix; corpus BLEU uses the standard definition.
    return float(BLEU().corpus_score(list(predictions), [list(references)]).score)


def _check_lengths(predictions: Sequence[str], references: Sequence[str]) -> None:
    if len(predictions) != len(references):
        raise DataError(
            f"generation_metrics got {len(predictions)} predictions but {len(references)} references; "
            "pass exactly one reference string per prediction, in the same order."
        )


def generation_metrics(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Mean EM / token F1 / ROUGE-L in [0, 1] (4 decimals) and corpus chrF / BLEU in 0-100 (2 decimals)."""
    _check_lengths(predictions, references)
    n = len(predictions)
    if n == 0:
        return {"n": 0, "exact_match": 0.0, "token_f1": 0.0, "rouge_l": 0.0, "chrf": 0.0, "bleu": 0.0}
    pairs = list(zip(predictions, references))
    return {
        "n": n,
        "exact_match": round(sum(exact_match(p, r) for p, r in pairs) / n, 4),
        "token_f1": round(sum(token_f1(p, r) for p, r in pairs) / n, 4),
        "rouge_l": round(sum(rouge_l(p, r) for p, r in pairs) / n, 4),
        "chrf": round(corpus_chrf(predictions, references), 2),
        "bleu": round(corpus_bleu(predictions, references), 2),
    }


def _format_cell(value: float | None, decimals: int) -> str:
    return "-" if value is None else f"{value:.{decimals}f}"


def format_generation_table(rows: dict[str, dict[str, float]]) -> str:
    """Markdown table, one row per model; a perplexity column appears when any row has one."""
    columns = dict(_TABLE_COLUMNS)
    if any("perplexity" in metrics for metrics in rows.values()):
        columns["perplexity"] = _PERPLEXITY_DECIMALS
    header = "| model | " + " | ".join(columns) + " |"
    separator = "|---|" + "---:|" * len(columns)
    lines = [header, separator]
    for name, metrics in rows.items():
        cells = [_format_cell(metrics.get(column), decimals) for column, decimals in columns.items()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
