"""`contrastive`: few-shot classification the SetFit way, cheaper. The backbone's embedding space adapts to pairs
of same-class / different-class examples (SetFit's cosine-similarity loss), then a head trains on the adapted
embeddings, once per example from the feature cache.

Cheaper than SetFit by construction: all pairs inside a batch from one forward pass per example (pairs.py)
rather than two passes per sampled pair; LoRA adapters on the body by default (`contrastive_body`); 8 pair epochs
by default. The head is the nearest-class-centroid classifier in cosine similarity on the adapted features
(heads.start_at_cosine_centroids; a plain linear layer), with no training: on SST-2, CR, AG News and Emotion at 8
examples per class (5 seeds) it beat the same features' trained linear head by -0.7 to +1.5 points, and
logistic regression (SetFit's head) by -0.8 to +1.7, at no cost (benchmarks/fewshot.py). `contrastive_head=
"trained"` starts a linear head at the Euclidean centroids and trains it as a probe does (head_epochs). With
validation data the body phase keeps its best epoch by nearest-centroid accuracy and stops early, and the centroid
head, set rather than trained, is scored on the validation rows as its phase's "epoch 0" (the run's validation score).
Single-label classification only: pairs need one class per example.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from transferkit.errors import ConfigError
from transferkit.strategies.base import Phase, decay_groups
from transferkit.strategies.lora import has_adapters, inject_adapters
from transferkit.strategies.probe import probe_phase

BODIES = ("lora", "full")
HEADS = ("centroids", "trained")


@dataclass
class ContrastiveOptions:
    contrastive_body: str = (
        "lora"  # `contrastive`: how the backbone adapts to the pairs: "lora" (adapters, see lora_*) or "full"
    )
    contrastive_epochs: int = (
        8  # `contrastive`: passes over the examples in the pair phase, each batch scoring all its pairs
    )
    contrastive_head: str = (
        "centroids"  # `contrastive`: "centroids" (cosine nearest-centroid, not trained) or "trained" (a probe on them)
    )
    contrastive_lr: float | None = None  # `contrastive`: pair-phase learning rate; None: lora_lr (lora body), lr (full)

    def __post_init__(self) -> None:
        if self.contrastive_body not in BODIES:
            raise ConfigError(f"contrastive_body must be one of {BODIES}, got {self.contrastive_body!r}.")
        if self.contrastive_head not in HEADS:
            raise ConfigError(f"contrastive_head must be one of {HEADS}, got {self.contrastive_head!r}.")
        if self.contrastive_epochs < 1:
            raise ConfigError(f"contrastive_epochs must be >= 1, got {self.contrastive_epochs}.")
        if self.contrastive_lr is not None and self.contrastive_lr <= 0:
            raise ConfigError(f"contrastive_lr must be > 0 (or None for the default), got {self.contrastive_lr}.")


def _pair_objective(model, batches, train):
    from transferkit.strategies.base import PhaseObjective
    from transferkit.strategies.pairs import Embedder, centroid_validator, cosine_pair_loss

    num_classes = model.head.out.out_features
    validate = centroid_validator(batches, train, num_classes)
    return PhaseObjective(Embedder(model.backbone), cosine_pair_loss, validate)


def _head_start(kind: str):
    """The head phase's init: a linear head set from the class centroids of the adapted features, in cosine
    similarity ("centroids": the whole head) or Euclidean distance ("trained": where its training starts)."""

    def init(model, features) -> None:
        import torch

        from transferkit import heads

        start = heads.start_at_cosine_centroids if kind == "centroids" else heads.start_at_centroids
        start(model.head, torch.stack(list(features.items)), torch.tensor(list(features.labels)))

    return init


class ContrastiveStrategy:
    name = "contrastive"

    @staticmethod
    def check_config(config) -> None:
        if config.task.task != "classification":
            raise ConfigError(
                f"strategy='contrastive' learns from pairs of same-class and different-class examples, so it needs "
                f"task='classification' (one label per example); got task={config.task.task!r}. For this task use "
                "probe, freeze, lora, full or lp-ft (or auto)."
            )

    def setup(self, model, config) -> None:
        if config.contrastive.contrastive_body == "lora" and not has_adapters(model.backbone):
            inject_adapters(model.backbone, config.lora)

    def phases(self, config) -> list[Phase]:
        options = config.contrastive
        lora = options.contrastive_body == "lora"
        lr = options.contrastive_lr or (config.lora.lora_lr if lora else config.train.lr)

        def prepare(model) -> None:
            for name, param in model.backbone.named_parameters():
                param.requires_grad_("lora_" in name or not lora)
            model.head.requires_grad_(False)

        def groups(model, train):
            return decay_groups(model.backbone.named_parameters(), lr, train.weight_decay)

        body = Phase("contrastive", False, options.contrastive_epochs, prepare, groups, objective=_pair_objective)
        head = replace(probe_phase(config), name="head", init=_head_start(options.contrastive_head))
        if options.contrastive_head == "centroids":  # set from the adapted features, no epoch trained
            head = replace(head, epochs=0)
        return [body, head]

    def artifact_info(self, model, config) -> dict:
        options = config.contrastive
        info = {
            "body": options.contrastive_body,
            "contrastive_epochs": options.contrastive_epochs,
            "head": options.contrastive_head,
        }
        if options.contrastive_body == "lora":
            info.update(
                lora_r=config.lora.lora_r, lora_alpha=config.lora.lora_alpha, merged=not has_adapters(model.backbone)
            )
        return info
