"""Hyperparameter tuning: Optuna studies over each strategy's options (`transferkit tune`).

Importing this package does not import Optuna; `tune` does, when it runs.
"""

from transferkit.tuning.result import TuneResult
from transferkit.tuning.spaces import SPACES, Param
from transferkit.tuning.study import tune

__all__ = ["SPACES", "Param", "TuneResult", "tune"]
