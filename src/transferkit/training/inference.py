"""Batched forward passes without gradients: logits for prediction, features for probing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from transferkit.training.batching import inference_batches


def move(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: move(v, device) for k, v in batch.items()}
    return batch


@torch.inference_mode()
def run_batched(
    forward: Callable[[Any], torch.Tensor],
    items: Sequence[Any],
    collate: Callable[[list[Any]], Any],
    lengths: Sequence[int],
    batch_size: int,
    device: torch.device,
    progress: str | None = None,
) -> torch.Tensor:
    """Apply `forward` to all items in length-sorted batches; rows come back in the input order."""
    from tqdm.auto import tqdm

    batches = inference_batches(lengths, batch_size)
    outputs: list[torch.Tensor | None] = [None] * len(items)
    for indices in tqdm(batches, desc=progress, disable=True if progress is None else None, leave=False, unit="batch"):
        result = forward(move(collate([items[i] for i in indices]), device)).float().cpu()
        for row, index in enumerate(indices):
            outputs[index] = result[row]
    return torch.stack(outputs) if outputs else torch.empty(0)
