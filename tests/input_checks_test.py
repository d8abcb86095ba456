"""The checks `Search` makes before the first trial (issue 19, items 3-5).

Each mistake is refused with a message naming the problem and the fix, before
anything is written into the project; arrays and tf.data datasets get the same
checks. Two tests train one tiny trial, to show that what is accepted works.
"""

import os

import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

import kerasnas as kn
from kerasnas import data
from kerasnas.cli import parse_objective
from kerasnas.data import checks
from kerasnas.training.inputs import check_fits_space, configure_space, examine_inputs
from tests import tiny


def make_search(tmp_path, **kwargs):
    config = dict(max_trials=1, directory=str(tmp_path), project_name="p", seed=0, verbose=0)
    config.update(kwargs)
    space = config.pop("space", None) or tiny.fast_space()
    return kn.Search(space, **config)


def nothing_written(tmp_path):
    return not os.path.exists(os.path.join(tmp_path, "p"))


def batched(x, y, batch_size=16):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


# -- tf.data input gets the checks arrays get ----------------------------------
def test_dataset_labels_out_of_range_are_refused_before_training(tmp_path):
    (x, y), (xv, yv) = tiny.digits(train=60, val=20)
    search = make_search(tmp_path, space=tiny.fast_space(num_classes=5))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 5\).*label 9.*num_classes"):
        search.fit(batched(x, y), validation_data=batched(xv, yv), epochs=1)
    with pytest.raises(ValueError, match="class indices 0..num_classes-1; found -1"):
        make_search(tmp_path).fit(batched(x, y - 1), epochs=1)
    assert nothing_written(tmp_path)


def test_dataset_one_hot_labels_become_class_indices(tmp_path):
    (x, y), (xv, yv) = tiny.digits(train=64, val=32)
    train, val = batched(x, np.eye(10)[y]), batched(xv, np.eye(10)[yv])
    examined = data.examine(train)
    assert examined.num_labels == 10 and examined.x.element_spec[1].shape.rank == 1
    labels = np.concatenate([b[1].numpy() for b in examined.x])
    assert labels.tolist() == y.tolist()
    # Rows that are not one-hot (soft labels) are refused, naming the fix.
    with pytest.raises(ValueError, match="must be one-hot rows.*integer class indices"):
        data.examine(batched(x, np.full((64, 10), 0.1)))
    search = make_search(tmp_path)
    search.fit(train, validation_data=val, epochs=1)  # One tiny trial.
    assert search.results()[0]["status"] == "COMPLETED"


def test_dataset_nan_is_refused_not_reported_as_divergence(tmp_path):
    (x, y), _ = tiny.digits(train=64, val=1)
    x = x.copy()
    x[40, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"batch 3 of the dataset.*NaN.*diverged.*Clean the data"):
        make_search(tmp_path).fit(batched(x, y), epochs=1)
    with pytest.raises(ValueError, match="x holds NaN.*Clean the data"):  # Arrays alike.
        make_search(tmp_path).fit(x, y, epochs=1)
    assert nothing_written(tmp_path)


def test_dataset_structure_is_checked(tmp_path):
    (x, y), _ = tiny.digits(train=32, val=1)
    search = make_search(tmp_path)
    with pytest.raises(ValueError, match=r"must be batched.*dataset.batch\(batch_size\)"):
        search.fit(tf.data.Dataset.from_tensor_slices((x, y)), epochs=1)
    as_dicts = tf.data.Dataset.from_tensor_slices({"image": x, "label": y}).batch(8)
    with pytest.raises(ValueError, match="not dicts.*as_supervised=True"):
        search.fit(as_dicts, epochs=1)
    with pytest.raises(ValueError, match="labels must be integer class indices.*dtype string"):
        search.fit(batched(x, y.astype(str)), epochs=1)
    with pytest.raises(ValueError, match="integer class indices.*6.5"):
        search.fit(batched(x, y + 0.5), epochs=1)
    examples = tf.data.Dataset.from_tensor_slices(x).batch(8)
    mismatched = tf.data.Dataset.zip(examples, tf.data.Dataset.from_tensor_slices(y).batch(6))
    with pytest.raises(ValueError, match="batch 1 of the dataset.*8 examples but 6 labels"):
        search.fit(mismatched, epochs=1)
    assert nothing_written(tmp_path)


