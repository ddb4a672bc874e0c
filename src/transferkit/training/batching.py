"""Batches: length-grouped shuffling for training, length-sorted order for inference."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

MEGABATCH = 50  # batches per sorting window: enough to group lengths, small enough to stay random


class LengthGroupedBatches:
    """Shuffled batch indices where each batch holds examples of similar length (less padding).

    Indices are shuffled, cut into windows of MEGABATCH batches, sorted by length inside each window,
    cut into batches, and the batches are shuffled again. Deterministic for a given seed and epoch.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, group_by_length: bool = True) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.group_by_length = group_by_length
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        if self.group_by_length:
            window = self.batch_size * MEGABATCH
            order = [
                i
                for start in range(0, len(order), window)
                for i in sorted(order[start : start + window], key=lambda j: -self.lengths[j])
            ]
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        rng.shuffle(batches)
        return iter(batches)


class ItemDataset(torch.utils.data.Dataset):
    def __init__(self, items: Sequence[Any], labels: Sequence[int]) -> None:
        self.items, self.labels = items, labels

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        return self.items[index], self.labels[index]


def labelled_collate(collate: Callable[[list[Any]], Any]) -> Callable:
    """Items padded by `collate`; targets as class ids (long) or, for multi-label and regression, floats."""

    def _collate(pairs):
        items, labels = zip(*pairs)
        dtype = torch.long if isinstance(labels[0], int) else torch.float32
        return collate(list(items)), torch.tensor(labels, dtype=dtype)

    return _collate


def inference_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices sorted by length (longest first) and cut into batches; callers restore the order."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
