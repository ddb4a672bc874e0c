"""Models converted once from the format a pip package ships (CTranslate2, GGUF) into a plain Hugging Face
directory under $TRANSFERKIT_CACHE/models (default ~/.cache/transferkit/models), then reused."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from transferkit.errors import BackboneError
from transferkit.export import atomic


def cache_root() -> Path:
    return Path(os.environ.get("TRANSFERKIT_CACHE", Path.home() / ".cache" / "transferkit")) / "models"


def cached_conversion(source: Path, name: str, convert: Callable[[Path], None], version: int) -> Path:
    """Run `convert(out_dir)` once into cache_root()/<name>-<key> (temp dir + rename) and return that dir.

    The key hashes the source file's size and mtime and the converter `version`, so a reinstalled wheel or a
    changed converter gives a fresh conversion; the finished directory holds model.safetensors.
    """
    try:
        stat = source.stat()
    except OSError as e:
        raise BackboneError(f"Cannot read the model file {source}: {e}") from None
    key = hashlib.blake2b(f"{stat.st_size}:{stat.st_mtime_ns}:{version}".encode(), digest_size=6)
    final = cache_root() / f"{name}-{key.hexdigest()}"
    if (final / "model.safetensors").is_file():
        return final
    hint = ", or point TRANSFERKIT_CACHE at another disk"
    if final.parent.is_dir():
        atomic.remove_stale_temps(final.parent)  # conversions a killed process left half-done
    with atomic.temp_directory(final, hint) as temp:
        convert(temp)
        try:
            if not (final / "model.safetensors").is_file():  # else a concurrent conversion won the race
                os.rename(temp, final)  # never replaces a directory another process finished (and may be reading)
        except OSError:
            if not (final / "model.safetensors").is_file():
                raise
    shutil.rmtree(temp, ignore_errors=True)
    return final
