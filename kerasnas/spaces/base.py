"""What every search space offers: ordered decisions, sampling, encoding, building."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import keras
import keras_tuner
import numpy as np

from kerasnas.architecture import Architecture, Scalar
from kerasnas.errors import OutOfSpaceError

# Spaces with at most this many decision combinations can be enumerated.
ENUMERATION_LIMIT = 100_000
#: Neighbours of one architecture a strategy lists before choosing among them (a large
#: cell space has thousands; the shared tables' spaces have at most 21).
NEIGHBOUR_LIMIT = 1000


@dataclasses.dataclass(frozen=True)
class Decision:
    """One decision of a search space.

    Args:
        name: Unique name, also the keras-tuner hyperparameter name
            (e.g. `"normal/block_0/op_a"`).
        choices: The values it can take (all bools, ints, floats or strs).
        parent: Name of an earlier decision this one depends on, or None.
        parent_values: The parent's values for which this decision is active.
    """

    name: str
    choices: tuple[Scalar, ...]
    parent: str | None = None
    parent_values: tuple[Scalar, ...] = ()

    def is_active(self, values: Mapping[str, Scalar]) -> bool:
        return self.parent is None or values.get(self.parent) in self.parent_values


class SearchSpace(keras_tuner.HyperModel):
    """Base class of kerasnas search spaces (a `keras_tuner.HyperModel`).

    A subclass declares its ordered `decisions`, maps decision values to an
    `Architecture` (`decode`) and back (`encode`), and builds a compiled
    Keras model from an architecture (`build_model`). Sampling, mutation,
    enumeration and the keras-tuner glue are shared.

    Args:
        num_classes: Number of classes; `Search.fit` fills it in from the
            labels when None.
        input_shape: Shape of one example without the batch axis; filled in
            from the data when None.
        name: The space's name.
    """

    #: Metrics the compiled models report (besides `loss`).
    metrics: tuple[str, ...] = ("accuracy",)
    #: Rank of one example the models take: 3 for images (height, width, channels).
    input_rank: int | None = 3

    def __init__(
        self,
        num_classes: int | None = None,
        input_shape: Sequence[int] | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name, tunable=True)
        self.num_classes = None
        self.input_shape = None
        self.configure(input_shape=input_shape, num_classes=num_classes)

    # -- What a subclass provides ------------------------------------------
    _decisions: tuple[Decision, ...]  # Set by the subclass before `super().__init__`.

    @property
    def decisions(self) -> tuple[Decision, ...]:
        """The space's decisions, in order."""
        return self._decisions

    def decode(self, values: Mapping[str, Scalar]) -> Architecture:
        raise NotImplementedError

    def encode(self, arch: Architecture) -> dict[str, Scalar]:
        raise NotImplementedError

    def build_model(self, arch: Architecture) -> keras.Model:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {
            "class": type(self).__name__,
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape) if self.input_shape else None,
        }

    def compile_metrics(self) -> list[Any]:
        """What the models are compiled with for `metrics`: names, or Keras metric objects."""
        return list(self.metrics)

    def compile_model(self, model: keras.Model) -> keras.Model:
        """Compiles a model of the space (e.g. a loaded or extracted one) as it compiles its own:
        Adam at the space's `learning_rate`, sparse cross-entropy, `compile_metrics()`."""
        model.compile(
            optimizer=keras.optimizers.Adam(getattr(self, "learning_rate", 1e-3)),
            loss="sparse_categorical_crossentropy",
            metrics=self.compile_metrics(),
        )
        return model

    def check_input_shape(self, input_shape: tuple[int, ...]) -> None:
        """Raises ValueError when examples of this shape cannot be modelled."""
        if self.input_rank == 3 and len(input_shape) != 3:
            raise ValueError(
                f"{type(self).__name__} needs images: examples of shape (height, width, "
                f"channels). Received examples of shape {input_shape}. Reshape flat "
                "features into images (e.g. x.reshape(-1, 8, 8, 1)), or add a channel "
                "axis to greyscale images (x[..., None])."
            )
        if self.input_rank is not None and len(input_shape) != self.input_rank:
            raise ValueError(
                f"{type(self).__name__} needs examples of rank {self.input_rank}. "
                f"Received examples of shape {input_shape}."
            )

    def labels_per_step(self, input_shape: tuple[int, ...]) -> bool:
        """Whether the models of examples of this shape take one label per step.

        False (one label per example, shape (N,)) unless a space predicts a
        label at every step of a sequence (`RNNCellSpace` on token sequences).
        """
        return False

    def key(self, values: Mapping[str, Scalar]) -> str:
        """The key of an architecture in tabular benchmarks of this space.

        Spaces with a published benchmark override it with the benchmark's
        own key (e.g. NAS-Bench-201's arch string); the default is the
        architecture's canonical hash.
        """
        return self.decode(values).hash()

    # -- Shared behaviour ---------------------------------------------------
    def configure(
        self,
        input_shape: Sequence[int] | None = None,
        num_classes: int | None = None,
    ) -> None:
        """Sets the input shape and class count, checking them against any set."""
        if input_shape is not None:
            shape = tuple(int(d) for d in input_shape)
            if any(d < 1 for d in shape):
                raise ValueError(f"input_shape must hold positive sizes. Received: {input_shape}.")
            self.check_input_shape(shape)
            if self.input_shape is not None and self.input_shape != shape:
                raise ValueError(
                    f"The data's examples have shape {shape} but the space was "
                    f"built for input_shape={self.input_shape}. Pass matching "
                    "data or leave input_shape out to take it from the data."
                )
            self.input_shape = shape
        if num_classes is not None:
            if int(num_classes) < 2:
                raise ValueError(f"num_classes must be at least 2. Received: {num_classes}.")
            if self.num_classes is not None and self.num_classes != int(num_classes):
                raise ValueError(
                    f"The space was built for num_classes={self.num_classes} "
                    f"but {num_classes} were asked for."
                )
            self.num_classes = int(num_classes)

    @property
    def is_configured(self) -> bool:
        return self.input_shape is not None and self.num_classes is not None

    def decision(self, name: str) -> Decision:
        for d in self.decisions:
            if d.name == name:
                return d
        raise KeyError(name)

    def active_decisions(self, values: Mapping[str, Scalar]) -> list[Decision]:
        return [d for d in self.decisions if d.is_active(values)]

    def check_values(self, values: Mapping[str, Scalar]) -> None:
        """Raises OutOfSpaceError unless `values` sets every active decision."""
        for d in self.active_decisions(values):
            if d.name not in values:
                raise OutOfSpaceError(f"Missing a value for decision {d.name!r}.")
            if values[d.name] not in d.choices:
                raise OutOfSpaceError(
                    f"Decision {d.name!r} cannot take {values[d.name]!r}; its "
                    f"choices are {list(d.choices)}."
                )

    def sample(self, rng: np.random.Generator) -> Architecture:
        """Draws each active decision uniformly at random."""
        values: dict[str, Scalar] = {}
        for d in self.decisions:
            if d.is_active(values):
                values[d.name] = _item(d.choices[rng.integers(len(d.choices))])
        return self.decode(values)

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """Changes one active decision (with more than one choice) at random.

        A change that leaves an isomorphic architecture (e.g. switching on an
        edge that a pruned cell cannot use) is no mutation: another is drawn,
        so the result always has a different hash.
        """
        values = self.encode(arch)
        mutable = [d for d in self.active_decisions(values) if len(d.choices) > 1]
        if not mutable:
            raise OutOfSpaceError("No decision of this space can be mutated.")
        for _ in range(100):
            d = mutable[rng.integers(len(mutable))]
            others = [c for c in d.choices if c != values[d.name]]
            changed = dict(values, **{d.name: _item(others[rng.integers(len(others))])})
            # Decisions that became active take their first choice; inactive ones go.
            fixed: dict[str, Scalar] = {}
            for dec in self.decisions:
                if dec.is_active(fixed):
                    fixed[dec.name] = changed.get(dec.name, dec.choices[0])
            child = self.decode(fixed)
            if child.hash() != arch.hash():
                return child
        raise OutOfSpaceError(f"No one-decision change of {arch!r} gives a new architecture.")

    def neighbours(self, arch: Architecture) -> Iterator[Architecture]:
        """Every one-decision change of `arch`, each isomorphism class once, in a fixed order.

        Active decisions in order, each one's other choices in order; decisions
        that become active take their first choice (as in `mutate`). Changes
        outside the space (e.g. an invalid NAS-Bench-101 cell) and changes
        isomorphic to `arch` or to an earlier neighbour are skipped.
        """
        values = self.encode(arch)
        seen = {arch.hash()}
        for d in self.active_decisions(values):
            for choice in d.choices:
                if choice == values[d.name]:
                    continue
                changed = dict(values, **{d.name: choice})
                fixed: dict[str, Scalar] = {}
                for dec in self.decisions:
                    if dec.is_active(fixed):
                        fixed[dec.name] = changed.get(dec.name, dec.choices[0])
                try:
                    child = self.decode(fixed)
                except OutOfSpaceError:
                    continue
                if child.hash() not in seen:
                    seen.add(child.hash())
                    yield child

    def encode_one_hot(self, arch: Architecture) -> np.ndarray:
        """A float32 vector: for each decision, one-hot of its value (zeros when inactive).

        Its length is the total number of choices; a generic feature vector
        of an architecture for any space (e.g. the input of a predictor).
        """
        values = self.encode(arch)
        out = []
        for d in self.decisions:
            row = [0.0] * len(d.choices)
            if d.name in values:
                row[d.choices.index(values[d.name])] = 1.0
            out.extend(row)
        return np.asarray(out, dtype=np.float32)

    def cardinality(self) -> int:
        """Number of decision combinations (an upper bound when conditional)."""
        return math.prod(len(d.choices) for d in self.decisions)

    def enumerate(self) -> Iterator[Architecture]:
        """Every architecture of a small space (may repeat isomorphic ones)."""
        if self.cardinality() > ENUMERATION_LIMIT:
            raise ValueError(
                f"The space has {self.cardinality()} decision combinations, more "
                f"than the {ENUMERATION_LIMIT} that can be enumerated."
            )
        seen = set()
        for combo in itertools.product(*(d.choices for d in self.decisions)):
            values = {}
            for d, value in zip(self.decisions, combo, strict=True):
                if d.is_active(values):
                    values[d.name] = value
            key = tuple(sorted(values.items()))
            if key not in seen:
                seen.add(key)
                yield self.decode(values)

    def declare_hyperparameters(self, hp: keras_tuner.HyperParameters) -> None:
        """Registers every decision as a keras-tuner `Choice`."""
        for d in self.decisions:
            if d.parent is None:
                hp.Choice(d.name, list(d.choices))
            else:
                with hp.conditional_scope(d.parent, list(d.parent_values)):
                    hp.Choice(d.name, list(d.choices))

    def values_from_hp(self, hp: keras_tuner.HyperParameters) -> dict[str, Scalar]:
        """The active decision values held by keras-tuner hyperparameters."""
        self.declare_hyperparameters(hp)
        return {d.name: hp.values[d.name] for d in self.decisions if hp.is_active(d.name)}

    def build(self, hp: keras_tuner.HyperParameters | Architecture) -> keras.Model:
        """Builds the compiled model of an architecture or of trial hyperparameters."""
        if not self.is_configured:
            raise ValueError(
                "The space does not know its input_shape and num_classes yet. "
                "Pass them to the space, or let Search.fit() take them from the data."
            )
        arch = hp if isinstance(hp, Architecture) else self.decode(self.values_from_hp(hp))
        return self.build_model(arch)


