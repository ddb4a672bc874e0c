"""TransferModel: a pretrained backbone with a new head, the module that trains and predicts."""

from __future__ import annotations

from torch import nn


class TransferModel(nn.Module):
    """backbone (pretrained, pooled features [B, D]) -> head (new, [B, num_classes])."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, batch):
        return self.head(self.backbone.forward_features(batch))


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return trainable, total
