"""The new output layer ("head") attached to a backbone's pooled features."""

from __future__ import annotations

from torch import nn

from transferkit.config import HeadConfig


class LinearHead(nn.Module):
    """Dropout then one linear layer: the classic transfer-learning head."""

    kind = "linear"

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(in_features, num_classes)

    def forward(self, features):
        return self.out(self.dropout(features))


class MLPHead(nn.Module):
    """One hidden layer (GELU) before the output layer, for features that are not linearly separable."""

    kind = "mlp"

    def __init__(self, in_features: int, num_classes: int, hidden: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.hidden = nn.Linear(in_features, hidden)
        self.act = nn.GELU()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, num_classes)

    def forward(self, features):
        return self.out(self.dropout(self.act(self.hidden(features))))


def build_head(config: HeadConfig, in_features: int, num_classes: int) -> nn.Module:
    if config.head == "mlp":
        return MLPHead(in_features, num_classes, config.head_hidden, config.head_dropout)
    return LinearHead(in_features, num_classes, config.head_dropout)
