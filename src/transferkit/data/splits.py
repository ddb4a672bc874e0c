"""Deterministic splits and subsamples of an ExampleSet: stratified by class for classification, a seeded random
split for multi-label and regression data (no single class to stratify on)."""

from __future__ import annotations

import random

from transferkit.data.examples import ExampleSet


def _by_class(examples: ExampleSet) -> dict:
    groups: dict = {}
    for i, label in enumerate(examples.labels or []):
        groups.setdefault(label, []).append(i)
    return groups


def stratified_split(examples: ExampleSet, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split indices into (keep, held_out) with about `fraction` of each class held out.

    Classes with fewer than 3 examples stay entirely in `keep`, so no class disappears from training.
    Multi-label and regression data: a seeded random split of the rows.
    """
    rng = random.Random(seed)
    if examples.task != "classification":
        order = list(range(len(examples)))
        rng.shuffle(order)
        n_held = min(int(round(len(order) * fraction)), max(len(order) - 2, 0))
        return sorted(order[n_held:]), sorted(order[:n_held])
    keep: list[int] = []
    held: list[int] = []
    groups = _by_class(examples)
    for label in sorted(groups, key=str):
        indices = groups[label]
        rng.shuffle(indices)
        n_held = int(round(len(indices) * fraction)) if len(indices) >= 3 else 0
        n_held = min(n_held, len(indices) - 2) if n_held else 0
        held.extend(indices[:n_held])
        keep.extend(indices[n_held:])
    return sorted(keep), sorted(held)


def stratified_subsample(examples: ExampleSet, n: int, seed: int) -> list[int]:
    """Pick about `n` indices keeping class shares (at least one example per class)."""
    if n >= len(examples):
        return list(range(len(examples)))
    keep, _ = stratified_split(examples, 1.0 - n / len(examples), seed)
    return keep
