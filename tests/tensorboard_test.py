"""keras-tuner's TensorBoard logging with kerasnas trials: scalars and HParams per trial.

`search.fit(..., callbacks=[keras.callbacks.TensorBoard(log_dir)])`: keras-tuner gives each
trial its own `log_dir/<trial_id>/execution0` and adds TensorBoard's HParams callback with the
trial's values (kerasnas decision names such as `normal/block_0/op_a`). The event files are
read back the way TensorBoard reads them.
"""

import json
import os

import keras
import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2

import kerasnas as kn
from tests import tiny


def _hparams(run_dir):
    """`(hparam values, session status)` written by the HParams callback in `run_dir`."""
    acc = event_accumulator.EventAccumulator(run_dir)
    acc.Reload()
    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]
    ).session_start_info
    end = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_end_info"]
    ).session_end_info
    values = {}
    for name, value in start.hparams.items():
        kind = value.WhichOneof("kind")
        values[name] = getattr(value, kind)
    return values, start.group_name, end.status


def _scalars(run_dir):
    acc = event_accumulator.EventAccumulator(run_dir)
    acc.Reload()
    return set(acc.Tags()["tensors"]) | set(acc.Tags()["scalars"])


def _run(tmp_path, space, **kwargs):
    (x, y), (xv, yv) = tiny.digits(128, 64)
    logs = str(tmp_path / "logs")
    search = kn.Search(
        space,
        max_trials=2,
        directory=str(tmp_path),
        project_name="tb",
        seed=0,
        verbose=0,
        **kwargs,
    )
    search.fit(
        x,
        y,
        validation_data=(xv, yv),
        epochs=1,
        callbacks=[keras.callbacks.TensorBoard(logs)],
    )
    return search, logs


@pytest.mark.usefixtures("eager")
def test_tensorboard_logs_hparams_of_kerasnas_trials(tmp_path):
    # Two blocks per cell: decisions of a second block (`reduction/block_1/...`) too.
    search, logs = _run(tmp_path, tiny.fast_space(num_blocks=2), strategy="random")
    assert sorted(os.listdir(logs)) == ["0", "1"]
    for trial in search.oracle.trials.values():
        run = os.path.join(logs, trial.trial_id, "execution0")
        values, group, status = _hparams(run)
        expected = trial.hyperparameters.values
        assert "normal/block_0/op_a" in values and "reduction/block_1/input_b" in values
        # The decisions, and the network's hash (report-only: not a trial value).
        assert values.pop("network") == search.oracle.network_hash(trial)
        assert values == {k: (float(v) if isinstance(v, int) else v) for k, v in expected.items()}
        assert group == trial.trial_id
        assert status == 1  # STATUS_SUCCESS
        assert "epoch_loss" in _scalars(os.path.join(run, "train"))
        assert "epoch_accuracy" in _scalars(os.path.join(run, "validation"))


@pytest.mark.usefixtures("eager")
def test_tensorboard_hparams_carry_a_morphism_childs_lineage(tmp_path):
    search, logs = _run(tmp_path, tiny.fast_space(), strategy="morphism", initial_trials=1)
    child = search.oracle.trials["1"]
    plan = search.oracle.plan("1")
    assert plan.lineage.ops
    values, _, _ = _hparams(os.path.join(logs, "1", "execution0"))
    root, _, _ = _hparams(os.path.join(logs, "0", "execution0"))
    # The child's values are its root's; its network hash and its plan tell it apart.
    decisions = {k: v for k, v in root.items() if k != "network"}
    assert {k: v for k, v in values.items() if k not in ("network", "plan")} == decisions
    assert values["network"] == search.oracle.network_hash(child) != root["network"]
    assert json.loads(values["plan"]) == plan.to_config() and "plan" not in root
