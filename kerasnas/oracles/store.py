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
from collections.abc import Iterator

import keras_tuner
from keras_tuner.engine import trial as trial_module

from kerasnas._io import CorruptStoreError, read_json, write_json

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
    """A keras-tuner `Oracle` whose trial store survives crashes and damage."""

    _draws: int
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
        super().set_state({**DERIVED_STATE, **state})

    def start_trial(self, tuner_id: str, values: dict) -> trial_module.Trial:
        """Starts a trial of `values` for `tuner_id`, as keras-tuner's `create_trial` starts
        one that `populate_space` proposed (for trials the oracle makes itself)."""
        hp = self.hyperparameters.copy()
        hp.values = values
        trial_id = f"{{:0{len(str(self.max_trials))}d}}".format(len(self.trials))
        trial = trial_module.Trial(hp, trial_id=trial_id, status=trial_module.TrialStatus.RUNNING)
        self.tuner_ids.add(tuner_id)
        self._record_values(trial)
        self.ongoing_trials[tuner_id] = trial
        self.trials[trial_id] = trial
        self.start_order.append(trial_id)
        self._save_trial(trial)
        self.save()
        return trial

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
