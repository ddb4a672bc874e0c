"""The contrastive strategy's objective: every same-class / different-class pair inside a training batch.

SetFit (Tunstall et al., 2022) samples pairs and encodes both sides of each: two forward passes per pair, 20
positive and 20 negative pairs per example by default. Here a batch of B examples is encoded once and all
B(B-1)/2 pairs in it are scored with SetFit's loss (the MSE between the pair's cosine similarity and 1 for the
same class, 0 for different classes), positives and negatives weighted equally as SetFit samples them. Every pair
of a batch is seen once per epoch, for one forward pass per example instead of two per pair.

Also here: the module whose output is the pooled embedding, and the validation used while the body adapts
(nearest class centroid of the training embeddings: what the head phase starts from).
"""

from __future__ import annotations

import torch
from torch import nn

from transferkit.config import TrainConfig
from transferkit.evaluation.metrics import classification_metrics
from transferkit.heads import class_centroids
from transferkit.training.inference import run_batched


class Embedder(nn.Module):
    """The backbone's pooled features [B, D] as the output: what a pair loss compares."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, batch):
        return self.backbone.forward_features(batch)


def pair_targets(labels: torch.Tensor, other: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(target, weight), both [len(labels), len(other)]: target 1 where the two examples share a class, else 0.

    `other=None`: the pairs within `labels`, each unordered pair once (upper triangle) and no example with itself.
    Weights sum to 1, half on the positive pairs and half on the negative ones (all on one kind when the batch has
    only that kind, zero when it has no pair at all), so a batch of many classes is not all negatives."""
    right = labels if other is None else other
    same = labels[:, None] == right[None, :]
    valid = torch.ones_like(same)
    if other is None:
        valid = valid.triu(diagonal=1)
    positive, negative = (same & valid).float(), (~same & valid).float()
    weight = positive / positive.sum().clamp(min=1) + negative / negative.sum().clamp(min=1)
    total = weight.sum()
    return same.float(), weight / total if total > 0 else weight


def cosine_pair_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, others: torch.Tensor | None = None, other_labels=None
) -> torch.Tensor:
    """SetFit's CosineSimilarityLoss over all pairs of a batch (or between two sets): the weighted mean squared
    difference between each pair's cosine similarity and its target (see `pair_targets`)."""
    first = nn.functional.normalize(embeddings.float(), dim=-1)
    second = first if others is None else nn.functional.normalize(others.float(), dim=-1)
    target, weight = pair_targets(labels, other_labels)
    return (weight * (first @ second.T - target).square()).sum()


def centroid_validator(train_batches, train: TrainConfig, num_classes: int):
    """Validation while the body adapts: each validation row goes to the class whose training-embedding centroid
    is nearest in cosine; accuracy and macro-F1 of that, and the pair loss between validation and training rows
    (ranked by `train.metric`, then lower loss)."""

    def embed(module: nn.Module, batches, device) -> torch.Tensor:
        return run_batched(module, batches.items, batches.collate, batches.lengths, train.eval_batch_size, device)

    def validate(module: nn.Module, val, device) -> tuple[dict, tuple[float, float]]:
        module.eval()
        reference, rows = embed(module, train_batches, device), embed(module, val, device)
        reference_labels, labels = torch.tensor(list(train_batches.labels)), torch.tensor(list(val.labels))
        centroids = nn.functional.normalize(class_centroids(reference, reference_labels, num_classes), dim=-1)
        predicted = (nn.functional.normalize(rows, dim=-1) @ centroids.T).argmax(-1)
        metrics = classification_metrics(labels.tolist(), predicted.tolist(), num_classes)
        metrics["loss"] = cosine_pair_loss(rows, labels, reference, reference_labels).item()
        row = {f"val_{k}": round(metrics[k], 6) for k in ("loss", "accuracy", "macro_f1")}
        return row, (metrics[train.metric], -metrics["loss"])

    return validate
