"""Strategy registry: one line per strategy."""

from __future__ import annotations

from transferkit.registry import Registry
from transferkit.strategies.full import FullStrategy
from transferkit.strategies.probe import ProbeStrategy

STRATEGIES: Registry = Registry("strategy")
STRATEGIES.register("full", "all weights train (backbone at a lower learning rate than the head)")(FullStrategy)
STRATEGIES.register("probe", "backbone frozen, features computed once; only the head trains")(ProbeStrategy)


def build_strategy(name: str):
    return STRATEGIES.get(name)()
