"""The process tests/test_faults.py kills: runs `transferkit fit` and SIGKILLs itself at a chosen point.

`python tests/fault_child.py serve` imports transferkit and its heavy libraries once, then reads one JSON request
per line on stdin, {"argv": [...], "kill": "checkpoint", "n": 2, "log": "path", "counts": "path", "env": {...}}, and forks a
child per request (the ~10 s of imports are paid once, not 27 times). The child installs its kill point, runs
`transferkit.cli.main(argv)` and exits with its status; the server answers {"pid": PID} at the fork and
{"pid": PID, "status": S} when the child ends (S < 0: killed by signal -S). Timed kills come from the test.

Kill points are monkeypatches in the child only; the product has no hooks for them:
  forward     the nth head forward pass (the probe's steps on cached features, the fine-tuning steps, evaluation)
  checkpoint  the nth checkpoint commit: the temp file was written, is cut to half (a torn write), not renamed
  cache       the nth feature-cache shard commit (the same)
  swap-1      the first rename of the run directory swap (run directory -> .old)
  swap-2      the second rename (the new artifact -> the run directory), after the first was done
With "counts", the child writes how often each point was reached (the reference run sizes the kills with it).
Nothing here runs torch before forking, and the test sets OMP_NUM_THREADS=1, so the children start clean.
report.html is not drawn (it comes after the run is saved, and its plots cost seconds per run).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from collections import Counter
from pathlib import Path


def _die() -> None:
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _install(kill: str | None, n: int, out: Path, counts: Counter) -> None:
    """Patch os.replace and the head's forward so that the nth event of kind `kill` kills this process."""
    from transferkit import heads

    def event(kind: str) -> bool:
        counts[kind] += 1
        return kind == kill and counts[kind] == n

    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        src, dst = Path(src), Path(dst)
        if dst.suffix == ".pt" and dst.parent.name == "checkpoints":
            kind = "checkpoint"
            counts[f"checkpoint-{dst.stem}"] += 1  # per phase: the test aims at the boundary between lp-ft's two
        elif dst.name.startswith("shard-"):
            kind = "cache"
        elif src.absolute() == out:
            kind = "swap-1"
        elif dst.absolute() == out and src.name.startswith(f".{out.name}.tmp-"):
            kind = "swap-2" if counts["swap-1"] else "swap"  # "swap": a first save, nothing to move aside
        else:
            kind = "other"
        if event(kind):
            if src.is_file():
                os.truncate(src, src.stat().st_size // 2)  # what a kill mid-write leaves
            _die()
        return real_replace(src, dst, *args, **kwargs)

    os.replace = replace
    from transferkit.report import html

    html.refresh_report = lambda run_dir: None  # report.html is drawn after the run is saved: 3 s of plots a run
    for cls in (heads.LinearHead, heads.MLPHead):
        forward = cls.forward

        def wrapped(self, features, _forward=forward):
            if event("forward"):
                _die()
            return _forward(self, features)

        cls.forward = wrapped


def run(request: dict) -> int:
    from transferkit.cli import main

    log = open(request["log"], "a", buffering=1)  # noqa: SIM115 - lives as long as this process
    os.dup2(log.fileno(), 2)
    os.dup2(log.fileno(), 1)
    sys.stderr = sys.stdout = log
    os.environ.update(request.get("env", {}))
    counts: Counter = Counter()
    out = Path(request["argv"][request["argv"].index("--out") + 1]).absolute()
    _install(request.get("kill"), int(request.get("n", 0)), out, counts)
    try:
        status = main(request["argv"])
    except BaseException:  # noqa: BLE001 - the test reads the log
        traceback.print_exc()
        status = 1
    if request.get("counts"):
        Path(request["counts"]).write_text(json.dumps(counts))
    return status


def serve() -> None:
    import accelerate  # noqa: F401 - the imports every fit needs, paid once before forking
    import pandas  # noqa: F401
    import safetensors.torch  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
    from transformers import BertModel  # noqa: F401

    import transferkit.api  # noqa: F401
    import transferkit.cli  # noqa: F401
    import transferkit.training.fit  # noqa: F401
    import transferkit.training.loop  # noqa: F401

    transferkit.cli.build_parser()  # reads the config classes' source for the flags' help: once
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = run(request)
            finally:
                os._exit(code if isinstance(code, int) else 1)  # never back into the server's loop
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(json.dumps({"pid": pid, "status": code}), flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        serve()
    else:  # one run, for debugging: fault_child.py '{"argv": [...], "kill": "forward", "n": 3, "log": "x.log"}'
        sys.exit(run(json.loads(sys.argv[1])))
