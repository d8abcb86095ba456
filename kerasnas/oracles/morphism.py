"""Network-morphism search: Auto-Keras's Bayesian optimisation, and hill climbing."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras_tuner.engine import trial as trial_module

from kerasnas.architecture import Architecture
from kerasnas.cli.registry import Flag
from kerasnas.morph import bayesian, inherit, lineage, transforms
from kerasnas.morph import graph as graph_module
from kerasnas.morph.channels import MorphError
from kerasnas.morph.descriptor import Descriptor, describe
from kerasnas.oracles.base import NasOracle, TrialContext
from kerasnas.plan import TrialPlan
from kerasnas.spaces.base import SearchSpace
from kerasnas.spaces.nasnet import DEFAULT_OPS

MODES = ("bayesian", "hill_climb")


#: The command-line flags of `MorphismOracle` (its `cli_flags`; see kerasnas.cli.registry).
CLI_FLAGS = {
    "morphism_mode": Flag(
        "mode",
        type=str,
        choices=MODES,
        help="bayesian (Auto-Keras: GP with an edit-distance kernel) or hill_climb (NASH)",
    ),
    "morphism_max_ops": Flag(
        "max_ops", type=int, lower_bound=1, help="Most ops between parent and child"
    ),
    "max_params": Flag(
        "max_params",
        type=int,
        lower_bound=1,
        default_text="no limit",
        help="No network with more parameters",
    ),
    "max_layers": Flag(
        "max_layers",
        type=int,
        lower_bound=1,
        default_text="no limit",
        help="No network with more convolution and dense layers",
    ),
}


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
    noise), so its `model_for_trial` hook can rebuild the parent, load its
    checkpoint and apply the new ops (`kerasnas.morph.inherit`). It needs
    kerasnas's trial runner (`kn.Search` or `kn.NasTuner`), which calls that
    hook: a plain `keras_tuner.Tuner` is refused. When the checkpoint is
    missing the child trains from scratch and its trial records
    `inherited=0`. The GP is refitted from the trial store at every
    proposal and the descriptors of trained networks are saved with the
    oracle's state, so a resumed search (`overwrite=False`) continues with
    the same data; several trials in flight use what has finished.

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

    #: Command-line flags (`python -m kerasnas`) -> the constructor arguments they set.
    cli_flags = CLI_FLAGS

    needs_runner, supports_halving = True, False  # Children grow in `model_for_trial`.

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
        _check_arguments(
            mode, initial_trials, max_ops, num_candidates, max_params, max_layers, kinds,
            beta, noise, learning_rate_scale, temperature, cooling,
        )  # fmt: skip
        _check_space(space)
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
        self._network_keys: dict[str, str] = {}  # trial id -> the hash of its network
        self._distances: dict[tuple[str, str], float] = {}
        self._graphs: OrderedDict[str, graph_module.Graph] = OrderedDict()
        self._over_limits = 0
        # The op targets of the last graph expanded (the graph is kept so its id stays unique).
        self._found: tuple[int, graph_module.Graph, dict[str, list[tuple]]] | None = None

    # -- Proposals ------------------------------------------------------------
    def populate_space(self, trial_id: str) -> dict[str, Any]:
        rng = self.rng()
        trained = self.finished_trials()
        if len(self.start_order) < self.initial_trials or not trained:
            return self._propose_root(rng)
        self._over_limits = 0
        if self.mode == "hill_climb":
            child = self._hill_climb(trained, rng)
        else:
            child = self._bayesian(trained, rng)
        if child is None:
            reason = f"no new morphism of the {len(trained)} trained networks"
            if self._over_limits:
                return self.stop(
                    f"{reason} fits within {self._limits_text()} ({self._over_limits} "
                    "candidates were over the limits); raise the limits to go on"
                )
            return self.stop(f"{reason} was found (max_ops={self.max_ops}); raise max_ops to go on")
        parent, ops = child
        parent_ops = self._ops(parent)
        grown = lineage.Lineage(
            ops=parent_ops + tuple(ops),
            parent=parent.trial_id,
            parent_ops=len(parent_ops),
            noise=self.noise,
            lr_scale=self.learning_rate_scale,
        )
        return self.propose(self.architecture_of_root(parent), TrialPlan(lineage=grown))

    def _ops(self, trial: trial_module.Trial) -> tuple[str, ...]:
        """The morphism ops a trial's network applies to its root ((): a root)."""
        found = self.plan(trial.trial_id).lineage
        return () if found is None else found.ops

    def architecture_of_root(self, trial: trial_module.Trial) -> Architecture:
        """The root architecture a trial's network grows from."""
        return self.space.decode(trial.hyperparameters.values)

    def _propose_root(self, rng: np.random.Generator) -> dict[str, Any]:
        for _ in range(self.max_collisions):
            arch = self.sample_new(rng)
            if arch is None:
                break
            graph = lineage.graph(self.space, self.space.encode(arch))
            if _within(graph, self.max_params, self.max_layers):
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
        return bayesian.best_child(
            self._fit_gp(trained), trained, self._graph, self._descriptor, self._grow, rng,
            num_candidates=self.num_candidates, max_ops=self.max_ops,
            temperature=self.temperature, cooling=self.cooling,
        )  # fmt: skip

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
        network = lineage.key(self.architecture_of_root(parent), self._ops(parent) + tuple(new))
        if network in self._networks():
            return None
        if not _within(child, self.max_params, self.max_layers):
            self._over_limits += 1
            return None
        return child, new

    def _candidates(self, graph: graph_module.Graph) -> dict[str, list[tuple]]:
        key = id(graph)
        if self._found is None or self._found[0] != key:
            self._found = (key, graph, transforms.candidates(graph))
        return self._found[2]

    # -- The Gaussian process ---------------------------------------------------
    def _fit_gp(self, trained: list[trial_module.Trial]) -> bayesian.GaussianProcess:
        maximize = self.objective.direction == "max"
        return bayesian.fit(trained, self._descriptor, self._distances, maximize, self.beta)

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
        graph = lineage.graph(self.space, trial.hyperparameters.values, self._ops(trial))
        self._graphs[trial.trial_id] = graph
        if len(self._graphs) > 64:
            self._graphs.popitem(last=False)
        return graph

    def _limits_text(self) -> str:
        return f"max_params={self.max_params} and max_layers={self.max_layers}"

    # -- Hooks of the trial runner ----------------------------------------------
    def model_for_trial(self, trial: trial_module.Trial, context: TrialContext) -> keras.Model:
        """The root's model grown by the trial's ops, from the parent's trained weights."""
        found = context.plan.lineage
        root = context.build()
        return root if found is None else inherit.grow(root, found, context)

    def network_hash(self, trial: trial_module.Trial) -> str:
        """The root architecture's hash, or for a grown network a hash of it and its ops."""
        return lineage.key(self.architecture_of_root(trial), self._ops(trial))

    def _networks(self) -> set[str]:
        """The hashes of the networks of every trial so far (cached per trial)."""
        for trial_id, trial in self.trials.items():
            if trial_id not in self._network_keys:
                self._network_keys[trial_id] = self.network_hash(trial)
        return set(self._network_keys.values())

    def trial_details(self, trial: trial_module.Trial) -> dict[str, Any]:
        """`{"morph": {"parent", "ops", "inherited"}}` for a grown network, else {}."""
        found = self.plan(trial.trial_id).lineage
        if found is None or not found.ops:
            return {}
        inherited = None
        if trial.metrics.exists(inherit.INHERITED):
            inherited = bool(trial.metrics.get_last_value(inherit.INHERITED))
        return {"morph": {"parent": found.parent, "ops": list(found.ops), "inherited": inherited}}

    def architecture(self, trial: trial_module.Trial) -> Architecture:
        """The architecture of a root trial; a grown network has none (ValueError)."""
        if self._ops(trial):
            raise ValueError(
                f"Trial {trial.trial_id} trained a network grown by morphism ops, which "
                "no architecture of the space describes. Use best_model() for the "
                "model, or results() for its root architecture and ops."
            )
        return super().architecture(trial)

    # -- keras-tuner hooks ---------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state["morph"] = {"descriptors": {k: d.to_config() for k, d in self._descriptors.items()}}
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        saved = state["morph"]["descriptors"]
        self._descriptors = {k: Descriptor.from_config(v) for k, v in saved.items()}


