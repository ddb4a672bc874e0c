"""Data-parallel runs on PyTorch distributed: which process this is, how a batch is shared, how results merge.

transferkit runs the same program in every process (`--nproc N`, `torchrun`, `accelerate launch`); the training
loop wraps the module in DDP through accelerate. What this module adds:

- `piece_of`: each global batch (the one a single process would train) is cut into one contiguous piece per
  process. Each piece's mean loss is weighted by n_r * N / n, so DDP's averaged gradient is the one-process
  gradient exactly, whatever the batch size (no padding, no repeated rows, no dropped remainder). A process whose
  piece is empty (a last batch smaller than N) trains one row with weight 0, because every DDP process must run
  backward.
- `all_ranks()`: inside it, batched inference (validation, feature extraction, prediction) is split by batch across
  the processes and gathered in row order, so each row is computed and counted once. Code that only rank 0 runs
  (writing the artifact, the report) stays outside it.
- Only rank 0 logs and writes files (`is_main`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

_SPLIT = False  # set by all_ranks(): every process runs the same inference calls in the same order


def world() -> tuple[int, int]:
    """(this process's rank, number of processes); (0, 1) outside a distributed run."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return world()[0] == 0


def launched() -> bool:
    """Started by torchrun / accelerate launch / --nproc with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env() -> None:
    """Join the process group that the launcher describes (env://), gloo on CPU, NCCL on GPUs; no-op alone."""
    import torch
    import torch.distributed as dist

    if not launched() or dist.is_initialized():
        return
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")


@contextlib.contextmanager
def all_ranks() -> Iterator[None]:
    """Inside: batched inference is shared between the processes (see the module docstring)."""
    global _SPLIT
    before, _SPLIT = _SPLIT, world()[1] > 1
    try:
        yield
    finally:
        _SPLIT = before


def splitting() -> bool:
    return _SPLIT and world()[1] > 1


def piece_of(indices: Sequence[int], rank: int, size: int) -> tuple[list[int], float]:
    """This process's contiguous piece of one global batch, and the weight of its mean loss (n_r * N / n).
    An empty piece is the batch's first row with weight 0."""
    n = len(indices)
    start, stop = rank * n // size, (rank + 1) * n // size
    piece = list(indices[start:stop])
    if not piece:
        return [indices[0]], 0.0
    return piece, len(piece) * size / n


class RankPieces:
    """A batch sampler yielding this process's piece of each global batch of `batches` (LengthGroupedBatches);
    the loop weighs each piece's loss with `piece_of`'s weight for the same batch."""

    def __init__(self, batches, rank: int, size: int) -> None:
        self.batches, self.rank, self.size = batches, rank, size

    def set_epoch(self, epoch: int) -> None:
        self.batches.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        for indices in self.batches:
            yield piece_of(indices, self.rank, self.size)[0]


def my_batches(batches: list[list[int]], lockstep: bool = False) -> list[tuple[list[int], bool]]:
    """(batch, keep) for the inference batches this process computes: every N-th when splitting, else all.

    `lockstep` (a sharded model: every forward is a collective) gives every process the same number of forward
    passes: the ones short of a batch repeat one and drop its rows (keep=False)."""
    if not splitting():
        return [(b, True) for b in batches]
    rank, size = world()
    mine = [(b, True) for b in batches[rank::size]]
    if lockstep and batches:
        rounds = -(-len(batches) // size)
        mine += [(batches[0], False)] * (rounds - len(mine))
    return mine


def gather_rows(rows: dict[int, Any]) -> dict[int, Any]:
    """Every process's {row index: output}, merged (when splitting; else `rows` as given)."""
    if not splitting():
        return rows
    import torch.distributed as dist

    parts: list[Any] = [None] * world()[1]
    dist.all_gather_object(parts, rows)
    merged: dict[int, Any] = {}
    for part in parts:
        merged.update(part)
    return merged


def agree_on_rows(rows: list[int]) -> list[int]:
    """The union of every process's `rows` (sorted), when splitting: work that all processes must do together."""
    if not splitting():
        return rows
    import torch.distributed as dist

    parts: list[Any] = [None] * world()[1]
    dist.all_gather_object(parts, rows)
    return sorted(set().union(*parts))


def sum_across(*values: float) -> list[float]:
    """The sums of `values` over all processes (training-loss totals); the values themselves alone."""
    rank, size = world()
    if size == 1:
        return list(values)
    import torch
    import torch.distributed as dist

    total = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(total)
    return total.tolist()


def barrier() -> None:
    if world()[1] > 1:
        import torch.distributed as dist

        dist.barrier()


def plain(module: Any) -> Any:
    """The module inside a DDP wrapper (inference needs no gradient sync, and may run unevenly across ranks)."""
    return getattr(module, "module", module) if type(module).__name__ == "DistributedDataParallel" else module
