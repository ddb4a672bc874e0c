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


def class_centroids(embeddings, labels, num_classes: int):
    """Mean embedding of each class [num_classes, D] (zeros for a class without examples)."""
    import torch

    sums = torch.zeros(num_classes, embeddings.shape[1], dtype=embeddings.dtype).index_add_(0, labels, embeddings)
    counts = torch.bincount(labels, minlength=num_classes).clamp(min=1)
    return sums / counts[:, None].to(embeddings.dtype)


def start_at_centroids(head: nn.Module, features, labels) -> bool:
    """Set a linear head to the nearest-class-centroid classifier of `features` [N, D] with class ids `labels` [N].

    logits_c = s * (x . mu_c - |mu_c|^2 / 2) ranks classes by squared distance to their centroid mu_c (the |x|^2
    term is the same for every class). The scale s = 1 / (mean squared distance of a training row to its own
    centroid) measures distances in units of the classes' spread: a row whose squared distance to another centroid
    exceeds that to its own by four spreads gets 88%, not ~100%, so the head starts soft and its training
    (cross-entropy) still has gradients to follow. Returns False (head unchanged) for heads that cannot express it
    (mlp)."""
    import torch

    if getattr(head, "kind", None) != "linear":
        return False
    x, y = torch.as_tensor(features).float(), torch.as_tensor(labels).long()
    centroids = class_centroids(x, y, head.out.out_features)
    within = (x - centroids[y]).square().sum(-1).mean()
    total = (x - x.mean(0)).square().sum(-1).mean()
    scale = 1.0 / torch.maximum(within, 1e-2 * total).clamp(min=1e-12)  # one example per class: no within spread
    with torch.no_grad():
        head.out.weight.copy_(scale * centroids)
        head.out.bias.copy_(-scale * centroids.square().sum(-1) / 2)
    return True


def start_at_cosine_centroids(head: nn.Module, features, labels) -> bool:
    """Set a linear head to the nearest-centroid classifier in cosine similarity: weight_c = s * mu_c / (|mu_c| m),
    bias 0, where m is the training rows' mean norm. Predictions are exactly cosine-nearest-centroid (dividing a
    row's logits by its norm changes no argmax), so a plain linear layer, exportable like any other, carries it.

    The scale s sets the softmax temperature: a training row of typical norm whose cosine to its own centroid
    exceeds the best other class's by the mean such margin gets logit gap 2 (88% between two classes), so the
    probabilities stay soft rather than saturated. Returns False (head unchanged) for heads that cannot express it
    (mlp)."""
    import torch

    if getattr(head, "kind", None) != "linear":
        return False
    x, y = torch.as_tensor(features).float(), torch.as_tensor(labels).long()
    present = torch.bincount(y, minlength=head.out.out_features) > 0
    unit = nn.functional.normalize(class_centroids(x, y, head.out.out_features), dim=-1)
    cosine = nn.functional.normalize(x, dim=-1) @ unit.T
    own = cosine.gather(1, y[:, None]).squeeze(1)
    others = cosine.masked_fill(nn.functional.one_hot(y, len(unit)).bool() | ~present[None, :], float("-inf"))
    margin = (own - others.max(-1).values).clamp(min=1e-3) if present.sum() > 1 else own.new_ones(len(own))
    scale = 2.0 / margin.mean() / x.norm(dim=-1).mean().clamp(min=1e-12)
    with torch.no_grad():
        head.out.weight.copy_(scale * unit)
        head.out.bias.copy_(torch.where(present, 0.0, -1e4))  # a class with no training row is never predicted
    return True
