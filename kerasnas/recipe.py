"""Training recipes: how a network is trained, apart from what it is.

A `Recipe` holds the optimizer, the learning-rate schedule (cosine decay with
linear warm-up by default), weight decay, label smoothing, data augmentation
by Keras preprocessing layers, the batch size and the epochs. A search uses a
short recipe for its trials (`Search(recipe=...)`) and a long one for the
final training (`Search.retrain(recipe=...)`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine")
# Variables that weight decay leaves alone: biases and BatchNorm's scale and offset.
_NO_DECAY = ["bias", "gamma", "beta"]


@keras.saving.register_keras_serializable(package="kerasnas")
class SparseSmoothedCrossentropy(keras.losses.Loss):
    """Cross-entropy of class-index labels against probabilities, with label smoothing.

    Keras's `SparseCategoricalCrossentropy` has no label smoothing; this is
    `CategoricalCrossentropy(label_smoothing=...)` on one-hot labels made
    from the indices.
    """

    def __init__(self, label_smoothing: float = 0.0, name: str = "smoothed_crossentropy", **kw):
        super().__init__(name=name, **kw)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        ops = keras.ops
        classes = ops.shape(y_pred)[-1]
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        one_hot = ops.one_hot(labels, classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, label_smoothing=self.label_smoothing
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to train a network: optimizer, schedule, regularisation, augmentation, length.

    ```python
    trial_recipe = kn.Recipe(epochs=4, batch_size=128)
    final_recipe = trial_recipe.replace(epochs=30, translate=0.1, flip=True,
                                        label_smoothing=0.1)
    search = kn.Search(space, recipe=trial_recipe).fit(x, y, validation_data=(xv, yv))
    model = search.retrain(x, y, validation_data=(xv, yv), recipe=final_recipe)
    ```

    The defaults suit small images (Fashion-MNIST, CIFAR-sized data):
    AdamW at 2e-3 with cosine decay to zero (no warm-up), weight decay 5e-4
    (not on biases or BatchNorm), no label smoothing and no augmentation,
    batch 128, 10 epochs.

    Args:
        epochs: Training epochs.
        batch_size: Batch size for array data (the global batch under a
            distribution strategy).
        optimizer: `"adamw"`, `"adam"` or `"sgd"` (Nesterov momentum 0.9).
        learning_rate: Peak learning rate.
        schedule: `"cosine"` (decay to 0 over the training after the warm-up)
            or `"constant"`.
        warmup_epochs: Epochs of linear warm-up from 0 to `learning_rate`
            (cosine schedule only; fractions allowed).
        weight_decay: Decoupled weight decay; 0 turns it off.
        label_smoothing: Share of the label mass spread over all classes.
        translate: Random translation by up to this fraction of the height
            and width (Keras `RandomTranslation`); 0 turns it off.
        flip: Random horizontal flips (Keras `RandomFlip`). Off by default:
            it suits photos, not digits or text.
    """

    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "adamw"
    learning_rate: float = 2e-3
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    translate: float = 0.0
    flip: bool = False

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.epochs, int) or self.epochs < 1:
            problems.append(f"epochs must be an integer >= 1 (got {self.epochs!r})")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            problems.append(f"batch_size must be an integer >= 1 (got {self.batch_size!r})")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {list(OPTIMIZERS)} (got {self.optimizer!r})")
        if not self.learning_rate > 0:
            problems.append(f"learning_rate must be > 0 (got {self.learning_rate!r})")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {list(SCHEDULES)} (got {self.schedule!r})")
        if not 0 <= self.warmup_epochs < self.epochs:
            problems.append(
                f"warmup_epochs must be >= 0 and less than epochs (got {self.warmup_epochs!r})"
            )
        if not self.weight_decay >= 0:
            problems.append(f"weight_decay must be >= 0 (got {self.weight_decay!r})")
        if not 0 <= self.label_smoothing < 1:
            problems.append(f"label_smoothing must be in [0, 1) (got {self.label_smoothing!r})")
        if not 0 <= self.translate < 1:
            problems.append(f"translate must be in [0, 1) (got {self.translate!r})")
        if problems:
            raise ValueError("Invalid Recipe: " + "; ".join(problems) + ".")

    def replace(self, **changes: Any) -> Recipe:
        """A copy with some fields changed (e.g. a longer final recipe)."""
        fields = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise ValueError(f"Recipe has no field {unknown}. Fields: {fields}.")
        return dataclasses.replace(self, **changes)

    def to_config(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Recipe:
        return cls(**config)

    # -- Applying it ---------------------------------------------------------
    def steps_in(self, dataset: Any) -> int:
        """Batches per epoch of a batched dataset, as the schedule needs (1 when constant)."""
        if self.schedule == "constant":
            return 1
        import tensorflow as tf

        n = int(tf.data.experimental.cardinality(dataset))
        if n < 1:
            raise ValueError(
                "The training dataset's length is unknown (or infinite), so the recipe's cosine "
                "schedule cannot be laid out: give it a known length (e.g. with "
                "dataset.apply(tf.data.experimental.assert_cardinality(n))) or use "
                "schedule='constant'."
            )
        return n

    def learning_rate_schedule(self, steps_per_epoch: int, epochs: int | None = None) -> Any:
        """The learning rate (a float or a Keras schedule) for this many steps per epoch.

        The schedule spans `epochs` (default: the recipe's); the warm-up is
        cut short when it would not leave a step of decay.
        """
        if self.schedule == "constant":
            return self.learning_rate
        if steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1. Received: {steps_per_epoch}.")
        total = (self.epochs if epochs is None else epochs) * steps_per_epoch
        warmup = min(int(round(self.warmup_epochs * steps_per_epoch)), total - 1)
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else self.learning_rate,
            decay_steps=max(total - warmup, 1),
            warmup_target=self.learning_rate if warmup else None,
            warmup_steps=warmup,
        )

    def make_optimizer(self, steps_per_epoch: int) -> keras.optimizers.Optimizer:
        """A fresh optimizer of this recipe."""
        rate = self.learning_rate_schedule(steps_per_epoch)
        decay = self.weight_decay or None
        if self.optimizer == "sgd":
            opt = keras.optimizers.SGD(rate, momentum=0.9, nesterov=True, weight_decay=decay)
        elif self.optimizer == "adam":
            opt = keras.optimizers.Adam(rate, weight_decay=decay)
        else:
            opt = keras.optimizers.AdamW(rate, weight_decay=self.weight_decay)
        if self.weight_decay:
            opt.exclude_from_weight_decay(var_names=_NO_DECAY)
        return opt

    def loss(self) -> Any:
        """The loss for class-index labels against softmax outputs."""
        if self.label_smoothing:
            return SparseSmoothedCrossentropy(self.label_smoothing)
        return "sparse_categorical_crossentropy"

    def compile(
        self, model: keras.Model, steps_per_epoch: int, metrics: Any = ("accuracy",)
    ) -> keras.Model:
        """Compiles `model` with this recipe's optimizer, schedule and loss."""
        model.compile(
            optimizer=self.make_optimizer(steps_per_epoch),
            loss=self.loss(),
            metrics=list(metrics),
            jit_compile=getattr(model, "jit_compile", "auto"),
        )
        return model

    @property
    def augments(self) -> bool:
        return bool(self.translate or self.flip)

    def augment(self, dataset: Any, seed: int | None = 0) -> Any:
        """Applies the recipe's augmentation to a batched `(images, labels)` dataset."""
        if not self.augments:
            return dataset
        import tensorflow as tf

        layers = []
        if self.flip:
            layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
        if self.translate:
            layers.append(
                keras.layers.RandomTranslation(
                    self.translate, self.translate, fill_mode="constant", seed=seed
                )
            )
        pipeline = keras.Sequential(layers)

        def apply(x: Any, y: Any) -> Any:
            return tf.cast(pipeline(x, training=True), x.dtype), y

        return dataset.map(apply, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


__all__ = ["Recipe", "SparseSmoothedCrossentropy"]
