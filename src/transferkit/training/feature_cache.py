"""On-disk cache of pooled backbone features, so a frozen backbone runs once per example.

One directory per backbone identity (its spec + a hash of its weights); inside, shards of
`features [n, D]` with the hash of each example's *encoded* input (token ids, pixels, ...), which also
covers the preprocessing (tokenizer, max length). Any subset or reordering of cached examples (more epochs,
a head sweep, cross-validation folds, a restart) costs no backbone time. Shards are written through
export/atomic.py (temp name, fsync, rename) and carry a SHA-256 of their tensors in their metadata: a shard that is
truncated, fails its checksum or predates checksums is deleted with a warning and its rows recomputed. A cache that
cannot be written (disk full, read-only) is a warning too: the features were computed and training goes on.
`FeatureSource` serves a fit's head-only phases from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

DIGEST = 16  # bytes of blake2b per example
SHARD_FORMAT = "2"  # 2: shards carry a checksum; shards without one (format 1) are dropped and recomputed
CACHE_HINT = ", or point TRANSFERKIT_CACHE at another disk (or train with --no-feature-cache)"


def default_cache_dir() -> Path:
    return Path(os.environ.get("TRANSFERKIT_CACHE", Path.home() / ".cache" / "transferkit")) / "features"


def weights_fingerprint(module: torch.nn.Module) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def backbone_key(backbone) -> str:
    """Spec (pooling etc.) + weights: the file identity when loaded unchanged from files, else a content hash."""
    spec = {k: v for k, v in backbone.spec().items() if k != "name"}
    blob = json.dumps(spec, sort_keys=True) + (getattr(backbone, "weights_id", None) or weights_fingerprint(backbone))
    return hashlib.blake2b(blob.encode(), digest_size=12).hexdigest()


def item_digest(item: Any) -> bytes:
    """Hash of an encoded item (token ids, a tensor); backbones with other items bring their own `item_digest`."""
    if isinstance(item, torch.Tensor):
        raw = item.detach().cpu().contiguous().numpy().tobytes()
    else:
        raw = np.asarray(item, dtype=np.int64).tobytes()
    return hashlib.blake2b(raw, digest_size=DIGEST).digest()


@dataclass
class CacheStats:
    hits: int
    computed: int
    directory: str


def _checksum(features: torch.Tensor, digests: torch.Tensor) -> str:
    sha = hashlib.sha256()
    for tensor in (features, digests):
        sha.update(str(tuple(tensor.shape)).encode())
        sha.update(tensor.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return sha.hexdigest()


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def read_shard(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(features, digests) of a shard; ValueError when it is truncated, fails its checksum or has none."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            features, digests = handle.get_tensor("features"), handle.get_tensor("digests")
    except Exception as exc:  # noqa: BLE001 - truncated or not a safetensors file at all
        raise ValueError(f"unreadable ({type(exc).__name__}: {exc})") from None
    if "sha256" not in metadata:
        raise LookupError("written before shards carried checksums")
    if len(features) != len(digests) or _checksum(features, digests) != metadata["sha256"]:
        raise ValueError("its checksum does not match its contents")
    return features, digests


class FeatureCache:
    def __init__(self, root: Path, key: str, warn: Callable[[str], None] = _warn) -> None:
        self.directory = Path(root) / key
        self.warn = warn

    def _index(self) -> dict[bytes, torch.Tensor]:
        from transferkit.export.atomic import remove_stale_temps
        from transferkit.training.distributed import is_main

        rows: dict[bytes, torch.Tensor] = {}
        if self.directory.is_dir() and is_main():  # rank 0 is the one writer: its temp files are never stale
            remove_stale_temps(self.directory)  # shards a killed run was writing
        old = 0
        for shard in sorted(self.directory.glob("shard-*.safetensors")):
            try:
                features, digests = read_shard(shard)
            except LookupError:
                old += 1
                shard.unlink(missing_ok=True)
                continue
            except ValueError as exc:
                self.warn(f"feature cache shard {shard} is corrupt ({exc}): deleted, its rows are computed again")
                shard.unlink(missing_ok=True)
                continue
            for digest, row in zip(digests.numpy(), features):
                rows[digest.tobytes()] = row
        if old:
            self.warn(f"feature cache {self.directory}: dropped {old} shard(s) from an older transferkit (no checksum)")
        return rows

    def _write(self, digests: list[bytes], features: torch.Tensor) -> None:
        from safetensors.torch import save

        from transferkit.errors import DiskWriteError
        from transferkit.export.atomic import make_dirs, write_bytes

        digest_tensor = torch.from_numpy(np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(-1, DIGEST).copy())
        features = features.contiguous()
        metadata = {"format": SHARD_FORMAT, "sha256": _checksum(features, digest_tensor)}
        data = save({"features": features, "digests": digest_tensor}, metadata=metadata)
        try:
            make_dirs(self.directory, CACHE_HINT)
            write_bytes(self.directory / f"shard-{uuid.uuid4().hex[:12]}.safetensors", data, CACHE_HINT)
        except DiskWriteError as exc:  # the features are in memory: training goes on, only the cache is lost
            self.warn(f"{exc} (the features were not cached; training goes on)")

    def features(
        self, items: Sequence[Any], compute: Callable[[list[int]], torch.Tensor], digest=item_digest
    ) -> tuple[torch.Tensor, CacheStats]:
        """Features for all items: cached rows are read, the rest computed by `compute(indices)` and stored."""
        digests = [digest(item) for item in items]
        known = self._index()
        missing = sorted({digests[i]: i for i in range(len(items)) if digests[i] not in known}.values())
        from transferkit.training.distributed import agree_on_rows, barrier, is_main, splitting

        shared = splitting()  # several processes compute the rows together (distributed.all_ranks)
        if shared:  # each read the cache itself: compute what any of them misses, so all make the same calls
            missing = agree_on_rows(missing)
        if missing:
            computed = compute(missing)
            if is_main():  # one process writes them
                self._write([digests[i] for i in missing], computed)
            if shared:
                barrier()  # the others read the cache only once it holds these rows
            known.update({digests[i]: row for i, row in zip(missing, computed)})
        stacked = torch.stack([known[d] for d in digests]) if items else torch.empty(0)
        return stacked, CacheStats(hits=len(items) - len(missing), computed=len(missing), directory=str(self.directory))


class FeatureSource:
    """Backbone features for the head-only phases: from the on-disk cache, computed at most once per example."""

    def __init__(self, config, backbone, device, log) -> None:
        self.config, self.backbone, self.device, self.log = config, backbone, device, log
        self.cache = FeatureCache(default_cache_dir(), backbone_key(backbone)) if config.train.feature_cache else None
        self.stats = {"hits": 0, "computed": 0, "directory": str(self.cache.directory) if self.cache else None}
        self._stale = False

    def invalidate(self) -> None:
        """The backbone trained: features asked for later come from a cache keyed by its new weights (hashed at the
        next use, so phases that never read features again pay nothing)."""
        self._stale = self.cache is not None

    def __call__(self, batches, what: str):
        from transferkit.training.inference import run_batched
        from transferkit.training.loop import Batches

        if self._stale:
            self.cache, self._stale = FeatureCache(default_cache_dir(), backbone_key(self.backbone)), False
            self.stats["directory"] = str(self.cache.directory)

        def compute(indices: list[int]) -> torch.Tensor:
            self.backbone.eval()
            return run_batched(
                self.backbone.forward_features,
                [batches.items[i] for i in indices],
                batches.collate,
                [batches.lengths[i] for i in indices],
                self.config.train.eval_batch_size,
                self.device,
                progress=f"features ({what})" if self.log else None,
            )

        if self.cache is None:
            features = compute(list(range(len(batches.items))))
        else:
            digest = getattr(self.backbone, "item_digest", None)
            features, stats = self.cache.features(batches.items, compute, *([digest] if digest else []))
            self.stats["hits"] += stats.hits
            self.stats["computed"] += stats.computed
        return Batches(list(features), batches.labels, torch.stack, [1] * len(features))
