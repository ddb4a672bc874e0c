"""What transferkit.json records about a run besides weights: versions, hardware, the command."""

from __future__ import annotations

import platform
import shlex
import sys
from datetime import datetime, timezone
from importlib import metadata

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
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def command_line() -> str:
    """The command that started this process, to reproduce the run."""
    argv = list(sys.argv)
    if argv and argv[0].endswith(("transferkit", "__main__.py")):
        argv[0] = "transferkit"
    return shlex.join(argv)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
