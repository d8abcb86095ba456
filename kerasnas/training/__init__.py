"""Training trials: the trial runner, input preparation, pacing and measurement.

runner.py      NasTuner, the trial runner: hands each trial and its plan to an evaluator
evaluators.py  TrainedEvaluator (the strategy's hooks, fit, measure), TableEvaluator (look-ups)
inputs.py      one input-preparation path (checks, pipelines) for fit and retrain
pacing.py      epochs within a deadline, re-planned after each epoch (fit_within)
budget.py      the search's time budget: checks, and when no trial may start
measure.py     best-epoch metrics, latency, seconds per training step
workers.py     a chief/worker worker's heartbeat and idle waits
"""

from kerasnas.training.budget import budget_stop_reason, check_time_budget
from kerasnas.training.measure import measure_step_seconds, steps_per_epoch
from kerasnas.training.pacing import EpochProgress, epochs_within, fit_within
from kerasnas.training.runner import INHERITED, LATENCY, PARAMS, TRAIN_TIME, NasTuner

__all__ = [
    "INHERITED",
    "LATENCY",
    "PARAMS",
    "TRAIN_TIME",
    "EpochProgress",
    "NasTuner",
    "budget_stop_reason",
    "check_time_budget",
    "epochs_within",
    "fit_within",
    "measure_step_seconds",
    "steps_per_epoch",
]
