"""Deterministic stratified splits and subsamples of an ExampleSet."""

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
    """
    rng = random.Random(seed)
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
