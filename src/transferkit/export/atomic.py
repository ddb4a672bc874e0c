"""The one write path: every file and run directory transferkit writes appears whole or not at all.

A file is written under a temp name beside its final name (`.NAME.tmp-<host>-<pid>-<random>`), flushed to disk
(fsync) and renamed over the final name (os.replace is atomic within a directory), then the directory entry is
synced. A run directory is written as a sibling temp directory and swapped in with two renames; a kill between
them is rolled back by `recover_directory`. A failed write removes its temp; a temp left by a killed process
(its pid is gone) is removed by the next writer of that directory (`remove_stale_temps`). Disk full, read-only
and permission errors become one DiskWriteError that names the path and the fix.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from transferkit.errors import DiskWriteError, TransferkitError

OUT_HINT = " or choose another --out"  # follows the fix: "free space or choose another --out"
DISK_ERRNOS = {  # errno -> (what happened, the fix)
    errno.ENOSPC: ("No space left on device", "free space"),
    errno.EDQUOT: ("Disk quota exceeded", "free space"),
    errno.EROFS: ("Read-only file system", "make it writable"),
    errno.EACCES: ("Permission denied", "make it writable"),
    errno.EPERM: ("Operation not permitted", "make it writable"),
}
# Libraries that write files themselves (torch.save, safetensors) may report the failure in words only.
_WORDS = {
    "no space left on device": errno.ENOSPC,
    "os error 28": errno.ENOSPC,
    "read-only file system": errno.EROFS,
    "permission denied": errno.EACCES,
}
_HOST = hashlib.blake2b(socket.gethostname().encode(), digest_size=3).hexdigest()  # temps of another host: kept
_TEMP = re.compile(r"^\..+\.(tmp|old)-([0-9a-f]{6})-(\d+)-[0-9a-f]{8}$")


def temp_path(final: Path, kind: str = "tmp") -> Path:
    """A hidden name beside `final` that says whose it is (host, pid), so a killed writer's leftovers are known."""
    final = Path(final)
    return final.with_name(f".{final.name}.{kind}-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _disk_errno(exc: BaseException) -> int | None:
    """The disk-full / read-only / permission errno behind `exc` (its causes included), else None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
            return exc.errno
        text = str(exc).lower()
        for words, number in _WORDS.items():
            if words in text:
                return number
        exc = exc.__cause__ or exc.__context__
    return None


def as_disk_error(exc: BaseException, path: Path, hint: str = OUT_HINT) -> DiskWriteError | None:
    """The DiskWriteError for `exc` ("No space left on device while writing PATH; free space or choose another
    --out.", `hint` being what follows the fix), or None when `exc` is no disk problem."""
    number = _disk_errno(exc)
    if number is None:
        return None
    what, fix = DISK_ERRNOS[number]
    return DiskWriteError(number, f"{what} while writing {path}; {fix}{hint}.", str(path))


@contextmanager
def disk_errors(path: Path, hint: str = OUT_HINT) -> Iterator[None]:
    """Turn a disk-full / read-only / permission failure inside the block into DiskWriteError naming `path`."""
    try:
        yield
    except TransferkitError:  # already says what went wrong (e.g. an input file the block was reading)
        raise
    except Exception as exc:
        if isinstance(exc, OSError) and exc.filename and not _beside(Path(str(exc.filename)), Path(path)):
            raise  # about a file elsewhere (an input being read), not what is being written
        converted = as_disk_error(exc, path, hint)
        if converted is None:
            raise
        raise converted from exc


def _beside(name: Path, target: Path) -> bool:
    """Whether `name` lies in the directory that receives `target` (its temp files, or inside a run directory)."""
    home = target.absolute().parent
    return home == name.absolute() or home in name.absolute().parents


def _fsync(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems cannot sync a directory; the rename itself is still atomic
        if not directory or exc.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)


def commit(tmp: Path, final: Path) -> None:
    """Make the finished temp file `tmp` the file `final`: synced, renamed, the directory entry synced."""
    _fsync(tmp)
    os.replace(tmp, final)
    _fsync(final.parent, directory=True)


@contextmanager
def writing(final: str | Path, hint: str = OUT_HINT) -> Iterator[Path]:
    """A temp path beside `final` for the block to write; on success it becomes `final`, on failure it is removed."""
    final = Path(final)
    tmp = temp_path(final)
    with disk_errors(final, hint):
        try:
            yield tmp
            commit(tmp, final)
        finally:
            with suppress(OSError):
                tmp.unlink(missing_ok=True)


def write_bytes(final: str | Path, data: bytes | str, hint: str = OUT_HINT) -> None:
    """Write `data` (str: UTF-8) to `final` atomically."""
    with writing(final, hint) as tmp, open(tmp, "wb") as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)


def make_dirs(directory: str | Path, hint: str = OUT_HINT) -> Path:
    directory = Path(directory)
    with disk_errors(directory, hint):
        directory.mkdir(parents=True, exist_ok=True)
    return directory


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _leftovers(directory: Path, kind: str, name: str | None = None) -> list[Path]:
    """Temps of `kind` in `directory` (of the entry `name`, when given) whose writer on this host is dead."""
    found = []
    for entry in directory.iterdir() if directory.is_dir() else ():
        match = _TEMP.match(entry.name)
        if not match or match.group(1) != kind or match.group(2) != _HOST or int(match.group(3)) == os.getpid():
            continue
        if name is not None and not entry.name.startswith(f".{name}.{kind}-"):
            continue
        if not _alive(int(match.group(3))):
            found.append(entry)
    return found


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_stale_temps(directory: str | Path) -> int:
    """Delete temp files and directories left in `directory` by killed writers; returns how many."""
    stale = _leftovers(Path(directory), "tmp")
    for path in stale:
        _remove(path)
    return len(stale)


@contextmanager
def temp_directory(final: str | Path, hint: str = OUT_HINT) -> Iterator[Path]:
    """A new temp directory beside `final` for the block to fill; removed if the block fails."""
    final = Path(final)
    make_dirs(final.parent, hint)
    tmp = temp_path(final)
    with disk_errors(final, hint):
        try:
            tmp.mkdir()
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def swap_directory(tmp: Path, final: Path, hint: str = OUT_HINT) -> None:
    """Make the finished directory `tmp` the directory `final`, replacing what was there.

    Every file is synced first. Replacing takes two renames (final -> .old, tmp -> final); a kill between them
    leaves no `final`, which `recover_directory` puts back from .old."""
    with disk_errors(final, hint):
        for root, _, files in os.walk(tmp):
            for name in files:
                _fsync(Path(root) / name)
        if not final.exists():
            os.replace(tmp, final)
            _fsync(final.parent, directory=True)
            return
        old = temp_path(final, "old")
        os.replace(final, old)
        try:
            os.replace(tmp, final)
        except BaseException:
            os.replace(old, final)  # put the previous directory back; the caller removes tmp
            raise
        _fsync(final.parent, directory=True)
    shutil.rmtree(old, ignore_errors=True)


def recover_directory(final: str | Path) -> None:
    """After a killed write of `final`: put the previous directory back if the swap stopped half-way, and remove
    the dead writer's temp and old directories."""
    final = Path(final)
    olds = sorted(_leftovers(final.parent, "old", final.name), key=lambda p: p.stat().st_mtime)
    if olds and not final.exists():
        os.replace(olds.pop(), final)  # the state before the swap began
    for path in olds + _leftovers(final.parent, "tmp", final.name):
        _remove(path)
