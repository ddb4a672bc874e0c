"""Strategy registry: one line per strategy."""

from __future__ import annotations

from transferkit.registry import Registry
from transferkit.strategies.contrastive import ContrastiveStrategy
from transferkit.strategies.freeze import FreezeStrategy
from transferkit.strategies.full import FullStrategy
from transferkit.strategies.lora import LoraStrategy
from transferkit.strategies.lp_ft import LPFTStrategy
from transferkit.strategies.probe import ProbeStrategy

STRATEGIES: Registry = Registry("strategy")
STRATEGIES.register("probe", "backbone frozen, features computed once and cached on disk; only the head trains")(
    ProbeStrategy
)
STRATEGIES.register("freeze", "the last N backbone blocks (--trainable-blocks) and the head train")(FreezeStrategy)
STRATEGIES.register("lora", "low-rank adapters (peft) on attention layers + the head; optional merge at save")(
    LoraStrategy
)
STRATEGIES.register("full", "all weights train (backbone at a lower learning rate than the head)")(FullStrategy)
STRATEGIES.register("lp-ft", "probe first (from the cache), then full fine-tuning from the probed head")(LPFTStrategy)
STRATEGIES.register(
    "contrastive",
    "few-shot, SetFit-style: the backbone adapts to same/different-class pairs (LoRA), then a head trains on it",
)(ContrastiveStrategy)


def build_strategy(name: str):
    return STRATEGIES.get(name)()
