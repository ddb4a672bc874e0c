"""How `strategy="auto"` decides between two trained candidates, and how many rows it validates on.

A few hundred validation rows make accuracy noisy: on 100 rows one candidate can lead another by 3 points on
validation and trail it on test (measured: SST-2, lp-ft 0.85 vs lora 0.82 on validation, 0.815 vs 0.845 on test).
So, for single-label classification scored by accuracy, both candidates are scored on the same rows and compared
as a paired difference:

- the challenger replaces the kept model when its accuracy lead exceeds the paired standard error of the
  difference (the per-row "right minus right" differences; rows both get right or both get wrong cancel out);
- it stays out when it trails by more than that;
- within the noise, the lower validation log loss decides: a proper scoring rule that uses every row's
  probability, not only the argmax, so it separates candidates that accuracy calls equal.

Other tasks and metrics (macro F1, multi-label, regression) keep "strictly higher validation score wins".

Without `--val`, auto holds out more than a single fit would (`auto_val_fraction`): at least `AUTO_VAL_ROWS` rows
where the data allows, at most `MAX_AUTO_VAL_FRACTION` of it, since every candidate is judged on those rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

AUTO_VAL_ROWS = 200  # rows held out to judge candidates: SE of a paired accuracy difference ~2 points at 200
MAX_AUTO_VAL_FRACTION = 0.25  # ...but never more than a quarter of the training rows


def auto_val_fraction(val_fraction: float, rows: int) -> float:
    """The validation share auto holds out of `rows` training rows: the configured one, raised to reach
    AUTO_VAL_ROWS rows, capped at MAX_AUTO_VAL_FRACTION (a larger configured share is kept as given)."""
    if val_fraction <= 0 or rows <= 0:
        return val_fraction
    return max(val_fraction, min(AUTO_VAL_ROWS / rows, MAX_AUTO_VAL_FRACTION))


@dataclass
class Candidate:
    """One trained candidate as the choice sees it: its validation score and, for classification by accuracy,
    per-row correctness and log loss on the shared validation rows."""

    strategy: str
    score: float | None
    correct: np.ndarray | None = field(default=None, repr=False)  # 1.0 where the row was predicted right
    log_loss: float | None = None

    @classmethod
    def from_probabilities(cls, strategy: str, score: float | None, probs: np.ndarray, targets: np.ndarray):
        """Per-row evidence from class probabilities [N, C] and target class indices [N]."""
        picked = np.clip(probs[np.arange(len(targets)), targets], 1e-12, 1.0)
        correct = (probs.argmax(axis=1) == targets).astype(np.float64)
        return cls(strategy, score, correct, float(-np.log(picked).mean()))

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"val_score": self.score}
        if self.log_loss is not None:
            out["val_log_loss"] = round(self.log_loss, 6)
        return out


def paired_difference(challenger: Candidate, kept: Candidate) -> tuple[float, float]:
    """(mean accuracy difference challenger - kept, its standard error) over the shared validation rows."""
    diff = challenger.correct - kept.correct
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
    return float(diff.mean()), se


def challenger_wins(challenger: Candidate, kept: Candidate, metric: str) -> tuple[bool, str]:
    """Whether `challenger` replaces `kept`, and the reason in words (see the module docstring)."""
    a, b = challenger.strategy, kept.strategy
    if challenger.score is None:
        return False, f"{a} not kept: no validation score"
    if kept.score is None:
        return True, f"{a} kept: {b} had no validation score"
    paired = challenger.correct is not None and kept.correct is not None and metric == "accuracy"
    if not paired:
        if challenger.score > kept.score:
            return True, f"{a} kept: validation {metric} {challenger.score:.4g} > {kept.score:.4g} ({b})"
        return False, f"{a} not kept: validation {metric} {challenger.score:.4g} <= {kept.score:.4g} ({b})"
    diff, se = paired_difference(challenger, kept)
    lead = f"validation accuracy {diff:+.3f} vs {b} (paired SE {se:.3f}, {len(kept.correct)} rows)"
    if diff > se:
        return True, f"{a} kept: {lead} exceeds the noise"
    if diff < -se:
        return False, f"{a} not kept: {lead} trails beyond the noise"
    if challenger.log_loss < kept.log_loss:
        return (
            True,
            f"{a} kept: {lead} is within the noise; lower log loss {challenger.log_loss:.4f} < {kept.log_loss:.4f}",
        )
    return False, f"{a} not kept: {lead} is within the noise; log loss {challenger.log_loss:.4f} >= {kept.log_loss:.4f}"
