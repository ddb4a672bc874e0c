"""Models converted once from the format a pip package ships (CTranslate2, GGUF) into a plain Hugging Face
directory under $TRANSFERKIT_CACHE/models (default ~/.cache/transferkit/models), then reused."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from transferkit.errors import BackboneError


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
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        convert(temp)
        try:
            temp.rename(final)
        except OSError:
            if not (final / "model.safetensors").is_file():  # not a concurrent conversion that won the race
                raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return final
