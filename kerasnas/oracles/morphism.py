"""Network-morphism search: Auto-Keras's Bayesian optimisation, and hill climbing."""

from __future__ import annotations

import heapq
import itertools
import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
from keras_tuner.src.engine import trial as trial_module

from kerasnas.architecture import Architecture
from kerasnas.morph import graph as graph_module
from kerasnas.morph import lineage, transforms
from kerasnas.morph.channels import MorphError
from kerasnas.morph.descriptor import Descriptor, describe, distance
from kerasnas.oracles.base import NasOracle
from kerasnas.spaces.base import SearchSpace
from kerasnas.spaces.nasnet import DEFAULT_OPS

MODES = ("bayesian", "hill_climb")


class MorphismOracle(NasOracle):
    """Network-morphism search (Jin, Song & Hu, "Auto-Keras: An Efficient
    Neural Architecture Search System", KDD 2019; Elsken, Metzen & Hutter,
    "Simple and Efficient Architecture Search for CNNs" (NASH), 2017).

    ```
    the first `initial_trials` trials: random architectures of the space
    then, for each trial:
        bayesian:   fit a Gaussian process to (network, score) of the trained
                    trials, with Auto-Keras's edit-distance kernel; simulated
                    annealing over sequences of up to `max_ops` morphisms from
                    the trained networks finds the child of highest
                    upper-confidence bound  mean + beta * std
        hill_climb: the child is the best trained network plus 1 to
                    `max_ops` random morphisms
    the child starts from its parent's trained weights (kerasnas.morph keeps
    the function), then trains
    ```

    A child's trial values hold the root architecture's decisions plus its
    lineage (`kerasnas.morph.lineage`: the op strings, the parent trial, the
    noise), so `NasTuner` can rebuild the parent, load its checkpoint and
    apply the new ops; when the checkpoint is missing the child trains from
    scratch and its trial records `inherited=0`. The GP is refitted from the
    trial store at every proposal and the descriptors of trained networks are
    saved with the oracle's state, so a resumed search (`overwrite=False`)
    continues with the same data; several trials in flight use what has
    finished.

    Args:
        space: The space of the root architectures (a space whose models
            `kerasnas.morph` can transform, e.g. `ChainSpace` or
            `NASNetSpace`).
        mode: `"bayesian"` (Auto-Keras) or `"hill_climb"` (NASH). Defaults
            to `"bayesian"`.
        initial_trials: Random root architectures trained first. Defaults to 3.
        max_ops: Most morphisms between a parent and its child. Defaults to 3.
        max_params: Children (and roots) with more parameters are not
            proposed. Defaults to no limit.
        max_layers: Children (and roots) with more weighted layers
            (convolutions and dense layers) are not proposed. Defaults to no
            limit.
        kinds: Morphism kinds to use (`kerasnas.morph.KINDS`). Defaults to all.
        block_ops: Ops of new cell blocks. Defaults to NASNet's default ops.
        beta: Weight of the GP's standard deviation in the acquisition.
            Defaults to 2.576, Auto-Keras's value.
        num_candidates: Children whose acquisition the annealing evaluates
            per proposal. Defaults to 40.
        temperature: Start temperature of the annealing (in units of the
            normalised score); it is multiplied by `cooling` after each
            expansion. Defaults to 1.0 and 0.85.
        cooling: See `temperature`.
        noise: Net2Net noise added to copied units' weights in children, so
            that they can learn different features (the function is still
            preserved). Defaults to 0.05.
        learning_rate_scale: A child that inherits trains at its parent's
            learning rate times this: fine-tuning a trained network with a
            fresh optimizer at the from-scratch rate throws much of what it
            learnt away (as Net2Net notes). Defaults to 0.1.
        **kwargs: `NasOracle` arguments: `objective`, `max_trials`, `seed`, ...
    """

    def __init__(
        self,
        space: SearchSpace,
        mode: str = "bayesian",
        initial_trials: int = 3,
        max_ops: int = 3,
        max_params: int | None = None,
        max_layers: int | None = None,
        kinds: Sequence[str] = transforms.KINDS,
        block_ops: Sequence[str] = DEFAULT_OPS,
        beta: float = 2.576,
        num_candidates: int = 40,
        temperature: float = 1.0,
        cooling: float = 0.85,
        noise: float = 0.05,
        learning_rate_scale: float = 0.1,
        **kwargs: Any,
    ):
        if mode not in MODES:
            raise ValueError(f"Unknown mode {mode!r}; choose one of {list(MODES)}.")
        for name, value in (
            ("initial_trials", initial_trials),
            ("max_ops", max_ops),
            ("num_candidates", num_candidates),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1. Received: {name}={value!r}.")
        for name, value in (("max_params", max_params), ("max_layers", max_layers)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(
                    f"{name} must be a positive integer or None. Received: {name}={value!r}."
                )
        unknown = set(kinds) - set(transforms.KINDS)
        if unknown or not kinds:
            raise ValueError(
                f"kinds must be a non-empty subset of {list(transforms.KINDS)}. "
                f"Received: {list(kinds)}."
            )
        if beta < 0 or noise < 0:
            raise ValueError(f"beta and noise must be >= 0. Received: {beta}, {noise}.")
        if not learning_rate_scale > 0:
            raise ValueError(f"learning_rate_scale must be > 0. Received: {learning_rate_scale}.")
        if temperature <= 0 or not 0 < cooling < 1:
            raise ValueError(
                "temperature must be > 0 and cooling in (0, 1). "
                f"Received: temperature={temperature}, cooling={cooling}."
            )
        super().__init__(space, **kwargs)
        self.mode = mode
        self.initial_trials = initial_trials
        self.max_ops = max_ops
        self.max_params = max_params
        self.max_layers = max_layers
        self.kinds = tuple(kinds)
        self.block_ops = tuple(block_ops)
        self.beta = float(beta)
        self.num_candidates = num_candidates
        self.temperature = float(temperature)
        self.cooling = float(cooling)
        self.noise = float(noise)
        self.learning_rate_scale = float(learning_rate_scale)
        self._descriptors: dict[str, Descriptor] = {}
        self._distances: dict[tuple[str, str], float] = {}
        self._graphs: OrderedDict[str, graph_module.Graph] = OrderedDict()
        self._over_limits = 0
        # The op targets of the last graph expanded (the graph is kept so its id stays unique).
        self._found: tuple[int, graph_module.Graph, dict[str, list[tuple]]] | None = None

    # -- Proposals ------------------------------------------------------------
    def propose(self, arch: Architecture) -> dict[str, Any]:
        """A root trial: `arch` with an empty lineage."""
        values = {**self.space.encode(arch), **lineage.Lineage(noise=self.noise).values()}
        return {"status": trial_module.TrialStatus.RUNNING, "values": values}

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        rng = self.rng()
        trained = self.trained()
        if len(self.start_order) < self.initial_trials or not trained:
            return self._propose_root(rng)
        self._over_limits = 0
        if self.mode == "hill_climb":
            child = self._hill_climb(trained, rng)
        else:
            child = self._bayesian(trained, rng)
        if child is None:
            return self.stop(self._exhausted_message(len(trained)))
        parent, ops = child
        parent_lineage = lineage.of(parent.hyperparameters.values) or lineage.Lineage()
        values = {
            **self._root_values(parent),
            **lineage.Lineage(
                ops=parent_lineage.ops + tuple(ops),
                parent=parent.trial_id,
                parent_ops=len(parent_lineage.ops),
                noise=self.noise,
                lr_scale=self.learning_rate_scale,
            ).values(),
        }
        return {"status": trial_module.TrialStatus.RUNNING, "values": values}

    def trained(self) -> list[trial_module.Trial]:
        """The completed trials with a score, in the order they finished."""
        return [
            self.trials[t]
            for t in self.end_order
            if self.trials[t].status == trial_module.TrialStatus.COMPLETED
            and self.trials[t].score is not None
        ]

    def _propose_root(self, rng: np.random.Generator) -> dict[str, Any]:
        for _ in range(self.max_collisions):
            arch = self.sample_new(rng)
            if arch is None:
                break
            graph = self._graph_of(self.space.encode(arch))
            if self._within_limits(graph):
                return self.propose(arch)
        return self.stop(
            "no new root architecture of the space fits within "
            f"{self._limits_text()}; raise the limits or use a smaller space"
        )

    def _hill_climb(
        self, trained: list[trial_module.Trial], rng: np.random.Generator
    ) -> tuple[trial_module.Trial, list[str]] | None:
        better = max if self.objective.direction == "max" else min
        parent = better(trained, key=lambda t: t.score)
        for _ in range(self.max_collisions):
            count = int(rng.integers(1, self.max_ops + 1))
            found = self._grow(parent, self._graph(parent), [], count, rng)
            if found is not None:
                return parent, found[1]
        return None

    def _bayesian(
        self, trained: list[trial_module.Trial], rng: np.random.Generator
    ) -> tuple[trial_module.Trial, list[str]] | None:
        gp = self._fit_gp(trained)
        counter = itertools.count()
        heap: list[tuple[float, int, trial_module.Trial, graph_module.Graph, list[str]]] = []
        for trial in trained:
            own = gp.ucb(self._descriptor(trial))
            heapq.heappush(heap, (-own, next(counter), trial, self._graph(trial), []))
        best: tuple[float, trial_module.Trial, list[str]] | None = None
        temperature, evaluated = self.temperature, 0
        while heap and evaluated < self.num_candidates:
            negative, _, parent, graph, ops = heapq.heappop(heap)
            if len(ops) >= self.max_ops:
                continue
            for _ in range(3):  # Neighbours of each expanded network.
                found = self._grow(parent, graph, ops, 1, rng)
                if found is None:
                    continue
                child_graph, child_ops = found
                value = gp.ucb(describe(child_graph))
                evaluated += 1
                if best is None or value > best[0]:
                    best = (value, parent, child_ops)
                delta = value + negative
                if delta > 0 or rng.random() < math.exp(delta / temperature):
                    heapq.heappush(heap, (-value, next(counter), parent, child_graph, child_ops))
            temperature = max(temperature * self.cooling, 1e-3)
        return None if best is None else (best[1], best[2])

    def _grow(
        self,
        parent: trial_module.Trial,
        graph: graph_module.Graph,
        ops: list[str],
        count: int,
        rng: np.random.Generator,
    ) -> tuple[graph_module.Graph, list[str]] | None:
        """`count` random morphisms on top of `graph` (the parent's plus `ops`),
        if the result is new and within the limits; else None."""
        child, new = graph.copy(), list(ops)
        try:
            for step in range(count):
                # The targets of the first op are those of `graph`: computed once per graph.
                found = self._candidates(graph) if step == 0 else None
                op = transforms.propose(child, rng, self.kinds, self.block_ops, found)
                transforms.apply_op(child, op, rng)
                new.append(op)
        except MorphError:
            return None
        values = dict(parent.hyperparameters.values)
        parent_ops = (lineage.of(values) or lineage.Lineage()).ops
        values.update(lineage.Lineage(ops=parent_ops + tuple(new)).values())
        if self._compute_values_hash(values) in self._tried_so_far:
            return None
        if not self._within_limits(child):
            self._over_limits += 1
            return None
        return child, new

    def _candidates(self, graph: graph_module.Graph) -> dict[str, list[tuple]]:
        key = id(graph)
        if self._found is None or self._found[0] != key:
            self._found = (key, graph, transforms.candidates(graph))
        return self._found[2]

    # -- The Gaussian process ---------------------------------------------------
    def _fit_gp(self, trained: list[trial_module.Trial]) -> _GaussianProcess:
        ids = [t.trial_id for t in trained]
        descriptors = [self._descriptor(t) for t in trained]
        n = len(ids)
        d = np.zeros((n, n))
        for i in range(n):
            for j in range(i + 1, n):
                pair = (ids[i], ids[j])
                if pair not in self._distances:
                    self._distances[pair] = distance(descriptors[i], descriptors[j])
                d[i, j] = d[j, i] = self._distances[pair]
        sign = 1.0 if self.objective.direction == "max" else -1.0
        scores = np.array([sign * t.score for t in trained], dtype=np.float64)
        return _GaussianProcess(descriptors, d, scores, self.beta)

    def _descriptor(self, trial: trial_module.Trial) -> Descriptor:
        if trial.trial_id not in self._descriptors:
            self._descriptors[trial.trial_id] = describe(self._graph(trial))
        return self._descriptors[trial.trial_id]

    # -- Networks of trials ----------------------------------------------------
    def _graph(self, trial: trial_module.Trial) -> graph_module.Graph:
        """The morph graph of a trial's network (weights untrained), cached."""
        if trial.trial_id in self._graphs:
            self._graphs.move_to_end(trial.trial_id)
            return self._graphs[trial.trial_id]
        graph = self._graph_of(trial.hyperparameters.values)
        self._graphs[trial.trial_id] = graph
        if len(self._graphs) > 64:
            self._graphs.popitem(last=False)
        return graph

    def _graph_of(self, values: dict[str, Any]) -> graph_module.Graph:
        graph = graph_module.from_model(self.space.build(self.space.decode(values)))
        rng = np.random.default_rng(0)
        for op in (lineage.of(values) or lineage.Lineage()).ops:
            transforms.apply_op(graph, op, rng)
        return graph

    def _root_values(self, trial: trial_module.Trial) -> dict[str, Any]:
        values = trial.hyperparameters.values
        return {k: v for k, v in values.items() if k not in lineage.KEYS}

    def _within_limits(self, graph: graph_module.Graph) -> bool:
        if self.max_params is not None and _count_params(graph) > self.max_params:
            return False
        return self.max_layers is None or describe(graph).num_layers <= self.max_layers

    def _limits_text(self) -> str:
        return f"max_params={self.max_params} and max_layers={self.max_layers}"

    def _exhausted_message(self, trained: int) -> str:
        reason = f"no new morphism of the {trained} trained networks"
        if self._over_limits:
            return (
                f"{reason} fits within {self._limits_text()} ({self._over_limits} "
                "candidates were over the limits); raise the limits to go on"
            )
        return f"{reason} was found (max_ops={self.max_ops}); raise max_ops to go on"

    # -- keras-tuner hooks ---------------------------------------------------------
    def _compute_values_hash(self, values: Any) -> str:
        return lineage.key(self.space.decode(values), values)

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state["morph"] = {"descriptors": {k: d.to_config() for k, d in self._descriptors.items()}}
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        saved = state["morph"]["descriptors"]
        self._descriptors = {k: Descriptor.from_config(v) for k, v in saved.items()}


def _count_params(graph: graph_module.Graph) -> int:
    return int(sum(w.size for node in graph.nodes.values() for w in node.weights.values()))


class _GaussianProcess:
    """GP regression on scores with the kernel exp(-distance / scale).

    The scale is the median distance between trained networks; the scores
    are standardised; the edit distance does not make the kernel positive
    definite in general, so jitter is added to the diagonal until the
    Cholesky factorisation succeeds.
    """

    def __init__(
        self, descriptors: list[Descriptor], distances: np.ndarray, y: np.ndarray, beta: float
    ):
        self.descriptors, self.beta = descriptors, beta
        positive = distances[distances > 0]
        self.scale = float(np.median(positive)) if positive.size else 1.0
        self.mean = float(y.mean())
        self.std = float(y.std()) or 1.0
        k = np.exp(-distances / self.scale)
        jitter = 1e-2
        while True:
            try:
                self.chol = np.linalg.cholesky(k + jitter * np.eye(len(y)))
                break
            except np.linalg.LinAlgError:
                jitter *= 10
        self.alpha = np.linalg.solve(
            self.chol.T, np.linalg.solve(self.chol, (y - self.mean) / self.std)
        )

    def predict(self, descriptor: Descriptor) -> tuple[float, float]:
        """Mean and standard deviation of the score of a network."""
        k = np.exp(-np.array([distance(descriptor, d) for d in self.descriptors]) / self.scale)
        v = np.linalg.solve(self.chol, k)
        mean = float(k @ self.alpha)
        var = max(1.0 - float(v @ v), 0.0)
        return mean * self.std + self.mean, math.sqrt(var) * self.std

    def ucb(self, descriptor: Descriptor) -> float:
        mean, std = self.predict(descriptor)
        return (mean - self.mean) / self.std + self.beta * std / self.std
