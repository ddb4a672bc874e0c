"""What transferkit.json records about a run besides weights: versions, hardware, the command."""

from __future__ import annotations

import hashlib
import platform
import shlex
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

PACKAGES = ("transferkit", "torch", "transformers", "accelerate", "safetensors", "tokenizers", "numpy", "pandas")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def hardware() -> dict[str, object]:
    import os

    import torch

    info: dict[str, object] = {
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    from transferkit.training.distributed import world

    if world()[1] > 1:
        info["processes"] = world()[1]  # data-parallel: torch_threads is per process
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


_COMMAND: list[str] | None = None  # set by the CLI: the transferkit command being run


def record_command(argv: list[str]) -> None:
    global _COMMAND
    _COMMAND = ["transferkit", *argv]


def command_line() -> str:
    """The command to reproduce the run: the transferkit command line, or the Python program that ran it."""
    if _COMMAND is not None:
        return shlex.join(_COMMAND)
    return shlex.join([sys.executable, *sys.argv])


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


_FILE_HASHES: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> sha256: each file hashed once per process


def file_sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _FILE_HASHES[key] = digest.hexdigest()
    return _FILE_HASHES[key]


def backbone_weights(backbone) -> list[dict[str, object]]:
    """Which pretrained weights a run started from: each weight file's path, size and SHA-256 when the backbone
    was loaded unchanged from files, else (converted, random-init or user modules) a hash of the tensors."""
    weights_id = getattr(backbone, "weights_id", None)
    if weights_id:
        files = [Path(part.rsplit(":", 2)[0]) for part in weights_id.split(";")]
        if all(f.is_file() for f in files):
            return [{"path": str(f), "bytes": f.stat().st_size, "sha256": file_sha256(f)} for f in files]
    from transferkit.training.feature_cache import weights_fingerprint

    return [{"path": None, "tensors_blake2b": weights_fingerprint(backbone)}]