def test_a_dataset_is_peeked_at_within_a_bound():
    # Beyond the peeked batches nothing is read unless the classes are counted.
    (x, y), _ = tiny.digits(train=60, val=1)
    bad = np.where(np.arange(60) < 55, y, 99)  # The bad labels sit in the last batch.
    dataset = batched(x, bad, batch_size=1)
    assert checks.PEEK_BATCHES == 50
    assert data.examine(dataset, read_labels=False).num_labels == 10
    assert data.examine(dataset, read_labels=True).num_labels == 100
    # An endless dataset is peeked at too.
    assert data.examine(batched(x, y).repeat(), read_labels=False).input_shape == (8, 8, 1)


# -- Validation labels within the training classes -----------------------------------
def test_validation_labels_outside_the_training_classes_are_refused(tmp_path):
    (x, y), (xv, yv) = tiny.digits(train=200, val=40)
    yv = yv.copy()
    yv[3] = 12
    message = r"validation data: label 12 was found.*0..9.*num_classes=13 to the space"
    with pytest.raises(ValueError, match=message):
        make_search(tmp_path).fit(x, y, validation_data=(xv, yv), epochs=1)
    with pytest.raises(ValueError, match=message):
        make_search(tmp_path).fit(batched(x, y), validation_data=batched(xv, yv), epochs=1)
    # With the space's num_classes the validation labels are checked against it.
    search = make_search(tmp_path, space=tiny.fast_space(num_classes=10))
    with pytest.raises(ValueError, match=r"validation data: labels must lie in \[0, 10\).*12"):
        search.fit(x, y, validation_data=(xv, yv), epochs=1)
    assert nothing_written(tmp_path)


# -- fit()'s keyword arguments --------------------------------------------------------
def test_unknown_fit_arguments_name_the_closest(tmp_path):
    (x, y), _ = tiny.digits(train=40, val=1)
    search = make_search(tmp_path)
    with pytest.raises(TypeError, match=r"'epoch'; did you mean epochs=\?.*validation_split"):
        search.fit(x, y, epoch=1)
    with pytest.raises(TypeError, match=r"'colour'\. fit\(\) takes x, y, validation_data"):
        search.fit(x, y, colour="red")
    assert nothing_written(tmp_path)


@pytest.mark.parametrize(
    "name, message",
    [
        ("shuffle", "reshuffles array training data every epoch"),
        ("sample_weight", "class_weight="),
        ("initial_epoch", "pass epochs="),
        ("validation_batch_size", "pass batch_size="),
    ],
)
def test_fit_arguments_kerasnas_sets_are_refused(tmp_path, name, message):
    (x, y), _ = tiny.digits(train=40, val=1)
    with pytest.raises(ValueError, match=f"fit\\(\\) does not take {name}=.*{message}"):
        make_search(tmp_path).fit(x, y, **{name: 1})
    assert nothing_written(tmp_path)


def test_validation_split_carves_arrays(tmp_path):
    (x, y), _ = tiny.digits(train=100, val=1)
    inputs = examine_inputs(x, y, None, validation_split=0.2)
    assert len(inputs.train.x) == 80 and inputs.validation.y.tolist() == y[80:].tolist()
    search = make_search(tmp_path, objective="val_accuracy")
    search.fit(x, y, validation_split=0.2, epochs=1)  # One tiny trial.
    assert search.results()[0]["status"] == "COMPLETED"


