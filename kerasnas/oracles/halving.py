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

A promotion is a trial of its own, with the parent's decision values and
three more values (plain values, so they cross keras-tuner's chief/worker
gRPC): `halving/rung`, `halving/parent` (the trial it continues) and
`halving/epochs` (the epochs it trains). Its score is the rung's score.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from keras_tuner.engine import trial as trial_module

RUNG = "halving/rung"
PARENT = "halving/parent"
EPOCHS = "halving/epochs"
KEYS = (RUNG, PARENT, EPOCHS)


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

    def epochs(self, values: Mapping[str, Any]) -> int:
        """The epochs a trial with these values trains."""
        return int(values.get(EPOCHS, self.min_epochs))

    def promotion(
        self, trials: Mapping[str, trial_module.Trial], end_order: list[str], direction: str
    ) -> dict[str, Any] | None:
        """The values of the next promotion the finished trials call for, or None."""
        finished: dict[int, list[trial_module.Trial]] = {}
        for trial_id in end_order:
            trial = trials[trial_id]
            if trial.status == trial_module.TrialStatus.COMPLETED and trial.score is not None:
                finished.setdefault(rung(trial.hyperparameters.values), []).append(trial)
        promoted = {parent(t.hyperparameters.values) for t in trials.values()}
        sign = -1.0 if direction == "max" else 1.0
        for r in range(len(self.rungs) - 2, -1, -1):
            done = finished.get(r, [])
            best = sorted(done, key=lambda t: (sign * t.score, t.trial_id))[: len(done) // self.eta]
            for trial in best:
                if trial.trial_id not in promoted:
                    values = trial.hyperparameters.values
                    values = {k: v for k, v in values.items() if k not in KEYS}
                    extra = self.rungs[r + 1] - self.rungs[r]
                    return {**values, RUNG: r + 1, PARENT: trial.trial_id, EPOCHS: extra}
        return None

    def note(self, values: Mapping[str, Any]) -> str:
        """The progress line's words on a trial: its rung and total epochs."""
        r = min(rung(values), len(self.rungs) - 1)
        return f" rung={r + 1}/{len(self.rungs)} epochs={self.rungs[r]}"

    def details(self, trial: trial_module.Trial, trials: Mapping[str, trial_module.Trial]) -> dict:
        """`{"rung", "epochs", "parent", "scores"}` of a trial: its rung, total epochs, the
        trial it continued (None at rung 0) and the scores of its line, rung 0 first."""
        values = trial.hyperparameters.values
        line, current = [trial], trial
        while parent(current.hyperparameters.values) in trials:
            current = trials[parent(current.hyperparameters.values)]
            line.append(current)
        r = rung(values)
        return {
            "rung": r,
            "epochs": self.rungs[r] if r < len(self.rungs) else None,
            "parent": parent(values) or None,
            "scores": [None if t.score is None else float(t.score) for t in reversed(line)],
        }


def rung(values: Mapping[str, Any]) -> int:
    """The rung of a trial's values (0 for a new architecture)."""
    return int(values.get(RUNG, 0))


def parent(values: Mapping[str, Any]) -> str:
    """The trial a promotion continues from ("" for a new architecture)."""
    return str(values.get(PARENT, ""))
