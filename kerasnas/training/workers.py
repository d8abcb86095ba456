"""A worker's side of keras-tuner's chief/worker mode: heartbeats and idle waits."""

from __future__ import annotations

import threading
import time
from typing import Any

from keras_tuner.engine import trial as trial_module


class IdleWaitingClient:
    """A worker's oracle client that pauses after the chief answers "no trial for you yet".

    keras-tuner's search loop asks again at once when the chief has no trial
    (status IDLE); this wrapper sleeps a little first. Everything else goes
    to the wrapped client.

    Args:
        client: The worker's `OracleClient`.
        pause: Seconds to wait after an IDLE answer.
    """

    def __init__(self, client: Any, pause: float):
        self._client, self._pause = client, pause

    def create_trial(self, tuner_id: str) -> trial_module.Trial:
        trial = self._client.create_trial(tuner_id)
        if trial.status == trial_module.TrialStatus.IDLE:
            time.sleep(self._pause)
        return trial

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class Heartbeat:
    """While a worker trains, tells the chief every few seconds that it is alive."""

    def __init__(self, oracle: Any, trial_id: str, interval: float, enabled: bool):
        self.oracle, self.trial_id, self.interval = oracle, trial_id, interval
        self.enabled = enabled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.oracle.get_trial(self.trial_id)
            except Exception:  # noqa: BLE001 - a missed beat must not kill training.
                pass

    def __enter__(self) -> Heartbeat:
        if self.enabled:
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
