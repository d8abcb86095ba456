"""The base of kerasnas strategies: a keras-tuner Oracle over a search space."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Protocol

import keras
import keras_tuner
import numpy as np
from keras_tuner import synchronized
from keras_tuner.engine import trial as trial_module

from kerasnas import distributed
from kerasnas import plan as plan_module
from kerasnas.architecture import Architecture, OutOfSpaceError
from kerasnas.oracles.halving import Halving
from kerasnas.oracles.store import StoredOracle
from kerasnas.plan import TrialPlan
from kerasnas.spaces.base import ENUMERATION_LIMIT, SearchSpace

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SearchContext:
    """What a strategy's `prepare` hook is given: the search's data and its folder.

    Args:
        train: The training data, a batched `tf.data.Dataset` of `(x, y)`.
        validation: The validation data (a batched dataset), or None.
        directory: The project directory, where the strategy may keep files.
        distribution_strategy: The `tf.distribute.Strategy` of the search,
            or None.
        progress: Whether to report progress.
    """

    train: Any
    validation: Any
    directory: str
    distribution_strategy: Any = None
    progress: bool = True


class TrialContext(Protocol):
    """What a strategy's `model_for_trial` hook is given; the trial runner implements it.

    Attributes:
        trial: The `keras_tuner` trial whose model is built.
        plan: The trial's `kerasnas.plan.TrialPlan` (what its strategy
            decided beyond the architecture: a promotion, a lineage, initial weights).
        training: True when the model is built to train the trial; False when
            it is built to load the trial's trained weights into it, or to
            train the network again from scratch (`Search.retrain`).
        seed: The trial's own seed (from the search's seed and the trial id).
    """

    trial: trial_module.Trial
    plan: TrialPlan
    training: bool
    seed: int

    def build(self) -> keras.Model:
        """The default model: the space's model of the trial's architecture, compiled."""

    def compile(self, model: keras.Model) -> keras.Model:
        """Compiles `model` with the search's recipe (when it has one); returns it."""

    def scope(self) -> contextlib.AbstractContextManager:
        """The distribution strategy's scope, for creating variables."""

    def checkpoint(self, trial_id: str) -> str | None:
        """The saved weights of a finished trial, or None when they are missing."""

    def record(self, *, metrics: Mapping[str, float] = (), files: Mapping[str, Any] = ()) -> None:
        """Adds metrics to the trial's record and JSON files to its folder."""