def test_validation_split_mistakes_are_refused_up_front(tmp_path):
    (x, y), (xv, yv) = tiny.digits(train=40, val=20)
    search = make_search(tmp_path)
    with pytest.raises(ValueError, match="cannot split a tf.data.Dataset.*validation_data="):
        search.fit(batched(x, y), validation_split=0.2, epochs=1)
    with pytest.raises(ValueError, match="validation_data or validation_split.*not both"):
        search.fit(x, y, validation_data=(xv, yv), validation_split=0.2, epochs=1)
    with pytest.raises(ValueError, match=r"validation_split must be a float between 0 and 1"):
        search.fit(x, y, validation_split=20, epochs=1)
    with pytest.raises(ValueError, match="of the 40 training examples leaves none to train on"):
        search.fit(x, y, validation_split=0.99, epochs=1)
    assert nothing_written(tmp_path)


# -- The objective ----------------------------------------------------------------------
def test_objective_direction_must_be_max_or_min(tmp_path):
    message = r"direction 'maximize'; keras-tuner takes 'max' or 'min'.*\('val_accuracy', 'max'\)"
    with pytest.raises(ValueError, match=message):
        make_search(tmp_path, objective=keras_tuner.Objective("val_accuracy", "maximize"))
    with pytest.raises(ValueError, match=r"direction 'minimise'.*Objective\('val_loss', 'min'\)"):
        make_search(tmp_path, objective=[keras_tuner.Objective("val_loss", "minimise")])
    assert nothing_written(tmp_path)


def test_a_suspicious_direction_is_warned_about(tmp_path, capsys):
    make_search(tmp_path, objective=keras_tuner.Objective("val_accuracy", "min"))
    err = capsys.readouterr().err  # Warnings go to stderr, as [kerasnas] lines.
    assert "[kerasnas] The objective 'val_accuracy' is minimised" in err and "better higher" in err
    assert "--objective=val_accuracy:max" in err
    make_search(tmp_path, objective=keras_tuner.Objective("val_loss", "max"))
    assert "'val_loss' is maximised" in capsys.readouterr().err
    make_search(tmp_path, objective=keras_tuner.Objective("val_accuracy", "max"))
    make_search(tmp_path, objective="val_loss")
    assert "better" not in capsys.readouterr().err
    # The command line's --objective=NAME:min reaches the same check.
    make_search(tmp_path, objective=parse_objective("val_accuracy:min"))
    assert "'val_accuracy' is minimised" in capsys.readouterr().err


