"""One-shot search as a keras-tuner Oracle: a supernet ranks, trials train the best."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import keras
from keras_tuner.engine import trial as trial_module

from kerasnas import backend
from kerasnas._io import read_json, write_json
from kerasnas.architecture import Architecture
from kerasnas.cli.registry import Flag
from kerasnas.oneshot.initial import load_candidate
from kerasnas.oracles.base import NasOracle, SearchContext, TrialContext
from kerasnas.plan import TrialPlan
from kerasnas.spaces.base import SearchSpace

INITS = ("scratch", "supernet")

log = logging.getLogger(__name__)


#: The command-line flags of `OneShotOracle` and its subclasses (their `cli_flags`; see
#: kerasnas.cli.registry).
CLI_FLAGS = {
    "supernet_epochs": Flag(
        "supernet_epochs",
        type=int,
        lower_bound=1,
        default_text="enough for 300,000 examples, at least 10",
        help="Passes of supernet training",
    ),
    "retrain_epochs": Flag(
        "retrain_epochs",
        type=int,
        lower_bound=1,
        default_text="--epochs",
        help="Training epochs of each trial",
    ),
    "init": Flag(
        "init",
        type=str,
        choices=("scratch", "supernet"),
        help="Trials train from fresh weights or from the supernet's",
    ),
    "num_candidates": Flag(
        "num_candidates",
        type=int,
        lower_bound=1,
        help="Architectures the supernet ranks, at least --max_trials",
    ),
    "oneshot_rank_by": Flag(
        "rank_by",
        type=str,
        choices=("loss", "accuracy"),
        help="What uniform, SPOS and ENAS rank candidates by: one-shot validation loss "
        "(lowest first) or accuracy",
    ),
}


class OneShotOracle(NasOracle):
    """One-shot architecture search with weight sharing, as a keras-tuner Oracle.

    ```
    prepare (once, on the chief, before the first trial):
        train the space's supernet with `method` on the training data
        rank candidates: one-shot validation loss (or accuracy) of each
            sampled path, BatchNorm statistics recomputed per path (uniform, SPOS, ENAS),
            or the architecture derived from alpha first (DARTS, GDAS)
    each trial: the next candidate of the ranking, trained from scratch
        (init="scratch") or from the supernet's weights (init="supernet")
    ```

    Methods: `"uniform"` (Bender et al. 2018: path dropout whose rate ramps
    up, ghost BatchNorm, weight decay on active paths only), `"spos"`
    (single path, uniformly sampled), `"enas"` (Pham et al. 2018: the LSTM
    controller samples the paths and learns from their shared-weight
    accuracy), `"darts"` (Liu et al. 2019; `order=1` or `2`,
    `parameter_free_limit` and `max_parameter_free` against its collapse) and
    `"gdas"` (Gumbel-softmax).
    The strategies `"oneshot"`, `"spos"`, `"enas"`, `"darts"` and `"gdas"` of
    `kerasnas.Search` are this oracle with that method.

    The trials are ordinary kerasnas trials: each trains its architecture's
    standalone Keras model for `retrain_epochs` (or `fit`'s `epochs`) and
    records the objective, `params` and `train_time`. The ranking, each
    candidate's one-shot score and the supernet's history are saved in the
    oracle state and in `oneshot.json` of the project, the supernet's weights
    in `oneshot/supernet.weights.h5`; a resumed search does not train the
    supernet again.

    Args:
        space: A `NASBench201Space` or `NASNetSpace`.
        method: One of `"uniform"`, `"spos"`, `"enas"`, `"darts"`, `"gdas"`.
            Defaults to `"uniform"`.
        supernet_epochs: Passes of supernet training over the training data.
            Defaults to enough passes for 300,000 examples, at least 10 (see
            `kerasnas.oneshot.methods.run`).
        batch_size: Batch size of the supernet's weight steps. Defaults to
            the method's: 32 for uniform and SPOS, 64 for the others.
        learning_rate: Initial learning rate of the shared weights (cosine
            decay). Defaults to the optimizer's: 2e-3 for Adam, 0.05 for SGD.
        optimizer: Of the shared weights: `"sgd"` (Nesterov momentum) or
            `"adam"`. Defaults to the method's: Adam for uniform and SPOS
            (what ranked architectures in `benchmarks/ranking.py`), SGD for
            ENAS, DARTS and GDAS (as their papers).
        weight_decay: L2 coefficient on active kernels. Defaults to 3e-4.
        num_candidates: Architectures ranked after training. Defaults to 100.
        calibration_batches: Training batches that recompute a candidate's
            BatchNorm statistics before it is scored. Defaults to 10.
        rank_by: What uniform, SPOS and ENAS rank candidates by: `"loss"`
            (their one-shot validation cross-entropy, lowest first) or
            `"accuracy"`. Defaults to `"loss"`, which ranked architectures
            closer to their standalone accuracy in `benchmarks/ranking.py`.
        init: `"scratch"`: trials train from freshly initialised weights;
            `"supernet"`: from the supernet's weights (with the path's
            recomputed BatchNorm statistics). Defaults to `"scratch"`.
        retrain_epochs: Training epochs of each trial. Defaults to the
            `epochs` given to `fit`.
        options: Method options (see `kerasnas.oneshot.methods.run`), e.g.
            `{"order": 2}` for second-order DARTS or `{"drop_max": 0.7}`.
        **kwargs: `NasOracle` arguments: `objective`, `max_trials` (trials
            trained from the ranking), `seed`, and keras-tuner `Oracle`
            arguments.
    """

    #: Command-line flags (`python -m kerasnas`) -> the constructor arguments they set
    #: (inherited by the SPOS, ENAS, DARTS and GDAS oracles).
    cli_flags = CLI_FLAGS

    # The supernet is trained in `prepare`, which only kerasnas's trial runner calls,
    # and it ranks candidates by their accuracy on validation data.
    needs_runner = True
    supports_halving = False  # Its trials retrain the supernet's choices, not candidates.
    needs_validation_data = True

    def __init__(
        self,
        space: SearchSpace,
        method: str = "uniform",
        *,
        supernet_epochs: int | None = None,
        batch_size: int | None = None,
        learning_rate: float | None = None,
        optimizer: str | None = None,
        weight_decay: float = 3e-4,
        num_candidates: int = 100,
        calibration_batches: int = 10,
        rank_by: str = "loss",
        init: str = "scratch",
        retrain_epochs: int | None = None,
        options: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        from kerasnas.oneshot.methods import METHODS, supernet_class
        from kerasnas.oneshot.train import check_optimizer, check_rank_by

        supernet_class(space)  # A space without a supernet is refused before any work.
        backend.require_tensorflow(
            f"One-shot search (method {method!r}: its supernet's training loop)",
            "the strategies 'random', 'evolution', 'local', 'bananas', 'controller' or 'morphism'",
        )
        if method not in METHODS:
            raise ValueError(f"Unknown one-shot method {method!r}. Choose one of {list(METHODS)}.")
        if optimizer is not None:
            check_optimizer(optimizer)  # Before any work, as the other arguments.
        check_rank_by(rank_by)
        if init not in INITS:
            raise ValueError(f"init must be one of {list(INITS)}. Received: init={init!r}.")
        if retrain_epochs is not None and (
            not isinstance(retrain_epochs, int) or retrain_epochs < 1
        ):
            raise ValueError(
                f"retrain_epochs must be an integer >= 1 (or None for fit's epochs). "
                f"Received: {retrain_epochs!r}."
            )
        if supernet_epochs is not None and (
            not isinstance(supernet_epochs, int) or supernet_epochs < 1
        ):
            raise ValueError(
                f"supernet_epochs must be an integer >= 1 (or None for the default). "
                f"Received: {supernet_epochs!r}."
            )
        super().__init__(space, **kwargs)
        if num_candidates < self.max_trials:
            raise ValueError(
                f"num_candidates ({num_candidates}) must be at least max_trials "
                f"({self.max_trials}): the trials train the best-ranked candidates."
            )
        self.method = method
        self.supernet_epochs = supernet_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.num_candidates = num_candidates
        self.calibration_batches = calibration_batches
        self.rank_by = rank_by
        self.init = init
        self.retrain_epochs = retrain_epochs
        self.options = dict(options or {})
        self.ranking: list[dict[str, Any]] = []  # {"values", "score", "init"} best first
        self.summary: dict[str, Any] = {}
        self._next = 0

    def trial_epochs(self, trial: trial_module.Trial) -> int | None:
        """Epochs each trial trains for: `retrain_epochs` (None: `fit`'s `epochs`)."""
        return self.retrain_epochs

    def trial_settings(self) -> dict[str, Any]:
        """The method, and how trials start and how long they train."""
        return {"method": self.method, "init": self.init, "retrain_epochs": self.retrain_epochs}

    def model_for_trial(self, trial: trial_module.Trial, context: TrialContext) -> keras.Model:
        """The space's model, or with `init="supernet"` the candidate exported from it."""
        path = context.plan.init_weights
        if not path:
            return context.build()
        return context.compile(load_candidate(path, self.space, context))

    # -- The one-shot phase --------------------------------------------------------
    def prepare(self, context: SearchContext) -> None:
        """Trains the supernet and ranks candidates, unless a resumed state has a ranking.

        The `context` gives the training and validation data (batched
        `tf.data.Dataset`s), the project directory (for the supernet's files),
        the distribution strategy of the supernet's weight steps, and whether
        to report progress.
        """
        train, validation = context.train, context.validation
        directory, progress = context.directory, context.progress
        distribution_strategy = context.distribution_strategy
        if validation is None:
            raise ValueError(
                f"{type(self).__name__} ranks architectures by their accuracy on validation "
                "data (one-shot search); pass validation_data=(x_val, y_val) to fit()."
            )
        saved = os.path.join(directory, "oneshot.json")
        if not self.ranking and os.path.exists(saved):  # The oracle's state was lost.
            stored = read_json(saved)
            self.ranking = stored.pop("ranking")
            self.summary = stored
        if self.ranking:
            if progress:
                log.info(
                    "one-shot ranking of %d candidates restored; the supernet is not trained again",
                    len(self.ranking),
                )
            return
        from kerasnas.oneshot import methods

        start = time.perf_counter()
        supernet = methods.build_supernet(self.space, distribution_strategy)
        if progress:
            log.info(
                "one-shot search (%s): supernet with %s weights, %d slots",
                self.method,
                f"{supernet.count_params():,}",
                supernet.num_slots,
            )
        result = methods.run(
            self.method,
            supernet,
            train,
            validation,
            epochs=self.supernet_epochs,
            batch_size=self.batch_size,
            seed=self.seed,
            learning_rate=self.learning_rate,
            optimizer=self.optimizer,
            weight_decay=self.weight_decay,
            num_candidates=self.num_candidates,
            calibration_batches=self.calibration_batches,
            rank_by=self.rank_by,
            distribution_strategy=distribution_strategy,
            progress=progress,
            **self.options,
        )
        folder = os.path.join(directory, "oneshot")
        os.makedirs(folder, exist_ok=True)
        supernet.save_weights(os.path.join(folder, "supernet.weights.h5"))
        ranking = []
        for i, (values, score) in enumerate(zip(result.ranking, result.scores, strict=True)):
            entry: dict[str, Any] = {"values": values, "score": score}
            if self.init == "supernet" and i < self.max_trials:
                entry["init"] = self._export(
                    result, values, os.path.join(folder, f"candidate_{i}.keras")
                )
            ranking.append(entry)
        self.summary = {
            "method": self.method,
            "supernet_params": int(supernet.count_params()),
            "supernet_epochs": result.settings["epochs"],
            "supernet_settings": result.settings,
            "rank_by": self.rank_by,
            "train_time": result.train_time,
            "rank_time": result.rank_time,
            "total_time": time.perf_counter() - start,
            "history": result.history,
        }
        write_json(
            os.path.join(directory, "oneshot.json"),
            {**self.summary, "ranking": ranking},
            indent=2,
        )
        self.ranking = ranking
        self.save()

    def _export(self, result: Any, values: dict[str, Any], path: str) -> str:
        """Writes a candidate's standalone model, initialised from the supernet."""
        path_weights = result.supernet.path(values)
        result.trainer.calibrate(result.calibration, path_weights, self.calibration_batches)
        result.supernet.export_path(values).save(path)
        return path

    # -- Trials ---------------------------------------------------------------------
    def populate_space(self, trial_id: str) -> dict[str, Any]:
        if not self.ranking:
            return self.stop(
                "the one-shot ranking is empty: the trial runner's prepare hook trains "
                "the supernet first (kerasnas.Search or kerasnas.NasTuner)"
            )
        self._next, entry, arch = self.next_new(self.ranking, self._next, self._decode)
        if arch is not None:
            return self.propose(arch, TrialPlan(init_weights=entry.get("init") or None))
        return self.stop(f"all {len(self.ranking)} ranked candidates have been trained")

    def _decode(self, entry: dict[str, Any]) -> Architecture:
        return self.space.decode(entry["values"])

    def get_state(self) -> dict[str, Any]:
        return {
            **super().get_state(),
            "ranking": self.ranking,
            "summary": self.summary,
            "next": self._next,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.ranking = state["ranking"]
        self.summary = state.get("summary", {})
        self._next = state.get("next", 0)


class SPOSOracle(OneShotOracle):
    """`OneShotOracle` with `method="spos"` (strategy `"spos"`)."""

    def __init__(self, space: SearchSpace, **kwargs: Any):
        super().__init__(space, method=kwargs.pop("method", "spos"), **kwargs)


class ENASOracle(OneShotOracle):
    """`OneShotOracle` with `method="enas"` (strategy `"enas"`)."""

    def __init__(self, space: SearchSpace, **kwargs: Any):
        super().__init__(space, method=kwargs.pop("method", "enas"), **kwargs)


class DARTSOracle(OneShotOracle):
    """`OneShotOracle` with `method="darts"` (strategy `"darts"`)."""

    def __init__(self, space: SearchSpace, **kwargs: Any):
        super().__init__(space, method=kwargs.pop("method", "darts"), **kwargs)


class GDASOracle(OneShotOracle):
    """`OneShotOracle` with `method="gdas"` (strategy `"gdas"`)."""

    def __init__(self, space: SearchSpace, **kwargs: Any):
        super().__init__(space, method=kwargs.pop("method", "gdas"), **kwargs)
