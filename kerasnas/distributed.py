"""Parallel trials: keras-tuner's chief/worker mode, started and torn down for you.

keras-tuner runs one *chief* process that holds the oracle (the strategy and
the trial store) behind a gRPC server, and any number of *workers* that ask it
for trials, train them and report back. The processes find each other through
environment variables: `KERASTUNER_ORACLE_IP`, `KERASTUNER_ORACLE_PORT` and
`KERASTUNER_TUNER_ID` (`"chief"` for the chief, a unique name per worker).
Every process runs the same search script: `Search.fit` serves trials in the
chief and trains them in the workers.

keras-tuner's gRPC channel is unauthenticated and unencrypted: anyone who can
reach the port can read and change the search. Bind the chief to 127.0.0.1
(the default here) or to an address on a private network only.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence

CHIEF = "chief"

log = logging.getLogger(__name__)


def has_chief() -> bool:
    """Whether this process runs in keras-tuner's chief/worker mode (its variables are set)."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return False
    missing = [v for v in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID") if v not in os.environ]
    if missing:
        raise RuntimeError(
            f"KERASTUNER_ORACLE_IP is set but {' and '.join(missing)} not: set all three "
            "(kerasnas.distributed.role_env gives them) or none."
        )
    return True


def is_chief() -> bool:
    """Whether this process is the chief of keras-tuner's chief/worker mode."""
    return has_chief() and CHIEF in os.environ["KERASTUNER_TUNER_ID"]


def is_worker() -> bool:
    """Whether this process is a worker of keras-tuner's chief/worker mode."""
    return has_chief() and not is_chief()


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port that is free on `address` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def role_env(role: str, address: str, port: int, worker: int = 0) -> dict[str, str]:
    """The keras-tuner environment variables of a chief or of worker number `worker`."""
    if role not in (CHIEF, "worker"):
        raise ValueError(f"role must be 'chief' or 'worker'. Received: role={role!r}.")
    return {
        "KERASTUNER_ORACLE_IP": address,
        "KERASTUNER_ORACLE_PORT": str(port),
        "KERASTUNER_TUNER_ID": CHIEF if role == CHIEF else f"tuner{worker}",
    }


def _wait_for_port(address: str, port: int, chief: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if chief.poll() is not None:
            raise RuntimeError(f"The chief exited with status {chief.returncode} before serving.")
        try:
            with socket.create_connection((address, port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"The chief did not listen on {address}:{port} within {timeout:.0f}s.")


def launch(
    command: Sequence[str],
    num_workers: int = 2,
    *,
    gpus_per_worker: int = 0,
    address: str = "127.0.0.1",
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    log_dir: str | os.PathLike | None = None,
    start_timeout: float = 300.0,
    timeout: float | None = None,
    orphan_grace: float = 90.0,
) -> int:
    """Runs a search script as one chief and `num_workers` local workers.

    ```python
    kn.distributed.launch([sys.executable, "search.py"], num_workers=4, gpus_per_worker=1)
    ```

    The chief starts first and gets no GPU; once it listens, the workers start,
    worker i seeing only GPUs `i*gpus_per_worker .. (i+1)*gpus_per_worker - 1`
    (through `CUDA_VISIBLE_DEVICES`; with 0, workers see no GPU). A worker
    that dies does not stop the search: the chief gives its trial to another
    worker once its heartbeats stop (`KERASNAS_TRIAL_TIMEOUT`). When the chief
    ends, or on Ctrl-C, every process is stopped. When every worker has
    exited and the chief still waits `orphan_grace` seconds later (nobody is
    left to train its trials: a worker that crashes on start, say), the chief
    is stopped too and the exit statuses are printed.

    Args:
        command: The search command, e.g. `[sys.executable, "search.py"]`.
        num_workers: Worker processes. Defaults to 2.
        gpus_per_worker: GPUs pinned to each worker. Defaults to 0.
        address: The chief's address. Defaults to 127.0.0.1 (this machine only).
        port: The chief's port. Defaults to a free one.
        env: Extra environment variables for every process.
        log_dir: Where to write `chief.log` and `worker<i>.log`; None lets
            them print to this process's output.
        start_timeout: Seconds to wait for the chief to listen.
        timeout: Seconds the whole search may take; then every process is
            stopped and `TimeoutError` raised. None (the default) waits.
        orphan_grace: Seconds the chief may go on alone after the last
            worker exited before it is stopped.

    Returns:
        The chief's exit status (0 when the search completed; 1 when it was
        stopped because every worker had exited).
    """
    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1. Received: {num_workers}.")
    if gpus_per_worker < 0:
        raise ValueError(f"gpus_per_worker must be >= 0. Received: {gpus_per_worker}.")
    port = port or free_port(address)
    base = {**os.environ, **(env or {})}
    logs = []

    def start(role: str, index: int = 0) -> subprocess.Popen:
        proc_env = {**base, **role_env(role, address, port, index)}
        if role == CHIEF or gpus_per_worker == 0:
            proc_env["CUDA_VISIBLE_DEVICES"] = ""
        else:
            first = index * gpus_per_worker
            proc_env["CUDA_VISIBLE_DEVICES"] = ",".join(
                str(g) for g in range(first, first + gpus_per_worker)
            )
        out = None
        if log_dir is not None:
            os.makedirs(log_dir, exist_ok=True)
            name = CHIEF if role == CHIEF else f"worker{index}"
            out = open(os.path.join(log_dir, f"{name}.log"), "w")  # noqa: SIM115
            logs.append(out)
        return subprocess.Popen(list(command), env=proc_env, stdout=out, stderr=out)

    deadline = None if timeout is None else time.monotonic() + timeout
    chief = start(CHIEF)
    workers: list[subprocess.Popen] = []
    try:
        _wait_for_port(address, port, chief, start_timeout)
        workers = [start("worker", i) for i in range(num_workers)]
        reported: set[int] = set()
        status = _supervise(chief, workers, deadline, orphan_grace, reported)
        for i, worker in enumerate(workers):
            try:
                code = worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.terminate()
                code = worker.wait()
            if code != 0 and i not in reported:
                log.warning("worker %d exited with status %s", i, code)
        return status
    except BaseException:
        for proc in [chief, *workers]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [chief, *workers]:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        raise
    finally:
        for f in logs:
            f.close()


def _supervise(
    chief: subprocess.Popen,
    workers: Sequence[subprocess.Popen],
    deadline: float | None,
    orphan_grace: float,
    reported: set[int],
) -> int:
    """Waits for the chief; stops it when no worker is left to train its trials."""
    orphaned_since = None
    while True:
        status = chief.poll()
        if status is not None:
            return status
        now = time.monotonic()
        if deadline is not None and now > deadline:
            raise TimeoutError("The search did not finish within its timeout; stopping it.")
        for i, worker in enumerate(workers):
            code = worker.poll()
            if code not in (None, 0) and i not in reported:
                reported.add(i)
                log.warning("worker %d exited with status %s", i, code)
        if all(worker.poll() is not None for worker in workers):
            orphaned_since = orphaned_since or now
            if now - orphaned_since > orphan_grace:
                codes = [worker.returncode for worker in workers]
                log.warning(
                    "every worker has exited (statuses %s) and the chief still waits after "
                    "%.0fs; stopping the chief",
                    codes,
                    orphan_grace,
                )
                chief.terminate()
                try:
                    chief.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    chief.kill()
                    chief.wait()
                return 1
        time.sleep(0.5)
