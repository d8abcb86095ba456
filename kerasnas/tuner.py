"""Moved: the trial runner is `kerasnas.training.runner.NasTuner` (this path still works)."""

from kerasnas.morph.inherit import scaled_learning_rate as _scaled_learning_rate
from kerasnas.training.budget import budget_stop_reason, check_time_budget
from kerasnas.training.runner import INHERITED, LATENCY, PARAMS, TRAIN_TIME, NasTuner

__all__ = [
    "INHERITED",
    "LATENCY",
    "PARAMS",
    "TRAIN_TIME",
    "NasTuner",
    "_scaled_learning_rate",
    "budget_stop_reason",
    "check_time_budget",
]