def classifier_head(x: Any, num_classes: int, name: str | None = "classifier") -> Any:
    """The softmax layer every kerasnas space ends with.

    It computes in float32 even under a `mixed_float16` policy, as Keras
    recommends for numerically stable outputs.
    """
    return keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=name)(x)


class ChoiceSpace(SearchSpace):
    """A space whose architecture is its decisions' values and nothing else (no cells).

    `decode` and `encode` map values to `Architecture(choices=values)` and back;
    a subclass declares its decisions and builds models (macro and channel spaces).
    """

    def decode(self, values: Mapping[str, Scalar]) -> Architecture:
        self.check_values(values)
        return Architecture(choices={d.name: values[d.name] for d in self._decisions})

    def encode(self, arch: Architecture) -> dict[str, Scalar]:
        names = {d.name for d in self._decisions}
        if arch.cells or set(arch.choices) != names:
            raise OutOfSpaceError(
                f"A {type(self).__name__} architecture has exactly the choices {sorted(names)}. "
                f"Received: {arch!r}."
            )
        values = arch.choices
        self.check_values(values)
        return values


def check_choices(
    arg: str, values: Sequence[Any], kind: type, valid: Any, what: str
) -> tuple[Any, ...]:
    """`values` as a tuple of `kind`, or ValueError unless they are distinct and `valid`.

    `what` says what `valid` checks, for the message (e.g. "positive").
    """
    try:
        out = tuple(kind(v) for v in values)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{arg} must be a list of numbers. Received: {values!r}.") from err
    if not out or len(set(out)) != len(out) or not all(valid(v) for v in out):
        raise ValueError(f"{arg} must be distinct values, each {what}. Received: {list(values)}.")
    return out


def _item(value: Any) -> Scalar:
    """Turns numpy scalars into plain Python ones (trial values must be)."""
    return value.item() if isinstance(value, np.generic) else value
