"""What a strategy tells the trial runner about a trial beyond its architecture.

A trial's hyperparameter values are its architecture's decisions and nothing
else. Everything else a strategy decides about a trial is its `TrialPlan`:

* `promotion`: continue a finished trial's training from its checkpoint for
  more epochs (successive halving, `kerasnas.Halving`);
* `lineage`: grow a trained network by morphism ops (`kerasnas.morph`, see
  `kerasnas.morph.lineage`);
* `init_weights`: start from saved weights (a candidate exported from a
  one-shot supernet).

The strategy's store writes the plan to `trial_<id>/plan.json` before the trial
starts (a worker in chief/worker mode reads it there) and rebuilds its plans
from those files when a project resumes. A trial without a plan has no file.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from kerasnas._io import read_json, write_json
from kerasnas.errors import CorruptStoreError

#: The file of a trial's plan, in its folder.
FILE = "plan.json"


@dataclasses.dataclass(frozen=True)
class Promotion:
    """A trial that continues another's training (a rung of successive halving).

    Args:
        parent: The id of the finished trial whose best-epoch weights it starts from.
        rung: The rung it trains for (0 is a new architecture's first training).
        epochs: The epochs it trains on top of its parent's.
    """

    parent: str
    rung: int
    epochs: int


@dataclasses.dataclass(frozen=True)
class Lineage:
    """The morphism lineage of a trial's network: its root architecture (the trial's
    values) grown by `ops`.

    Args:
        ops: Every op string applied to the root's model, in order.
        parent: The trial whose weights the child inherits ("" for none).
        parent_ops: How many of `ops` the parent has.
        noise: Net2Net noise of the child's new ops.
        lr_scale: Factor of the parent's learning rate the child trains at
            when it inherits.
    """

    ops: tuple[str, ...] = ()
    parent: str = ""
    parent_ops: int = 0
    noise: float = 0.0
    lr_scale: float = 1.0

    def __post_init__(self) -> None:
        if not all(isinstance(op, str) for op in self.ops):
            raise ValueError(f"A lineage's ops must be op strings. Received: {self.ops!r}.")
        if not 0 <= self.parent_ops <= len(self.ops):
            raise ValueError(
                f"A lineage's parent_ops={self.parent_ops} must lie in [0, {len(self.ops)}]."
            )

    @property
    def new_ops(self) -> tuple[str, ...]:
        """The ops the child adds to its parent."""
        return self.ops[self.parent_ops :]


@dataclasses.dataclass(frozen=True)
class TrialPlan:
    """A trial's instructions beyond its architecture; every part is optional.

    Args:
        promotion: Continue a finished trial's training (`Promotion`).
        lineage: Grow the root architecture's network by morphism ops, from the
            parent trial's trained weights (`kerasnas.morph.lineage.Lineage`).
        init_weights: A weights file the network starts from.
    """

    promotion: Promotion | None = None
    lineage: Lineage | None = None
    init_weights: str | None = None

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) is not None for f in dataclasses.fields(self))

    def to_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {}
        if self.promotion is not None:
            config["promotion"] = dataclasses.asdict(self.promotion)
        if self.lineage is not None:
            config["lineage"] = {**dataclasses.asdict(self.lineage), "ops": list(self.lineage.ops)}
        if self.init_weights is not None:
            config["init_weights"] = self.init_weights
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TrialPlan:
        promotion = config.get("promotion")
        lineage = config.get("lineage")
        return cls(
            promotion=None if promotion is None else Promotion(**promotion),
            lineage=None
            if lineage is None
            else Lineage(**{**lineage, "ops": tuple(lineage["ops"])}),
            init_weights=config.get("init_weights"),
        )


#: The plan of a trial that has none.
NONE = TrialPlan()


def write(trial_dir: str, plan: TrialPlan) -> None:
    """Writes a trial's plan to its folder (nothing for an empty plan)."""
    if plan:
        write_json(os.path.join(trial_dir, FILE), plan.to_config())


def read(trial_dir: str) -> TrialPlan:
    """The plan in a trial's folder (`NONE` when it has none)."""
    path = os.path.join(trial_dir, FILE)
    if not os.path.exists(path):
        return NONE
    try:
        return TrialPlan.from_config(read_json(path))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CorruptStoreError(
            f"The trial plan {path} is damaged ({e!r}). Restore it from a backup, or start "
            "afresh with overwrite=True or another project_name."
        ) from e