class NasOracle(StoredOracle):
    """A keras-tuner `Oracle` that proposes architectures of a search space.

    Subclasses implement `populate_space(trial_id)` and return
    `self.propose(arch)` or `self.stop(reason)`. Trials are deduplicated by
    the architecture's canonical hash, so isomorphic cells count as repeats.
    The oracle's random numbers come from a generator seeded by `seed` and
    the number of draws so far, which is saved with the oracle's state, so a
    resumed search continues the same random sequence.

    Args:
        space: The `kerasnas.spaces.SearchSpace` to search.
        objective: Name of the metric to optimise (direction inferred from
            the name, e.g. `"val_accuracy"` is maximised) or a
            `keras_tuner.Objective`. Defaults to `"val_accuracy"`.
        max_trials: Most trials to run. Defaults to 10.
        seed: Integer seed. Defaults to a random one.
        trial_timeout: In chief/worker mode, seconds without a heartbeat
            after which a worker's trial is taken to be lost (the worker died)
            and is given to another worker. Defaults to
            `$KERASNAS_TRIAL_TIMEOUT` or 120.
        halving: A `kerasnas.Halving`: successive halving across the
            architectures the strategy proposes (each trains a few epochs; the
            best go on from their checkpoint). Defaults to None (every trial
            trains `fit`'s epochs).
        **kwargs: Other `keras_tuner.Oracle` arguments, e.g.
            `max_consecutive_failed_trials` and `max_retries_per_trial`.
    """

    #: True when the strategy cannot run without kerasnas's trial runner
    #: (`kerasnas.NasTuner`, which `kerasnas.Search` uses): its hooks are
    #: essential and a plain `keras_tuner.Tuner` would not call them. Such a
    #: strategy refuses to be given to a plain Tuner.
    needs_runner: ClassVar[bool] = False
    #: True when `prepare` needs validation data (`Search.fit` checks it first).
    needs_validation_data: ClassVar[bool] = False
    #: False when the strategy's trials are not plain architectures of the space trained
    #: from scratch (e.g. grown or one-shot networks): it refuses `halving`.
    supports_halving: ClassVar[bool] = True
    #: Whether the strategy runs on a tabular benchmark (no training data, no trained
    #: networks). None: judged from its hooks (`kerasnas.benchmarks.harness`): not when it
    #: needs the runner or validation data, or overrides `prepare` or `model_for_trial`.
    runs_on_tables: ClassVar[bool | None] = None

    def __init__(
        self,
        space: SearchSpace,
        objective: Any = "val_accuracy",
        max_trials: int = 10,
        seed: int | None = None,
        trial_timeout: float | None = None,
        halving: Halving | None = None,
        **kwargs: Any,
    ):
        if not isinstance(space, SearchSpace):
            raise ValueError(
                "space must be a kerasnas.spaces.SearchSpace (e.g. "
                f"kerasnas.spaces.NASNetSpace()). Received: {space!r}."
            )
        if not isinstance(max_trials, int) or isinstance(max_trials, bool) or max_trials < 1:
            raise ValueError(
                f"max_trials must be an integer >= 1. Received: max_trials={max_trials!r}."
            )
        hp = keras_tuner.HyperParameters()
        space.declare_hyperparameters(hp)
        super().__init__(
            objective=objective, max_trials=max_trials, hyperparameters=hp, seed=seed, **kwargs
        )
        if seed is not None:  # keras-tuner replaces a seed of 0 by a random one.
            self.seed = seed
            self._seed_state = seed
        self.space = space
        self.max_collisions = 50
        self._draws = 0
        self.stop_reason: str | None = None
        self._stop_requested = False
        if trial_timeout is None:
            trial_timeout = float(os.environ.get("KERASNAS_TRIAL_TIMEOUT", 120))
        self.trial_timeout = float(trial_timeout)
        self._runner_attached = False
        if halving is not None and not isinstance(halving, Halving):
            raise ValueError(
                f"halving must be a kerasnas.Halving, e.g. kn.Halving(max_epochs=9). "
                f"Received: {halving!r}."
            )
        if halving is not None and not self.supports_halving:
            from kerasnas.oracles import STRATEGIES  # The registry imports this module.

            able = [name for name, cls in STRATEGIES.items() if cls.supports_halving]
            raise ValueError(
                f"{type(self).__name__} cannot run with halving: its trials are not "
                "architectures trained from scratch that a checkpoint can continue. Use it "
                f"with one of {able}."
            )
        #: The schedule composed with the strategy: asked for a due trial (a promotion)
        #: before the strategy's `populate_space` is asked for a new architecture.
        self.halving = halving

    # -- Hooks the trial runner calls -------------------------------------------
    def prepare(self, context: SearchContext) -> None:
        """Runs once on the chief when a search begins, before the first trial.

        E.g. a one-shot strategy trains its supernet here. Its time counts
        against the search's `time_budget`. The default does nothing.
        """

    def model_for_trial(self, trial: trial_module.Trial, context: TrialContext) -> keras.Model:
        """The compiled model a trial trains; the default is `context.build()`, and
        for a plan's promotion (successive halving), that model with its parent
        trial's weights.

        E.g. network morphism grows the parent trial's trained model, and
        one-shot search starts from the supernet's weights.
        """
        model = context.build()
        promotion = context.plan.promotion
        if promotion is not None and context.training:
            _continue_from(model, promotion.parent, trial, context)
        return model

    def trial_epochs(self, trial: trial_module.Trial) -> int | None:
        """Epochs the trial trains for; None (the default) means `fit`'s `epochs`
        (with `halving`: its rung's)."""
        if self.halving is None:
            return None
        return self.halving.epochs(self.plan(trial.trial_id))

    def trial_settings(self) -> dict[str, Any]:
        """The strategy's settings that change what a trial means (e.g. how many epochs it
        trains); a project resumes only with the same ones. By default `halving`'s."""
        return {} if self.halving is None else self.halving.settings()

    def network_hash(self, trial: trial_module.Trial) -> str:
        """The hash of the network a trial trains (results and progress lines)."""
        return self._compute_values_hash(trial.hyperparameters.values)

    def progress_note(self, trial: trial_module.Trial) -> str:
        """Words the trial's progress line adds after its hash (with `halving`: its rung)."""
        return "" if self.halving is None else self.halving.note(self.plan(trial.trial_id))

    def trial_details(self, trial: trial_module.Trial) -> dict[str, Any]:
        """Strategy-specific details of the trial for its `Search.results()` record, by
        kind (with `halving`: `{"halving": ...}`, see `Halving.details`; else {})."""
        if self.halving is None:
            return {}
        return self.halving.details(trial, self)

    def attach_runner(self) -> None:
        """Called by kerasnas's trial runner before it uses the oracle."""
        self._runner_attached = True

    def _set_project_dir(self, directory: str, project_name: str) -> None:
        # Every keras-tuner Tuner calls this while it is constructed: the earliest point
        # where a strategy can refuse a Tuner that would not call its hooks.
        if self.needs_runner and not self._runner_attached:
            raise ValueError(
                f"{type(self).__name__} needs kerasnas's trial runner, which calls its "
                "hooks (see docs/architecture.md); a plain keras_tuner.Tuner would not. "
                "Use kerasnas.Search(space, strategy=oracle) or "
                "kerasnas.NasTuner(oracle, space) instead."
            )
        super()._set_project_dir(directory, project_name)

    # -- Helpers for subclasses --------------------------------------------
    def rng(self) -> np.random.Generator:
        """A fresh generator, determined by the seed and the draws so far."""
        rng = np.random.default_rng([self.seed, self._draws])
        self._draws += 1
        return rng

    def propose(self, arch: Architecture, plan: TrialPlan = plan_module.NONE) -> dict[str, Any]:
        """The `populate_space` response that runs `arch` (with `plan`) as the next trial."""
        values = self.space.encode(arch)
        return {"status": trial_module.TrialStatus.RUNNING, "values": values, "plan": plan}

    def stop(self, reason: str) -> dict[str, Any]:
        """The `populate_space` response that ends the search."""
        if self.stop_reason is None:
            log.info("search stopped: %s", reason)
        self.stop_reason = reason
        return {"status": trial_module.TrialStatus.STOPPED, "values": None}

    def request_stop(self, reason: str) -> None:
        """Starts no further trial (running ones finish); e.g. a budget is spent."""
        if not self._stop_requested:
            log.info("search stopped: %s", reason)
        self._stop_requested = True
        self.stop_reason = reason

    @synchronized
    def create_trial(self, tuner_id: str) -> trial_module.Trial:
        self.requeue_lost_trials()
        if self._stop_requested and tuner_id not in self.ongoing_trials:
            self.tuner_ids.discard(tuner_id)
            return self._bare_trial(trial_module.TrialStatus.STOPPED)
        if tuner_id in self.ongoing_trials or self._retry_queue or self._at_max_trials():
            # keras-tuner's own order: the tuner's trial, then retries, then max_trials.
            trial = super().create_trial(tuner_id)
        else:
            trial = self._new_trial(tuner_id)
        if trial.status == trial_module.TrialStatus.STOPPED and self.ongoing_trials:
            if distributed.is_chief():
                # Another worker's trial may still be lost and need this worker: wait.
                self.tuner_ids.add(tuner_id)
                return self._bare_trial(trial_module.TrialStatus.IDLE)
        if trial.status == trial_module.TrialStatus.RUNNING:
            self.heard_from(trial_id=trial.trial_id)
        self.heard_from(tuner_id)
        return trial

    def _new_trial(self, tuner_id: str) -> trial_module.Trial:
        """A trial of what the composed schedule calls for (a promotion), else of what
        the strategy proposes; started (with its plan) when it is to run."""
        response = None if self.halving is None else self.halving.next_trial(self)
        if response is None:
            response = self.populate_space(self.next_trial_id())
        status = response["status"]
        if status == trial_module.TrialStatus.RUNNING:
            return self.start_trial(
                tuner_id, response["values"], response.get("plan", plan_module.NONE)
            )
        if status == trial_module.TrialStatus.STOPPED:
            self.tuner_ids.discard(tuner_id)
        return self._bare_trial(status)

    def _bare_trial(self, status: str) -> trial_module.Trial:
        return trial_module.Trial(self.hyperparameters.copy(), status=status)

    def _at_max_trials(self) -> bool:
        return bool(self.max_trials) and len(self.trials) >= self.max_trials

    def get_best_trials(self, num_trials: int = 1) -> list[trial_module.Trial]:
        best = super().get_best_trials(len(self.trials) if self.halving else num_trials)
        if self.halving is None:
            return best
        # A promoted architecture is several trials: each network once, at its best.
        seen: set[str] = set()
        unique = [t for t in best if not _seen(self, t, seen)]
        return unique[:num_trials]

    def sample_new(self, rng: np.random.Generator) -> Architecture | None:
        """A uniformly drawn architecture not tried yet, or None when none is left.

        After `max_collisions` repeats in a row, a small space (at most
        `ENUMERATION_LIMIT` decision combinations) is enumerated to find
        what is left.
        """
        for _ in range(self.max_collisions):
            arch = self.space.sample(rng)
            if self.is_new(arch):
                return arch
        if self.space.cardinality() <= ENUMERATION_LIMIT:
            fresh = {a.hash(): a for a in self.space.enumerate() if self.is_new(a)}
            if fresh:
                keys = sorted(fresh)
                return fresh[keys[rng.integers(len(keys))]]
        return None

    def propose_random(self, rng: np.random.Generator) -> dict[str, Any]:
        """Proposes `sample_new(rng)`, or stops when the space is exhausted."""
        arch = self.sample_new(rng)
        if arch is not None:
            return self.propose(arch)
        if self.space.cardinality() <= ENUMERATION_LIMIT:
            return self.stop(
                f"the search space is exhausted: all {len(self._tried_so_far)} "
                "distinct architectures have been tried"
            )
        return self.stop(
            f"{self.max_collisions} random draws in a row were architectures "
            "already tried; the space looks exhausted"
        )

    def next_new(
        self, queue: Sequence[Any], cursor: int, arch_of: Callable[[Any], Architecture]
    ) -> tuple[int, Any, Architecture | None]:
        """The first entry of a ranked `queue` at or after `cursor` whose architecture
        (`arch_of(entry)`) is new: `(cursor after it, entry, architecture)`, or
        `(len(queue), None, None)` when none is left."""
        while cursor < len(queue):
            entry = queue[cursor]
            cursor += 1
            arch = arch_of(entry)
            if self.is_new(arch):
                return cursor, entry, arch
        return cursor, None, None

    def is_new(self, arch: Architecture) -> bool:
        """Whether no trial so far has an architecture isomorphic to `arch`."""
        return arch.hash() not in self._tried_so_far

    def architecture(self, trial: trial_module.Trial) -> Architecture:
        """The architecture a trial trains."""
        return self.space.decode(trial.hyperparameters.values)

    # -- keras-tuner hooks --------------------------------------------------
    def _compute_values_hash(self, values: Mapping[str, Any]) -> str:
        try:
            return self.space.decode(values).hash()
        except OutOfSpaceError:
            return super()._compute_values_hash(values)

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), "draws": self._draws}

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self._draws = state.get("draws", 0)


def _seen(oracle: NasOracle, trial: trial_module.Trial, seen: set[str]) -> bool:
    """Whether a trial's network is in `seen` (then True), else adds it."""
    key = oracle.network_hash(trial)
    if key in seen:
        return True
    seen.add(key)
    return False


def _continue_from(
    model: keras.Model, parent: str, trial: trial_module.Trial, context: TrialContext
) -> None:
    """Loads a halving promotion's parent weights into its model, or says why it cannot."""
    checkpoint = context.checkpoint(parent)
    number = int(trial.trial_id) + 1
    if checkpoint is None:
        log.warning(
            "trial %d: the checkpoint of trial %s, which it continues, is missing; it trains "
            "from scratch", number, parent,
        )  # fmt: skip
        context.record(metrics={"inherited": 0.0})
        return
    with context.scope(), warnings.catch_warnings():
        # The checkpoint's optimizer state does not carry over: a fresh optimizer continues.
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(checkpoint)
    context.record(metrics={"inherited": 1.0})
