"""The trial store of an oracle: atomic writes, reads that name a corrupt file, rebuilds.

keras-tuner writes each trial to `trial_<id>/trial.json` and the oracle's
state to `oracle.json`. `StoredOracle` (the base of `NasOracle`) writes both
atomically, names a file it cannot read and how to mend it, rebuilds a lost or
unreadable `oracle.json` from the trial files, and reconciles the two after a
crash (the trial files are written first).

A search whose trials take microseconds (a tabular benchmark) spends most of its
time writing these files; `write_back()` batches them: trial files and state are
written together each time `TABLE_WRITE_TRIALS` more trials have finished (and
when the block ends), so a killed search loses at most that many trials less one,
whichever the machine's speed, and its resumed search runs them again.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import time
from collections.abc import Iterator

import keras_tuner
from keras_tuner import synchronized
from keras_tuner.engine import trial as trial_module

from kerasnas import distributed
from kerasnas import plan as plan_module
from kerasnas._io import read_json, write_json
from kerasnas.errors import CorruptStoreError
from kerasnas.plan import TrialPlan

log = logging.getLogger(__name__)

#: In `write_back` mode, the store is written each time this many more trials have
#: finished (`$KERASNAS_TABLE_WRITE_TRIALS` overrides it; 0 writes each trial as it
#: changes). A table lookup takes a fraction of a millisecond, a write of the state a few
#: milliseconds (it is fsynced): every 100 trials, the state writes take about 1% of a
#: tabular search.
TABLE_WRITE_TRIALS = 100


#: keras-tuner state that lists every trial (the hashes of their values); it is rebuilt
#: from the trial files on reload instead of being rewritten into `oracle.json` at each
#: trial's start and end, which made a search's store cost grow with the square of its
#: length.
DERIVED_STATE = {"tried_so_far": [], "id_to_hash": {}}


class StoredOracle(keras_tuner.Oracle):
    """A keras-tuner `Oracle` whose trial store survives crashes and damage.

    It also keeps each trial's `TrialPlan` (beside its values, in
    `trial_<id>/plan.json`) and, in chief/worker mode, the workers' heartbeats:
    the trial of a worker silent for `trial_timeout` seconds goes to another.
    """

    _draws: int
    #: Seconds without a heartbeat after which a worker's trial is taken to be lost.
    trial_timeout: float = 120.0
    #: In `write_back` mode: finished trials between writes, the number finished at the
    #: last write, and what waits to be written.
    _write_every: int | None = None
    _written_ends = 0
    _unsaved_trials: dict[str, trial_module.Trial]

    def get_state(self) -> dict:
        state = super().get_state()
        for key in DERIVED_STATE:
            state.pop(key, None)
        return state

    def set_state(self, state: dict) -> None:
        state = {**DERIVED_STATE, **state}
        if isinstance(state.get("ongoing_trials"), dict):  # Not those whose folder is gone.
            ongoing = state["ongoing_trials"].items()
            state["ongoing_trials"] = {k: t for k, t in ongoing if t in self.trials}
        super().set_state(state)

    @property
    def plans(self) -> dict[str, TrialPlan]:
        """The plans of this project's trials that have one, by trial id."""
        if "_plans" not in self.__dict__:
            self._plans: dict[str, TrialPlan] = {}
        return self._plans

    def plan(self, trial_id: str) -> TrialPlan:
        """A trial's plan (`kerasnas.plan.NONE` when it has none). On a worker,
        whose oracle holds no trials, it is read from the trial's folder."""
        found = self.plans.get(trial_id)
        if found is None:
            if getattr(self, "_project_dir", None) is None:  # An oracle with no store.
                return plan_module.NONE
            found = plan_module.read(self.trial_path(trial_id))
            self.plans[trial_id] = found
        return found

    def trial_path(self, trial_id: str) -> str:
        """The folder of a trial (keras-tuner's `_get_trial_dir` also creates it)."""
        return os.path.join(self._project_dir, f"trial_{trial_id}")

    def next_trial_id(self) -> str:
        """The id of the next trial (keras-tuner's: its number, zero-padded). It never
        reuses the id of a trial the store holds or lost, nor a folder that exists."""
        used = [int(t) + 1 for t in (*self.trials, *self.lost_trials) if t.isdigit()]
        number = max([len(self.trials), *used])
        while True:
            trial_id = f"{{:0{len(str(self.max_trials))}d}}".format(number)
            if getattr(self, "_project_dir", None) is None:
                return trial_id
            if not os.path.exists(self.trial_path(trial_id)):
                return trial_id
            number += 1

    @property
    def lost_trials(self) -> list[str]:
        """The ids of trials whose folders were found missing when the store was read."""
        return self.__dict__.setdefault("_lost", [])

    def start_trial(
        self, tuner_id: str, values: dict, plan: TrialPlan = plan_module.NONE
    ) -> trial_module.Trial:
        """Starts a trial of `values` (and `plan`) for `tuner_id`, as keras-tuner's
        `create_trial` starts one that `populate_space` proposed."""
        hp = self.hyperparameters.copy()
        hp.values = values
        trial_id = self.next_trial_id()
        trial = trial_module.Trial(hp, trial_id=trial_id, status=trial_module.TrialStatus.RUNNING)
        self.tuner_ids.add(tuner_id)
        self._record_values(trial)
        self.ongoing_trials[tuner_id] = trial
        self.trials[trial_id] = trial
        self.start_order.append(trial_id)
        self.plans[trial_id] = plan
        plan_module.write(self._get_trial_dir(trial_id), plan)  # Before the trial's file.
        self._save_trial(trial)
        self.save()
        self._display.on_trial_begin(trial)
        self.heard_from(tuner_id, trial_id)
        return trial

    def finished_trials(self, by_start: bool = False) -> list[trial_module.Trial]:
        """The completed trials with a score, in the order they finished (`by_start`:
        in the order they started)."""
        order = self.start_order if by_start else self.end_order
        trials = (self.trials[t] for t in order if t in self.trials)
        completed = trial_module.TrialStatus.COMPLETED
        return [t for t in trials if t.status == completed and t.score is not None]

    # -- Workers' heartbeats (chief/worker mode) ------------------------------------
    @property
    def _last_seen(self) -> dict[str, float]:
        """When each running trial (and each worker, as `tuner:<id>`) was last heard from."""
        if "_seen" not in self.__dict__:
            self._seen: dict[str, float] = {}
        return self._seen

    def heard_from(self, tuner_id: str | None = None, trial_id: str | None = None) -> None:
        """Notes a sign of life of a worker and of the trial it runs."""
        now = time.monotonic()
        if trial_id is not None:
            self._last_seen[trial_id] = now
        if tuner_id is not None:
            self._last_seen[f"tuner:{tuner_id}"] = now

    def requeue_lost_trials(self) -> None:
        """On the chief, gives the trials of workers silent for `trial_timeout` seconds to
        others, and stops waiting for workers that died between trials."""
        if not distributed.is_chief():
            return
        now = time.monotonic()
        for tuner_id, trial in list(self.ongoing_trials.items()):
            seen = self._last_seen.get(trial.trial_id, now)
            if now - seen > self.trial_timeout:
                log.warning(
                    "worker %s sent no heartbeat for %.0fs; trial %s goes to another worker",
                    tuner_id,
                    now - seen,
                    trial.trial_id,
                )
                del self.ongoing_trials[tuner_id]
                self.tuner_ids.discard(tuner_id)
                self._last_seen.pop(trial.trial_id, None)
                self._retry_queue.append(trial.trial_id)
        for tuner_id in list(self.tuner_ids):
            seen = self._last_seen.get(f"tuner:{tuner_id}", now)
            if tuner_id not in self.ongoing_trials and now - seen > self.trial_timeout:
                self.tuner_ids.discard(tuner_id)

    @synchronized
    def get_trial(self, trial_id: str) -> trial_module.Trial:
        # Workers call this as a heartbeat while they train a trial.
        self.heard_from(trial_id=trial_id)
        return super().get_trial(trial_id)

    # -- The trial store: atomic writes, reads that name a corrupt file ---------
    def save(self) -> None:
        if self._write_every is None:
            self.write_state()
        elif len(self.end_order) - self._written_ends >= self._write_every:
            self._write_unsaved()

    def write_state(self) -> None:
        """Writes the oracle's state file; a strategy with more state extends it."""
        write_json(self._get_oracle_fname(), self.get_state())

    def _save_trial(self, trial: trial_module.Trial) -> None:
        if self._write_every is not None:
            self._unsaved_trials[trial.trial_id] = trial
            return
        write_json(
            os.path.join(self._get_trial_dir(trial.trial_id), "trial.json"), trial.get_state()
        )

    @contextlib.contextmanager
    def write_back(self, trials: int | None = None) -> Iterator[None]:
        """Within the block, the store is written each time `trials` more trials have
        finished (completed or failed), and at its end.

        `trials` defaults to `$KERASNAS_TABLE_WRITE_TRIALS`, else `TABLE_WRITE_TRIALS`;
        0 writes each change as it happens. The write points depend on the trials
        alone, not on the clock: a search killed within the block has on disk exactly
        the trials of its last write (the trial files go first and then the state, as
        each trial's do otherwise), and resumes from there, reconciled as after any
        crash.
        """
        if trials is None:
            trials = int(os.environ.get("KERASNAS_TABLE_WRITE_TRIALS", TABLE_WRITE_TRIALS))
            if "KERASNAS_TABLE_WRITE_SECONDS" in os.environ:
                log.warning(
                    "KERASNAS_TABLE_WRITE_SECONDS is no longer read: the store is written "
                    "every %d finished trials (KERASNAS_TABLE_WRITE_TRIALS)",
                    trials,
                )
        if trials <= 0:
            yield
            return
        self._write_every, self._unsaved_trials = trials, {}
        self._written_ends = len(self.end_order)
        try:
            yield
        finally:
            self._write_unsaved()
            self._write_every = None

    def _write_unsaved(self) -> None:
        trials, self._unsaved_trials = self._unsaved_trials, {}
        every, self._write_every = self._write_every, None
        try:
            for trial in trials.values():
                self._save_trial(trial)
            self.write_state()
        finally:
            self._write_every = every
            self._written_ends = len(self.end_order)

    def reload(self) -> None:
        for fname in sorted(glob.glob(os.path.join(self._project_dir, "trial_*", "trial.json"))):
            self.trials.update([_read_trial(fname)])
        self.plans.clear()
        for trial_id in self.trials:
            self.plan(trial_id)
        path = self._get_oracle_fname()
        try:
            self.set_state(read_json(path))
        except (CorruptStoreError, KeyError, TypeError, AttributeError) as e:
            # The trial files are written first and hold every trial: the strategy starts
            # from them, as a fresh oracle of the same settings that has seen them.
            cause = "missing" if not os.path.exists(path) else f"unreadable ({e!r})"
            log.warning(
                "the oracle state %s is %s; rebuilt from the %d trial files",
                path,
                cause,
                len(self.trials),
            )
            self._draws = len(self.trials)  # A random sequence not replayed from its start.
        self._forget_lost_trials()
        # Reconcile with the trial files, which are written before the oracle state: a
        # trial whose file says it finished is kept (the process died between the two
        # writes); every other trial (running when the process stopped) runs again.
        finished = (trial_module.TrialStatus.COMPLETED, trial_module.TrialStatus.FAILED)
        self.ongoing_trials = {}
        for trial_id in sorted(self.trials):
            trial = self.trials[trial_id]
            values_hash = self._compute_values_hash(trial.hyperparameters.values)
            self._tried_so_far.add(values_hash)
            self._id_to_hash[trial_id] = values_hash
            if trial_id not in self.start_order:
                self.start_order.append(trial_id)
            if trial.status in finished:
                if trial_id not in self.end_order:
                    self.end_order.append(trial_id)
                if trial_id in self._retry_queue:
                    self._retry_queue.remove(trial_id)
            elif trial_id not in self._retry_queue:
                self._retry_queue.append(trial_id)

    def _forget_lost_trials(self) -> None:
        """Drops the trials the state names (or the ids skip) whose folders are gone, and
        says so: their results are lost, their ids are never given again."""
        known = {*self.start_order, *self.end_order, *self._retry_queue}
        numbers = {int(t) for t in self.trials if t.isdigit()}
        gaps = {str(n) for n in range(max(numbers, default=-1)) if n not in numbers}
        by_number = {int(t): t for t in known if t.isdigit()}
        lost = {t for t in known if t not in self.trials}
        lost |= {by_number.get(int(g), g) for g in gaps}
        self.lost_trials[:] = sorted(lost, key=lambda t: (int(t) if t.isdigit() else -1, t))
        if not lost:
            return
        self.start_order = [t for t in self.start_order if t not in lost]
        self.end_order = [t for t in self.end_order if t not in lost]
        self._retry_queue = [t for t in self._retry_queue if t not in lost]
        folders = ", ".join(self.trial_path(t) for t in self.lost_trials)
        log.warning(
            "the folders of trials %s are missing (%s): their results are lost; the search "
            "goes on without them and never reuses their ids. Restore the folders from a "
            "backup to keep them.",
            ", ".join(self.lost_trials),
            folders,
        )

    def _check_last_failures(self) -> None:
        """keras-tuner's limit on failures in a row, checked on the latest finished trials.

        keras-tuner scans every finished trial after each one; the check runs after every
        trial, so a run of failures is seen when it forms, by its last trials.
        """
        limit = self.max_consecutive_failed_trials
        last = [self.trials[t] for t in self.end_order[-limit:]] if limit else []
        if limit and len(last) == limit:
            if all(t.status == trial_module.TrialStatus.FAILED for t in last):
                raise RuntimeError(
                    f"Number of consecutive failures exceeded the limit of {limit}.\n"
                    + (last[-1].message or "")
                )

    def _check_consecutive_failures(self) -> None:
        try:
            self._check_last_failures()
        except RuntimeError:
            # keras-tuner raises this before it saves the trial that failed last: save it
            # now, so that a resumed search does not take that trial for a running one.
            last = self.trials[self.end_order[-1]]
            self._save_trial(last)
            self.ongoing_trials = {
                k: t for k, t in self.ongoing_trials.items() if t.trial_id != last.trial_id
            }
            self.save()
            raise


def _read_trial(path: str) -> tuple[str, trial_module.Trial]:
    """A trial file of the store, or CorruptStoreError naming it and the fix."""
    state = read_json(path)
    try:
        trial = trial_module.Trial.from_state(state)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CorruptStoreError(
            f"The trial file {path} does not describe a trial ({e!r} is missing or wrong). "
            "Restore it from a backup, or start afresh with overwrite=True or another "
            "project_name (the other trials' folders are intact and can be read as they are)."
        ) from e
    return trial.trial_id, trial
