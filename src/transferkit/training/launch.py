"""`--nproc N`: run the same `transferkit` command in N worker processes on this machine, through torchrun's own
launcher (torch.distributed's elastic agent, standalone rendezvous on 127.0.0.1), and report a worker's death
as one clear error.

Each worker gets cores/N threads, so N processes never ask for more threads than the machine has (N processes with
all cores each would fight over them). `torchrun --nproc-per-node N -m transferkit fit ...` and several machines
(`--nnodes/--node-rank/--master-addr`) use the same worker code; this is only the one-machine shortcut.
"""

from __future__ import annotations

import os
import sys
import uuid

from transferkit.errors import TransferkitError


class WorkerFailedError(TransferkitError, RuntimeError):
    """A worker process of a multi-process run died or failed."""


def strip_nproc(argv: list[str]) -> list[str]:
    """The command line without --nproc N / --nproc=N (the workers run the one-process command)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def launch(argv: list[str], nproc: int) -> int:
    """Run `python -m transferkit <argv>` in `nproc` processes; 0 when all succeed, 2 when one failed (its own
    `error:` line was printed by rank 0, or the failure is described here)."""
    import logging
    import tempfile

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    threads = max(1, (os.cpu_count() or 1) // nproc)
    os.environ["OMP_NUM_THREADS"] = str(threads)  # the workers inherit it: cores / N threads each
    for name in ("torch.distributed.elastic", "torch.distributed.launcher"):
        logging.getLogger(name).setLevel(logging.ERROR)  # the agent's own chatter; a failure is reported below
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"transferkit-{uuid.uuid4().hex[:8]}",
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",
        max_restarts=0,
        monitor_interval=0.2,
    )
    print(f"starting {nproc} worker processes ({threads} thread(s) each)", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="transferkit-errors-") as errors:
        os.environ[ERROR_DIR] = errors  # where a worker other than rank 0 leaves its error message
        try:
            elastic_launch(config, sys.executable)("-u", "-m", "transferkit", *argv)
        except ChildFailedError as exc:
            raise WorkerFailedError(describe_failure(exc, nproc, errors)) from None
        finally:
            os.environ.pop(ERROR_DIR, None)
    return 0


ERROR_DIR = "TRANSFERKIT_ERROR_DIR"


def record_worker_error(exc: Exception) -> None:
    """In a worker other than rank 0: leave the error for the launcher (or print it, when torchrun started us)."""
    rank = os.environ.get("RANK", "?")
    directory = os.environ.get(ERROR_DIR)
    if directory and os.path.isdir(directory):
        with open(os.path.join(directory, f"rank-{rank}.txt"), "w", encoding="utf-8") as handle:
            handle.write(str(exc))
    else:
        print(f"error (worker {rank}): {exc}", file=sys.stderr)


def describe_failure(exc, nproc: int, errors: str | None = None) -> str:
    """One sentence on the first worker that failed, and what to do."""
    rank, failure = min(exc.failures.items(), key=lambda item: item[1].timestamp)
    message = os.path.join(errors, f"rank-{rank}.txt") if errors else None
    if rank != 0 and message and os.path.exists(message):
        with open(message, encoding="utf-8") as handle:
            return handle.read()  # a worker's own error (rank 0 printed nothing): said as if it were rank 0's
    if failure.signal_name() not in ("", "<N/A>", None) and failure.exitcode < 0:
        how = f"was killed by {failure.signal_name()}"
    else:
        how = f"exited with code {failure.exitcode}"
        if failure.exitcode == 2:
            return f"worker {rank} of {nproc} stopped on the error above; every process was stopped."
    return (
        f"worker {rank} of {nproc} {how}, so the run was stopped in every process. Checkpoints already written in "
        "--out are kept: run the same command with --resume (with any number of processes) to continue."
    )
