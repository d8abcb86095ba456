"""NAS-Bench-101's tfrecord files: the benchmark's training runs, read without TensorFlow.

Ying, Klein, Christiansen, Real, Murphy & Hutter, "NAS-Bench-101: Towards
Reproducible Neural Architecture Search" (ICML 2019).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import os
import struct
from collections.abc import Iterator
from typing import Any


# -- The benchmark's tfrecord files ------------------------------------------
@dataclasses.dataclass(frozen=True)
class NASBenchEvaluation:
    """One evaluation of a trained model (a NAS-Bench-101 `EvaluationData`).

    Args:
        current_epoch: Epoch at which it was evaluated.
        training_time: Training seconds up to this point.
        train_accuracy: Accuracy on a fixed 10,000 training images.
        validation_accuracy: Accuracy on the 10,000 validation images.
        test_accuracy: Accuracy on the 10,000 test images.
        checkpoint_path: The checkpoint's path (often empty).
    """

    current_epoch: float = 0.0
    training_time: float = 0.0
    train_accuracy: float = 0.0
    validation_accuracy: float = 0.0
    test_accuracy: float = 0.0
    checkpoint_path: str = ""


@dataclasses.dataclass(frozen=True)
class NASBenchRecord:
    """One record of a NAS-Bench-101 tfrecord file: one training run of one cell.

    Args:
        module_hash: The benchmark's hash of the cell (`NASBench101Space.nasbench_hash`).
        epochs: The epoch budget of the run (4, 12, 36 or 108).
        matrix: The cell's pruned adjacency matrix.
        ops: The cell's vertex labels.
        trainable_parameters: Trainable parameters of the network.
        total_time: Seconds of training and evaluation.
        evaluations: Evaluations during the run: at the start, halfway and at
            the end of training.
    """

    module_hash: str
    epochs: int
    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]
    trainable_parameters: int
    total_time: float
    evaluations: tuple[NASBenchEvaluation, ...]

    @property
    def final(self) -> NASBenchEvaluation:
        """The evaluation at the end of training."""
        if not self.evaluations:
            raise ValueError(f"Record {self.module_hash} holds no evaluation.")
        return self.evaluations[-1]

    @property
    def training_time(self) -> float:
        return self.final.training_time

    @property
    def train_accuracy(self) -> float:
        return self.final.train_accuracy

    @property
    def validation_accuracy(self) -> float:
        return self.final.validation_accuracy

    @property
    def test_accuracy(self) -> float:
        return self.final.test_accuracy


def read_nasbench_tfrecord(
    path: str | os.PathLike, max_records: int | None = None
) -> Iterator[NASBenchRecord]:
    """Reads the records of `nasbench_only108.tfrecord` or `nasbench_full.tfrecord`.

    Each record of these files is one training run: a JSON list
    `[module_hash, epochs, adjacency, operations, metrics]`, where adjacency
    is the row-major 0/1 digits of the pruned matrix, operations the
    comma-separated vertex labels and metrics a base64 `ModelMetrics`
    protobuf (decoded here without protobuf code). Each cell has 3 runs per
    epoch budget, so its hash repeats.

    Args:
        path: The tfrecord file (any path `tf.io.gfile` opens).
        max_records: Stop after this many records; all when None.

    Returns:
        An iterator of `NASBenchRecord`s, in file order. A record that does
        not parse raises ValueError when reached.
    """
    import tensorflow as tf

    path = os.fspath(path)
    if max_records is not None and (
        not isinstance(max_records, int) or isinstance(max_records, bool) or max_records < 0
    ):
        raise ValueError(
            f"max_records must be a non-negative integer or None. Received: {max_records!r}."
        )
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            f"No NAS-Bench-101 file at {path!r}. Download nasbench_only108.tfrecord "
            "from https://storage.googleapis.com/nasbench/nasbench_only108.tfrecord."
        )
    dataset = tf.data.TFRecordDataset(path)
    if max_records is not None:
        dataset = dataset.take(max_records)
    return _records(dataset.as_numpy_iterator(), path)


def _records(raws: Iterator[bytes], path: str) -> Iterator[NASBenchRecord]:
    for index, raw in enumerate(raws):
        try:
            yield _parse_record(raw)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise ValueError(
                f"Record {index} of {path!r} is not a NAS-Bench-101 record: {e}"
            ) from e


def _parse_record(raw: bytes) -> NASBenchRecord:
    row = json.loads(raw.decode("utf-8"))
    if not isinstance(row, list) or len(row) != 5:
        raise ValueError("expected a JSON list of 5 items")
    module_hash, epochs, raw_adjacency, raw_operations, raw_metrics = row
    dim = math.isqrt(len(raw_adjacency))
    if dim * dim != len(raw_adjacency) or set(raw_adjacency) - {"0", "1"}:
        raise ValueError(f"the adjacency {raw_adjacency!r} is not a square 0/1 matrix")
    matrix = tuple(
        tuple(int(c) for c in raw_adjacency[r * dim : (r + 1) * dim]) for r in range(dim)
    )
    ops = tuple(raw_operations.split(","))
    if len(ops) != dim:
        raise ValueError(f"{len(ops)} operations for a {dim}-vertex matrix")
    fields = _parse_message(base64.b64decode(raw_metrics))
    evaluations = tuple(_parse_evaluation(data) for data in fields.get(1, []))
    return NASBenchRecord(
        module_hash=str(module_hash),
        epochs=int(epochs),
        matrix=matrix,
        ops=ops,
        trainable_parameters=_signed(fields.get(2, [0])[-1], 32),
        total_time=_double(fields.get(3, [0.0])[-1]),
        evaluations=evaluations,
    )


def _parse_evaluation(data: Any) -> NASBenchEvaluation:
    fields = _parse_message(_bytes(data))
    names = ("current_epoch", "training_time", "train_accuracy")
    names += ("validation_accuracy", "test_accuracy")
    values: dict[str, Any] = {
        name: _double(fields[number][-1])
        for number, name in enumerate(names, start=1)
        if number in fields
    }
    if 6 in fields:
        values["checkpoint_path"] = _bytes(fields[6][-1]).decode("utf-8")
    return NASBenchEvaluation(**values)


def _parse_message(data: bytes) -> dict[int, list]:
    """Protobuf wire format: field number -> values (ints for varints and
    fixed-width fields as raw little-endian bytes wrapped in `_Fixed`, bytes
    for length-delimited fields)."""
    fields: dict[int, list] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = _varint(data, pos)
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
            if pos + size > len(data):
                raise ValueError("truncated fixed-width protobuf field")
            value, pos = _Fixed(data[pos : pos + size]), pos + size
        elif wire_type == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise ValueError("truncated length-delimited protobuf field")
            value, pos = data[pos : pos + size], pos + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")
        fields.setdefault(number, []).append(value)
    return fields


class _Fixed(bytes):
    """The raw bytes of a fixed64 or fixed32 protobuf field."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated or overlong protobuf varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def _bytes(value: Any) -> bytes:
    if type(value) is not bytes:
        raise ValueError("expected a length-delimited protobuf field")
    return value


def _double(value: Any) -> float:
    if isinstance(value, float):
        return value
    if not isinstance(value, _Fixed) or len(value) != 8:
        raise ValueError("expected a double (fixed64) protobuf field")
    return struct.unpack("<d", value)[0]


def _signed(value: Any, bits: int) -> int:
    """A varint as a signed int (negative int32s are sign-extended to 64 bits)."""
    if not isinstance(value, int):
        raise ValueError("expected a varint protobuf field")
    value &= (1 << 64) - 1
    if value >= 1 << 63:
        value -= 1 << 64
    if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
        raise ValueError(f"varint {value} does not fit in int{bits}")
    return value
