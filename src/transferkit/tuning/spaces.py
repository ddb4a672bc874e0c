"""Search spaces for `transferkit tune`: which options each strategy searches, and over which ranges.

A space is data: a mapping of option name (any `RunConfig` key) to a `Param`. Ranges are the usual ones for
fine-tuning a pretrained model (backbone learning rates near 1e-5..3e-4, far higher ones for a head or for
adapters that start from zero). An option the user passes is pinned: it is removed from the space and every
trial uses the given value, so `--epochs 3` fixes the epochs instead of bounding a search over them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transferkit.errors import ConfigError
from transferkit.registry import closest_match_hint


@dataclass(frozen=True)
class Param:
    """One searched option: a float or int range (log-uniform with `log`), or a list of `choices`."""

    kind: str  # "float", "int" or "choice"
    low: float | None = None  # float/int: smallest value tried
    high: float | None = None  # float/int: largest value tried (inclusive)
    log: bool = False  # float/int: sample uniformly in log space (learning rates, decay)
    choices: tuple[Any, ...] = ()  # choice: the values tried

    def __post_init__(self) -> None:
        if self.kind == "choice":
            if not self.choices:
                raise ConfigError("A choice parameter needs at least one value in `choices`.")
        elif self.kind in ("float", "int"):
            if self.low is None or self.high is None or self.low > self.high or (self.log and self.low <= 0):
                raise ConfigError(
                    f"A {self.kind} parameter needs low <= high (and low > 0 with log); got low={self.low}, "
                    f"high={self.high}, log={self.log}."
                )
        else:
            raise ConfigError(f"Param kind must be 'float', 'int' or 'choice'; got {self.kind!r}.")

    def suggest(self, trial, name: str) -> Any:
        """The value an Optuna trial picks for option `name`."""
        if self.kind == "choice":
            return trial.suggest_categorical(name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(name, float(self.low), float(self.high), log=self.log)

    def describe(self) -> str:
        if self.kind == "choice":
            return "{" + ", ".join(map(str, self.choices)) + "}"
        return f"{self.low:g}..{self.high:g}{' (log)' if self.log else ''}"


def _lr(low: float, high: float) -> Param:
    return Param("float", low, high, log=True)


WEIGHT_DECAY = _lr(1e-5, 1e-1)  # AdamW decay spans orders of magnitude: search it in log space
WARMUP = Param("float", 0.0, 0.2)
EPOCHS = Param("int", 2, 8)  # full passes over the data; early stopping still ends a trial sooner

FINE_TUNING = {  # freeze and full: the backbone (or its top blocks) and the head train together
    "lr": _lr(1e-5, 3e-4),
    "head_lr": _lr(1e-4, 1e-2),
    "epochs": EPOCHS,
    "weight_decay": WEIGHT_DECAY,
    "warmup_ratio": WARMUP,
}

# What each strategy searches. The head type is searched for probes only: elsewhere the linear head is kept,
# as it is the one plain transformers can load (see `head` in config.py).
SPACES: dict[str, dict[str, Param]] = {
    "probe": {
        "probe_lr": _lr(1e-4, 1e-1),
        "head_epochs": Param("int", 10, 100, log=True),
        "head": Param("choice", choices=("linear", "mlp")),
        "head_dropout": Param("float", 0.0, 0.5),
        "weight_decay": WEIGHT_DECAY,
    },
    "freeze": FINE_TUNING,
    "full": FINE_TUNING,
    "lp-ft": {  # the fine-tune phase trains the head at `lr` too, so head_lr plays no part
        "probe_lr": _lr(1e-4, 1e-1),
        "lr": _lr(1e-5, 3e-4),
        "epochs": EPOCHS,
        "weight_decay": WEIGHT_DECAY,
        "warmup_ratio": WARMUP,
    },
    "lora": {
        "lora_r": Param("choice", choices=(4, 8, 16, 32)),
        "lora_alpha": Param("choice", choices=(8, 16, 32, 64)),
        "lora_lr": _lr(1e-4, 1e-2),
        "head_lr": _lr(1e-4, 1e-2),
        "epochs": EPOCHS,
        "weight_decay": WEIGHT_DECAY,
        "warmup_ratio": WARMUP,
    },
    "contrastive": {  # the default LoRA body: lora_lr is the pair phase's rate (contrastive_lr stays None)
        "lora_lr": _lr(1e-4, 1e-2),
        "lora_r": Param("choice", choices=(4, 8, 16)),
        "contrastive_epochs": Param("int", 4, 40, log=True),
        "contrastive_head": Param("choice", choices=("centroids", "trained")),  # "trained" uses head_epochs, probe_lr
    },
}


def search_space(strategy: str, pinned: dict[str, Any], extra: dict[str, Param | None] | None = None) -> dict:
    """The strategy's space, plus or minus `extra` (None removes an option), less every option in `pinned`."""
    from transferkit.config import RunConfig

    if strategy not in SPACES:
        raise ConfigError(f"No search space for strategy {strategy!r}; tunable: {', '.join(SPACES)}.")
    space = {**SPACES[strategy], **(extra or {})}
    unknown = [name for name in space if name not in RunConfig.valid_keys()]
    if unknown:
        hints = "".join(closest_match_hint(name, RunConfig.valid_keys()) for name in unknown)
        raise ConfigError(f"Search space names unknown option(s) {unknown}.{hints}")
    space = {name: param for name, param in space.items() if param is not None}
    if not space.keys() - pinned.keys():
        raise ConfigError(
            f"Every option the {strategy!r} space searches is pinned ({', '.join(sorted(space))}): nothing is left to "
            "tune. Drop some of those options, or pass a space with others."
        )
    return {name: param for name, param in space.items() if name not in pinned}