def _within(graph: graph_module.Graph, max_params: int | None, max_layers: int | None) -> bool:
    if max_params is not None and _count_params(graph) > max_params:
        return False
    return max_layers is None or describe(graph).num_layers <= max_layers


def _count_params(graph: graph_module.Graph) -> int:
    return int(sum(w.size for node in graph.nodes.values() for w in node.weights.values()))


def _check_space(space: SearchSpace) -> None:
    """Refuses a space whose models `kerasnas.morph` cannot transform."""
    if not isinstance(space, SearchSpace):
        return  # NasOracle names the problem.
    if not getattr(space, "morphable", True):
        raise ValueError(
            f"MorphismOracle cannot search a {type(space).__name__}: kerasnas.morph does not "
            "transform its models. Search it with 'random', 'grid', 'evolution', 'local', "
            "'bananas' or 'controller', or search an image space (ChainSpace, NASNetSpace, "
            "ConvNetSpace, MacroSpace, NASBench101Space, NASBench201Space) with morphism."
        )


def _check_arguments(
    mode, initial_trials, max_ops, num_candidates, max_params, max_layers, kinds,
    beta, noise, learning_rate_scale, temperature, cooling,
) -> None:  # fmt: skip
    """Raises ValueError naming the first bad argument of `MorphismOracle`."""
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
