"""Successive halving across architectures: cheap first trainings, the best go on.

Many architectures train for a few epochs (rung 0); the best `1/eta` of each
rung's finished trials go on to the next rung, continuing from their
checkpoint (not from scratch) for the epochs that rung adds; and so on up to
`max_epochs`. Promotions are asynchronous, as in ASHA (Li et al., "A System for
Massively Parallel Hyperparameter Tuning", MLSys 2020): whenever a trial is
asked for, the highest rung with a trial in its top `1/eta` not yet promoted
gives one; else the strategy proposes a new architecture for rung 0. So any
proposing strategy works unchanged, several workers never wait for a rung to
fill, and what to promote is read from the trial store alone, so a killed or
resumed search promotes exactly what an uninterrupted one would.

`Halving` composes with any proposing strategy: the strategy's oracle asks it
for a due promotion before it asks the strategy for a new architecture (as
Optuna's samplers compose). A promotion is a trial of its own with the parent's
architecture values and a `TrialPlan` whose `Promotion` names its rung, the
trial it continues and the epochs it trains (`kerasnas.plan`); the
trial's values hold the architecture alone, so it works on every space. Its
score is the rung's score.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from keras_tuner.engine import trial as trial_module

from kerasnas.plan import Promotion, TrialPlan


@dataclasses.dataclass(frozen=True)
class Halving:
    """Successive halving across the architectures a strategy proposes.

    `kn.Search(space, "evolution", halving=kn.Halving(max_epochs=9))`: each
    new architecture trains `min_epochs`; the best third (`eta=3`) of a
    rung's finished trials continue from their checkpoint to the next rung's
    total epochs: `min_epochs * eta**r` (1, 3, 9 here), the last rung
    `max_epochs`. Every rung is one trial, so `max_trials` and `time_budget`
    count them all. A promoted trial trains its extra epochs with a fresh
    optimizer and learning-rate schedule (a warm restart) from the parent's
    best-epoch weights.

    The defaults are the rule that picked the best cells in simulation on 20,001
    NAS-Bench-101 cells (`benchmarks/halving_calibration.py`, docs/benchmarks.md):
    `eta=3` from the smallest first rung, about `max_epochs / 27`, beat larger
    `eta`, later first rungs and full training of fewer cells at 10 and 30 full
    trainings' worth of epochs.

    Args:
        max_epochs: Total epochs of the last rung.
        min_epochs: Epochs of a new architecture (rung 0). Defaults to 1.
        eta: One in `eta` of a rung's finished trials is promoted. Defaults
            to 3.
    """

    max_epochs: int
    min_epochs: int = 1
    eta: int = 3

    def __post_init__(self) -> None:
        for name in ("max_epochs", "min_epochs", "eta"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Halving's {name} must be an integer >= 1. Received: {value!r}.")
        if self.eta < 2:
            raise ValueError(f"Halving's eta must be >= 2. Received: eta={self.eta}.")
        if self.min_epochs >= self.max_epochs:
            raise ValueError(
                "Halving's min_epochs must be below max_epochs, or no trial would go on. "
                f"Received: min_epochs={self.min_epochs}, max_epochs={self.max_epochs}."
            )

    @property
    def rungs(self) -> tuple[int, ...]:
        """The total epochs a trial of each rung has trained."""
        epochs, rungs = self.min_epochs, []
        while epochs < self.max_epochs:
            rungs.append(epochs)
            epochs *= self.eta
        return (*rungs, self.max_epochs)

    def to_config(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    def epochs(self, plan: TrialPlan) -> int:
        """The epochs a trial of this plan trains: its promotion's, else `min_epochs`."""
        return self.min_epochs if plan.promotion is None else plan.promotion.epochs

    def next_trial(self, oracle: Any) -> dict[str, Any] | None:
        """The `populate_space` response of the next promotion the finished trials of
        `oracle` (a `NasOracle`) call for, or None when none is due."""
        finished: dict[int, list[trial_module.Trial]] = {}
        for trial in oracle.finished_trials():
            finished.setdefault(rung(oracle.plan(trial.trial_id)), []).append(trial)
        promoted = {p.promotion.parent for p in oracle.plans.values() if p.promotion}
        sign = -1.0 if oracle.objective.direction == "max" else 1.0
        for r in range(len(self.rungs) - 2, -1, -1):
            done = finished.get(r, [])
            best = sorted(done, key=lambda t: (sign * t.score, t.trial_id))[: len(done) // self.eta]
            for trial in best:
                if trial.trial_id not in promoted:
                    extra = self.rungs[r + 1] - self.rungs[r]
                    promotion = Promotion(parent=trial.trial_id, rung=r + 1, epochs=extra)
                    return {
                        "status": trial_module.TrialStatus.RUNNING,
                        "values": dict(trial.hyperparameters.values),
                        "plan": TrialPlan(promotion=promotion),
                    }
        return None

    def note(self, plan: TrialPlan) -> str:
        """The progress line's words on a trial: its rung and total epochs."""
        r = min(rung(plan), len(self.rungs) - 1)
        return f" rung={r + 1}/{len(self.rungs)} epochs={self.rungs[r]}"

    def details(self, trial: trial_module.Trial, oracle: Any) -> dict[str, Any]:
        """`{"halving": {"rung", "epochs", "parent", "scores"}}` of a trial: its rung, total
        epochs, the trial it continued (None at rung 0) and the scores of its line, rung 0
        first."""
        plan = oracle.plan(trial.trial_id)
        line, current = [trial], plan
        while current.promotion is not None and current.promotion.parent in oracle.trials:
            parent = oracle.trials[current.promotion.parent]
            line.append(parent)
            current = oracle.plan(parent.trial_id)
        r = rung(plan)
        return {
            "halving": {
                "rung": r,
                "epochs": self.rungs[r] if r < len(self.rungs) else None,
                "parent": plan.promotion.parent if plan.promotion else None,
                "scores": [None if t.score is None else float(t.score) for t in reversed(line)],
            }
        }

    def settings(self) -> dict[str, Any]:
        """What makes a trial's score comparable: a project resumes only with the same."""
        return {"halving": self.to_config()}


def rung(plan: TrialPlan) -> int:
    """The rung of a trial's plan (0 for a new architecture)."""
    return 0 if plan.promotion is None else plan.promotion.rung
