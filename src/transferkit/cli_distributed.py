"""The parts of the `transferkit` command that run in several processes (`--nproc`, torchrun): who prepares the run
directory, what the workers other than rank 0 do, and how a lost peer is told apart from a real error."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

from transferkit.errors import TransferkitError


def run_command(args: argparse.Namespace) -> int:
    """The subcommand; in a worker process of predict/evaluate, with the rows shared between the processes."""
    from transferkit.training.distributed import all_ranks, init_from_env, is_main, launched

    if not launched():
        return args.func(args)
    init_from_env()
    if args.func.__name__ not in ("cmd_predict", "cmd_evaluate"):
        return args.func(args)
    if getattr(args, "protocol", None) == "kshot":
        raise TransferkitError("--protocol kshot trains many small models: run it in one process (drop --nproc).")
    with all_ranks():  # every process runs the same inference calls; rank 0 prints and writes
        return args.func(args) if is_main() else _inference_worker(args)


def _inference_worker(args: argparse.Namespace) -> int:
    """Ranks > 0 of predict/evaluate: the same inference calls as rank 0, with nothing printed or written."""
    import io
    import tempfile

    import transferkit as tk

    if args.func.__name__ == "cmd_evaluate":
        model = tk.load(args.run, trust_remote_code=getattr(args, "trust_remote_code", False))
        model.evaluate(args.data, text=getattr(args, "text_column", None), label=getattr(args, "label_column", None))
        return 0
    with tempfile.TemporaryDirectory() as scratch, contextlib.redirect_stdout(io.StringIO()):
        with contextlib.redirect_stderr(io.StringIO()):
            if args.output:  # rank 0 writes the real file
                args.output = str(Path(scratch) / Path(args.output).name)
            return args.func(args)


def add_nproc_argument(parser) -> None:
    """--nproc for the commands that run data-parallel (fit, evaluate, predict)."""
    parser.add_argument(
        "--nproc",
        type=int,
        default=1,
        metavar="N",
        help="run in N processes on this machine (PyTorch DDP, gloo on CPU / NCCL on GPUs; cores/N threads each). "
        "Same result as 1 process; for several machines use torchrun --nnodes ... -m transferkit (see README)",
    )


def release_workers(ok: bool = True) -> None:
    """Rank 0 tells the other processes (waiting in `fit_worker`) whether --out was prepared."""
    from transferkit.training.distributed import world

    if world()[1] > 1:
        import torch.distributed as dist

        dist.broadcast_object_list([ok], src=0)


def fit_worker(args: argparse.Namespace, values: dict[str, Any]) -> int:
    """Ranks > 0 of `fit`: wait until rank 0 has checked and prepared --out, train alongside it, write nothing."""
    import torch.distributed as dist

    import transferkit as tk
    from transferkit.export.artifact import CHECKPOINTS

    ready = [None]
    dist.broadcast_object_list(ready, src=0)
    if not ready[0]:
        return 2
    tk.FineTuner(**values).fit(
        args.data, val=args.val, checkpoint_dir=Path(args.out) / CHECKPOINTS, resume=args.resume, verbose=False
    )
    return 0


def lost_a_peer(exc: RuntimeError) -> bool:
    """A collective failed because another process of the run is gone (gloo / NCCL connection errors)."""
    text = str(exc)
    return type(exc).__name__ == "DistBackendError" or any(
        sign in text for sign in ("Connection closed by peer", "Connection reset by peer", "Broken pipe")
    )
