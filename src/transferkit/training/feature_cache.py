"""On-disk cache of pooled backbone features, so a frozen backbone runs once per example.

One directory per backbone identity (its spec + a hash of its weights); inside, shards of
`features [n, D]` with the hash of each example's *encoded* input (token ids, pixels, ...), which also
covers the preprocessing (tokenizer, max length). Any subset or reordering of cached examples (more epochs,
a head sweep, cross-validation folds, a restart) costs no backbone time. Shards are written to a temp name
and renamed; an unreadable shard is deleted and its rows recomputed. `FeatureSource` serves a fit's head-only phases from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

DIGEST = 16  # bytes of blake2b per example


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


class FeatureCache:
    def __init__(self, root: Path, key: str) -> None:
        self.directory = Path(root) / key

    def _index(self) -> dict[bytes, torch.Tensor]:
        from safetensors.torch import load_file

        rows: dict[bytes, torch.Tensor] = {}
        for shard in sorted(self.directory.glob("shard-*.safetensors")):
            try:
                data = load_file(str(shard))
                features, digests = data["features"], data["digests"].numpy()
                if len(features) != len(digests):
                    raise ValueError("row count mismatch")
            except Exception:
                shard.unlink(missing_ok=True)  # corrupt: recompute these rows
                continue
            for digest, row in zip(digests, features):
                rows[digest.tobytes()] = row
        return rows

    def _write(self, digests: list[bytes], features: torch.Tensor) -> None:
        from safetensors.torch import save_file

        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"shard-{uuid.uuid4().hex[:12]}.safetensors"
        tmp = self.directory / f".{name}.tmp"
        digest_tensor = torch.from_numpy(np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(-1, DIGEST).copy())
        save_file({"features": features.contiguous(), "digests": digest_tensor}, str(tmp))
        os.replace(tmp, self.directory / name)

    def features(
        self, items: Sequence[Any], compute: Callable[[list[int]], torch.Tensor], digest=item_digest
    ) -> tuple[torch.Tensor, CacheStats]:
        """Features for all items: cached rows are read, the rest computed by `compute(indices)` and stored."""
        digests = [digest(item) for item in items]
        known = self._index()
        missing = sorted({digests[i]: i for i in range(len(items)) if digests[i] not in known}.values())
        if missing:
            computed = compute(missing)
            self._write([digests[i] for i in missing], computed)
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
