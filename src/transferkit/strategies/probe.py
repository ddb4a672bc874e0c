"""`probe`: the backbone is frozen and runs once per example (features cached on disk); only the head trains."""

from __future__ import annotations

from transferkit.strategies.base import Phase, StrategyDefaults, freeze_all_but_head, head_groups


def probe_phase(config) -> Phase:
    def groups(model, train):
        return head_groups(model, train, lr=train.probe_lr)

    return Phase("probe", True, config.train.head_epochs, freeze_all_but_head, groups)


class ProbeStrategy(StrategyDefaults):
    name = "probe"

    def phases(self, config) -> list[Phase]:
        return [probe_phase(config)]
