"""One writer per run directory: `fit --out DIR` holds an exclusive lock on `.DIR.lock` beside DIR.

The lock file sits beside the run directory, not inside it, because the directory itself is swapped for the
finished artifact at the end (export/atomic.py). The lock is an `fcntl.flock`, which the kernel drops when its
holder exits however it exits, so a killed run never blocks the next one; the file holds the holder's pid, host
and start time, so a refused second run can say who holds it. The holder removes the file when done.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from transferkit.errors import RunLockedError
from transferkit.export.atomic import disk_errors, make_dirs


def lock_path(out: str | Path) -> Path:
    out = Path(out).absolute()
    return out.parent / f".{out.name}.lock"


def _holder(fd: int) -> str:
    """Who holds the lock, from what it wrote into the file (it may not have written yet)."""
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        info = json.loads(os.read(fd, 4096).decode("utf-8"))
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (ValueError, KeyError, TypeError):
        return "a process that is just starting"


def _acquire(path: Path) -> int:
    """An open descriptor of `path` holding its exclusive lock; RunLockedError when another process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            out = path.with_name(path.name[1 : -len(".lock")])
            raise RunLockedError(
                f"{str(out)!r} is being written by another `transferkit fit` ({holder}; lock file {path}). Wait for "
                "it to finish, or choose another --out."
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # its holder removed the file between our open and flock: lock the new one


@contextmanager
def run_lock(out: str | Path) -> Iterator[Path]:
    """Hold the lock of run directory `out` for the block; yields the lock file's path."""
    from transferkit.export.manifest import now_iso

    path = lock_path(out)
    make_dirs(path.parent)
    with disk_errors(path):
        fd = _acquire(path)
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": now_iso()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
        yield path
    finally:
        with suppress(OSError):
            path.unlink()  # while still locked: a waiting process then locks a fresh file (see _acquire)
        os.close(fd)
