"""The Backbone contract every model source implements (after timm's forward_features/num_features)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Backbone(Protocol):
    """A pretrained network that turns raw inputs into pooled features [B, num_features].

    Implementations are `torch.nn.Module`s. `encode` turns raw inputs into per-example items once (e.g.
    token ids, unpadded); `collate` pads a list of items into a batch; `forward_features` pools.
    """

    source: str  # which adapter built it ("hf_text", ...), used to rebuild it from an artifact
    num_features: int

    def encode(self, inputs: list[Any]) -> list[Any]: ...

    def collate(self, items: list[Any]) -> dict[str, Any]: ...

    def item_length(self, item: Any) -> int: ...

    def forward_features(self, batch: dict[str, Any]) -> Any: ...

    def blocks(self) -> list[Any]: ...

    @property
    def lora_targets(self) -> list[str]: ...

    @property
    def data_config(self) -> dict[str, Any]: ...

    def spec(self) -> dict[str, Any]: ...

    def save_files(self, directory: Path) -> None: ...
