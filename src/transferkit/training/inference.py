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


def _sharded(forward: Any) -> bool:
    from transferkit.training.sharding import is_sharded

    return is_sharded(forward)


def run_batched(
    forward: Callable[[Any], torch.Tensor],
    items: Sequence[Any],
    collate: Callable[[list[Any]], Any],
    lengths: Sequence[int],
    batch_size: int,
    device: torch.device,
    progress: str | None = None,
) -> torch.Tensor:
    """Apply `forward` to all items in length-sorted batches; rows come back in the input order.

    Inside `distributed.all_ranks()` each process computes every N-th batch and the rows are gathered."""
    from tqdm.auto import tqdm

    from transferkit.training.distributed import gather_rows, is_main, my_batches, plain

    forward = plain(forward)
    sharded = _sharded(forward)
    batches = my_batches(inference_batches(lengths, batch_size), lockstep=sharded)
    quiet = progress is None or not is_main()
    rows: dict[int, torch.Tensor] = {}
    # no_grad, not inference_mode, for a sharded model: FSDP keeps the weights it gathers for the next training step
    with torch.no_grad() if sharded else torch.inference_mode():
        for indices, keep in tqdm(batches, desc=progress, disable=True if quiet else None, leave=False, unit="batch"):
            result = forward(move(collate([items[i] for i in indices]), device)).float().cpu()
            for row, index in enumerate(indices if keep else ()):
                rows[index] = result[row]
    rows = gather_rows(rows)
    return torch.stack([rows[i] for i in range(len(items))]) if len(items) else torch.empty(0)
