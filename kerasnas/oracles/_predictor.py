"""An ensemble of small Keras MLPs that predicts an architecture's score from its encoding.

BANANAS (`kerasnas/oracles/bananas.py`) fits it on the trials so far and takes
the spread of its members' predictions for their uncertainty. The members
are trained side by side in one Keras model: each `EnsembleDense` layer holds
one dense layer per member (a kernel of shape `(members, inputs, units)`), so
member m's output depends on member m's weights only, and one Adam step on the
sum of the members' losses is one Adam step of each member on its own loss.

Every fit starts from weights drawn from a numpy generator (Glorot-uniform
kernels, zero biases) with the Adam state zeroed, and goes through the
examples in an order drawn from the same generator: the fit is a function of
the data and the generator, not of Keras's global seed. The compiled Keras model
is shared by the predictors of one shape in a process (its weights are
set at each use), so later fits, of this search or of the next one, reuse
its traced training step instead of tracing it again.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

# (input_dim, members, hidden, learning_rate) -> the compiled model; the lock
# guards a model between setting its weights and using them.
_MODELS: dict[tuple, keras.Model] = {}
_LOCK = threading.RLock()
_OWNERS: dict[tuple, int] = {}  # key -> id of the predictor whose weights the model holds


class EnsembleDense(keras.layers.Layer):
    """`members` independent dense layers; input `(n, d)` or `(n, members, d)`, output
    `(n, members, units)`."""

    def __init__(self, members: int, units: int, activation: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.members = members
        self.units = units
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(self.members, input_shape[-1], self.units), initializer="zeros", name="kernel"
        )
        self.bias = self.add_weight(
            shape=(self.members, self.units), initializer="zeros", name="bias"
        )

    def call(self, x):
        pattern = "nd,mdu->nmu" if len(x.shape) == 2 else "nmd,mdu->nmu"
        return self.activation(ops.einsum(pattern, x, self.kernel) + self.bias)

    def get_config(self):
        return {
            **super().get_config(),
            "members": self.members,
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
        }


class EnsemblePredictor:
    """An ensemble of MLPs regressing standardised scores on architecture encodings.

    Args:
        input_dim: Length of the encodings.
        members: Members of the ensemble. Defaults to 5.
        hidden: Units of each hidden layer (ReLU). Defaults to (32, 32).
        steps: Adam steps per fit. Defaults to 200.
        batch_size: Examples per step (drawn with repeats when there are fewer).
            Defaults to 32.
        learning_rate: Adam's learning rate. Defaults to 0.01.
    """

    def __init__(
        self,
        input_dim: int,
        members: int = 5,
        hidden: Sequence[int] = (32, 32),
        steps: int = 200,
        batch_size: int = 32,
        learning_rate: float = 0.01,
    ):
        self.input_dim = int(input_dim)
        self.members = int(members)
        self.hidden = tuple(int(h) for h in hidden)
        self.steps = int(steps)
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self._key = (self.input_dim, self.members, self.hidden, self.learning_rate)
        self._weights: list[np.ndarray] | None = None

    def _model(self) -> keras.Model:
        if self._key not in _MODELS:
            _MODELS[self._key] = self._build()
        return _MODELS[self._key]

    def _build(self) -> keras.Model:
        # float32 whatever the global dtype policy (a search may use mixed precision).
        inputs = keras.Input((self.input_dim,), dtype="float32")
        x = inputs
        for i, units in enumerate(self.hidden):
            x = EnsembleDense(self.members, units, "relu", dtype="float32", name=f"hidden_{i}")(x)
        x = EnsembleDense(self.members, 1, dtype="float32", name="score")(x)
        outputs = keras.layers.Reshape((self.members,), dtype="float32")(x)
        model = keras.Model(inputs, outputs, name="predictor")
        model.compile(
            optimizer=keras.optimizers.Adam(self.learning_rate),
            loss="mse",
            steps_per_execution=16,
            jit_compile=False,  # XLA compiles for longer than these fits train.
        )
        return model

    def fit(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> None:
        """Trains every member afresh on encodings `x` (n, d) and targets `y` (n,)."""
        x = np.asarray(x, dtype=np.float32)
        y = np.asarray(y, dtype=np.float32).reshape(-1)
        with _LOCK:
            model = self._model()
            weights = []
            for w in model.get_weights():
                if w.ndim == 3:  # A kernel (members, fan_in, fan_out): Glorot-uniform per member.
                    limit = np.sqrt(6.0 / (w.shape[1] + w.shape[2]))
                    weights.append(rng.uniform(-limit, limit, w.shape).astype(np.float32))
                else:
                    weights.append(np.zeros(w.shape, np.float32))
            model.set_weights(weights)
            for variable in model.optimizer.variables:
                if "learning_rate" not in variable.path:
                    variable.assign(np.zeros(variable.shape, variable.dtype))
            # Epochs of shuffled examples, cut into `steps` batches of `batch_size` (a batch
            # holds repeats when there are fewer examples): one batch shape, one trace.
            needed = self.steps * self.batch_size
            epochs = -(-needed // len(x))
            order = np.concatenate([rng.permutation(len(x)) for _ in range(epochs)])[:needed]
            targets = np.repeat(y[order, None], self.members, axis=1)
            model.fit(
                x[order], targets, batch_size=self.batch_size, epochs=1, shuffle=False, verbose=0
            )
            self._weights = model.get_weights()
            _OWNERS[self._key] = id(self)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Each member's predictions, shape `(n, members)`."""
        if self._weights is None:
            raise ValueError("The predictor has not been fitted yet; call fit() first.")
        x = np.asarray(x, dtype=np.float32)
        with _LOCK:
            model = self._model()
            if _OWNERS.get(self._key) != id(self):
                model.set_weights(self._weights)
                _OWNERS[self._key] = id(self)
            return np.asarray(ops.convert_to_numpy(model(x, training=False)))
