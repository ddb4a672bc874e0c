"""k-fold linear-probe score of frozen features: what a trained linear head actually reaches on them.

Classification: multinomial logistic regression (L-BFGS, L2), scored by accuracy. Multi-label: one logistic
output per label, micro-F1 at 0.5. Regression: ridge regression in closed form, scored by R². Features are
standardised with each training fold's statistics; folds are stratified for classification and seeded.
"""

from __future__ import annotations

import numpy as np
import torch

L2 = 1e-3  # weight penalty (on standardised features): mild, the probe should fit, not memorise
LBFGS_STEPS = 100


def fold_ids(targets: np.ndarray, task: str, folds: int, seed: int) -> np.ndarray:
    """Fold number per example: round-robin within each class after a seeded shuffle (classification)."""
    rng = np.random.default_rng(seed)
    ids = np.empty(len(targets), dtype=np.int64)
    groups = (
        [np.flatnonzero(targets == c) for c in np.unique(targets)]
        if task == "classification"
        else [np.arange(len(targets))]
    )
    offset = 0
    for members in groups:
        members = rng.permutation(members)
        ids[members] = (np.arange(len(members)) + offset) % folds
        offset += len(members)
    return ids


def _logistic(x: torch.Tensor, y: torch.Tensor, outputs: int, multilabel: bool) -> torch.nn.Linear:
    torch.manual_seed(0)
    head = torch.nn.Linear(x.shape[1], outputs)
    loss_fn = torch.nn.BCEWithLogitsLoss() if multilabel else torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=LBFGS_STEPS, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = loss_fn(head(x), y) + L2 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return head


def _score_fold(train_x, train_y, test_x, test_y, task: str) -> float:
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    if task == "regression":
        gram = train_x.T @ train_x + L2 * len(train_x) * np.eye(train_x.shape[1])
        weights = np.linalg.solve(gram, train_x.T @ (train_y - train_y.mean()))
        predicted = test_x @ weights + train_y.mean()
        total = ((test_y - test_y.mean()) ** 2).sum()
        return float(1.0 - ((test_y - predicted) ** 2).sum() / total) if total > 0 else 0.0
    x, t = torch.tensor(train_x, dtype=torch.float32), torch.tensor(test_x, dtype=torch.float32)
    if task == "multilabel":
        head = _logistic(x, torch.tensor(train_y, dtype=torch.float32), train_y.shape[1], multilabel=True)
        with torch.no_grad():
            predicted = (head(t) > 0).numpy()
        truth = test_y > 0.5
        tp, fp, fn = (predicted & truth).sum(), (predicted & ~truth).sum(), (~predicted & truth).sum()
        return float(2 * tp / max(2 * tp + fp + fn, 1))
    classes = int(max(train_y.max(), test_y.max())) + 1
    head = _logistic(x, torch.tensor(train_y, dtype=torch.long), classes, multilabel=False)
    with torch.no_grad():
        return float((head(t).argmax(1).numpy() == test_y).mean())


def kfold_probe_score(
    features: np.ndarray, targets: np.ndarray, task: str = "classification", folds: int = 5, seed: int = 0
) -> tuple[float, float]:
    """(mean, std) over folds of the probe's score: accuracy, micro-F1 (multilabel) or R² (regression)."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(targets)
    ids = fold_ids(y if task == "classification" else np.zeros(len(y)), task, folds, seed)
    scores = []
    for k in range(folds):
        test = ids == k
        if test.all() or not test.any():
            continue
        scores.append(_score_fold(x[~test], y[~test], x[test], y[test], task))
    return float(np.mean(scores)), float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0