# -- time_budget and reserve --------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(time_budget="60"), r"time_budget must be a number of seconds.*'60', a str; pass "),
        (dict(time_budget=[60]), r"time_budget must be a number.*or None.*a list"),
        (dict(time_budget=True), r"time_budget must be a number.*a bool"),
        (dict(time_budget=60, reserve="5"), r"reserve must be a number.*pass reserve=5\."),
        (dict(time_budget=60, reserve=None), r"reserve must be a number of seconds.*NoneType"),
    ],
)
def test_time_budget_of_a_wrong_type(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_search(tmp_path, **kwargs)


# -- Every data shape the spaces take: images, sequences, token sequences (issue 29, item 2) --
def tokens(n, steps=12, vocabulary=29, seed=0):
    """Token sequences with one label per step (next-token prediction), as text: loads them."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, vocabulary, (n, steps)), rng.integers(0, vocabulary, (n, steps))


def rnn(**kwargs):
    return kn.spaces.RNNCellSpace(**{"num_nodes": 2, "units": 4, **kwargs})


def test_validation_tokens_outside_the_training_vocabulary_are_refused(tmp_path):
    (x, y), (xv, yv) = tokens(40), tokens(8, seed=1)
    message = (
        r"validation data: token 128, the largest of 28 such values \(100, 101, 102, [0-9, ]+"
        r"\.\.\.\), was found, but the "
        r"training tokens and labels run 0\.\.28 \(a vocabulary of 29\).*129 outputs.*shifted.*"
        r"num_classes.*len\(kn\.data\.vocabulary"
    )
    space = rnn()
    with pytest.raises(ValueError, match=message):
        make_search(tmp_path, space=space).fit(x, y, validation_data=(xv, yv + 100), epochs=1)
    assert space.input_shape is None and space.num_classes is None  # Left as it was.
    with pytest.raises(ValueError, match=r"validation data: token 128 was found.*0\.\.28"):
        make_search(tmp_path, space=rnn()).fit(
            batched(x, y), validation_data=batched(xv, yv + 100), epochs=1
        )
    # With the space's num_classes (the vocabulary), tokens are checked against it.
    with pytest.raises(ValueError, match=r"tokens and labels must lie in \[0, 29\).*128"):
        make_search(tmp_path, space=rnn(num_classes=29)).fit(
            x, y, validation_data=(xv, yv + 100), epochs=1
        )
    assert nothing_written(tmp_path)
    # A vocabulary the validation text widens is accepted once it is the space's.
    inputs = examine_inputs(x, y, (xv, yv + 100))
    space = rnn(num_classes=129)
    configure_space(space, inputs)
    check_fits_space(space, inputs)
    assert space.input_shape == (12,)


def test_labels_must_be_of_the_kind_the_space_predicts(tmp_path):
    (x, y), (xv, yv) = tokens(40), tokens(8, seed=1)
    per_step = r"RNNCellSpace reads examples of shape \(12,\) as token sequences.*label per step"
    # One label per token sequence: refused, not failed in every trial by Keras.
    for train in ((x, y[:, 0]), (batched(x, y[:, 0]),)):
        space = rnn()
        with pytest.raises(ValueError, match=f"training data: {per_step}.*x\\[..., None\\]"):
            make_search(tmp_path, space=space).fit(*train, epochs=1)
        assert space.input_shape is None
    with pytest.raises(ValueError, match=f"validation data: {per_step}"):
        make_search(tmp_path, space=rnn()).fit(x, y, validation_data=(xv, yv[:, 0]), epochs=1)
    # Flat float features are no token sequences: the rank the space cannot take is named.
    flat = np.random.default_rng(0).random((40, 64), dtype="float32")
    with pytest.raises(ValueError, match=r"\(64,\).*labels of shape \(40,\).*steps, features"):
        make_search(tmp_path, space=rnn()).fit(flat, y[:, 0] % 10, epochs=1)
    with pytest.raises(ValueError, match=r"needs token sequences.*\(2, 3, 4, 2\)"):
        make_search(tmp_path, space=rnn()).fit(flat.reshape(40, 2, 4, 4, 2)[:, :, :3], y[:, 0])
    # An image space takes neither token sequences nor flat features.
    with pytest.raises(ValueError, match=r"needs images.*\(12,\)"):
        make_search(tmp_path).fit(x, y, epochs=1)
    # Per-step labels of feature sequences: the message says where a label per step is taken.
    seqs = np.random.default_rng(0).random((40, 12, 3), dtype="float32")
    with pytest.raises(ValueError, match=r"one-hot rows.*next-token prediction only"):
        make_search(tmp_path, space=rnn()).fit(seqs, y, epochs=1)
    assert nothing_written(tmp_path)


def test_a_tf_data_pipeline_of_token_sequences_is_checked_and_trains(tmp_path):
    (x, y), (xv, yv) = tokens(48, vocabulary=10), tokens(16, vocabulary=10, seed=1)
    examined = data.examine(batched(x, y))
    assert examined.per_step and examined.num_labels == 10 and examined.input_shape == (12,)
    # A later batch that is not token sequences with per-step labels is named.
    mixed = batched(x, y).concatenate(batched(x, y[:, :6]))
    with pytest.raises(ValueError, match=r"batch 4 of the dataset.*every batch must hold"):
        data.examine(mixed)
    search = make_search(tmp_path, space=rnn())
    search.fit(batched(x, y), validation_data=batched(xv, yv), epochs=1)  # One tiny trial.
    assert search.results()[0]["status"] == "COMPLETED"
    assert search.space.num_classes == 10
