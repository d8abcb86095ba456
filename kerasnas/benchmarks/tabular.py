"""Tabular benchmarks: look a trial's metrics up in a table instead of training."""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from kerasnas.architecture import Architecture, Scalar
from kerasnas.errors import NotInTableError
from kerasnas.spaces.base import SearchSpace

# A metric is a number, or several (e.g. one per training seed) of which each
# query draws one at random.
Value = float | tuple[float, ...]

_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+|\*)\]")


class TabularBenchmark:
    """Answers a trial from a table of architectures already trained.

    Pass it to `kerasnas.Search(space, evaluator=bench, ...)`: trials then
    look their metrics up instead of training, so `fit()` needs no data and a
    100-trial search takes a second or two. Every mapped metric is recorded in
    each trial (e.g. both `val_accuracy` and `test_accuracy`); only the
    objective drives the search.

    Like NAS-Bench-101's API it counts queries, simulated training time (when
    a `time_metric` is mapped) and epochs; with `max_time`, a search stops
    before starting a trial once the simulated time of its trials reaches it.

    Build one with `from_json`, `from_csv`, or `kerasnas.benchmarks.load_macro`.

    Args:
        space: The search space whose `key(values)` indexes the table.
        table: Mapping from key to `{metric name: value}`; a value that is a
            sequence of numbers is drawn from at random on each query.
        time_metric: Name of the metric holding training seconds, if any.
        epochs: Training epochs each table entry stands for, if known.
        max_time: Simulated seconds after which searches stop.
        source: Where the table came from, for messages.
    """

    def __init__(
        self,
        space: SearchSpace,
        table: Mapping[str, Mapping[str, Value]],
        *,
        time_metric: str | None = None,
        epochs: int | None = None,
        max_time: float | None = None,
        source: str = "the table",
    ):
        if not isinstance(space, SearchSpace):
            raise ValueError(f"space must be a kerasnas SearchSpace. Received: {space!r}.")
        if not table:
            raise ValueError(f"{source} holds no architectures.")
        self.space = space
        self.table = {str(k): dict(v) for k, v in table.items()}
        self.metric_names = tuple(sorted(next(iter(self.table.values()))))
        if time_metric is not None and time_metric not in self.metric_names:
            raise ValueError(
                f"time_metric={time_metric!r} is not a mapped metric {list(self.metric_names)}."
            )
        if max_time is not None and time_metric is None:
            raise ValueError("max_time needs a time_metric: the table's training-time column.")
        self.time_metric = time_metric
        self.epochs = epochs
        self.max_time = max_time
        self.source = source
        self.reset_budget()

    # -- Construction -------------------------------------------------------
    @classmethod
    def from_json(
        cls,
        path: str | os.PathLike,
        *,
        space: SearchSpace,
        metrics: Mapping[str, str],
        scale: Mapping[str, float] | None = None,
        **kwargs: Any,
    ) -> TabularBenchmark:
        """Reads a JSON object `{key: record}`.

        Args:
            path: The JSON file.
            space: The space whose `key()` matches the file's keys.
            metrics: `{metric name: path in a record}`; a path is keys joined
                by dots with list indices, e.g. `"mean_acc"`, `"test_acc[0]"`,
                or `"test_acc[*]"` (a random one of the list on each query).
            scale: Optional factor per metric, e.g. 0.01 for percentages.
            **kwargs: `time_metric`, `epochs`, `max_time`.
        """
        path = os.fspath(path)
        with open(path) as f:
            records = json.load(f)
        if not isinstance(records, dict):
            raise ValueError(f"{path} must hold a JSON object of key -> record.")
        table = {
            key: {
                name: _scaled(_json_path(record, spec, key, path), (scale or {}).get(name))
                for name, spec in metrics.items()
            }
            for key, record in records.items()
        }
        return cls(space, table, source=path, **kwargs)

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike,
        *,
        space: SearchSpace,
        key: str,
        metrics: Mapping[str, str],
        scale: Mapping[str, float] | None = None,
        **kwargs: Any,
    ) -> TabularBenchmark:
        """Reads a CSV file with a header row.

        Args:
            path: The CSV file.
            space: The space whose `key()` matches the key column.
            key: Name of the key column.
            metrics: `{metric name: column name}`.
            scale: Optional factor per metric, e.g. 0.01 for percentages.
            **kwargs: `time_metric`, `epochs`, `max_time`.
        """
        path = os.fspath(path)
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            missing = [c for c in [key, *metrics.values()] if c not in columns]
            if missing:
                raise ValueError(f"{path} has no column(s) {missing}; its columns are {columns}.")
            table = {}
            for row in reader:
                table[row[key]] = {
                    name: _scaled(_number(row[col], col, path), (scale or {}).get(name))
                    for name, col in metrics.items()
                }
        return cls(space, table, source=path, **kwargs)

    # -- Queries --------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.table)

    def __contains__(self, arch: Architecture | Mapping[str, Scalar]) -> bool:
        return self._key(arch) in self.table

    def _key(self, arch: Architecture | Mapping[str, Scalar]) -> str:
        values = self.space.encode(arch) if isinstance(arch, Architecture) else arch
        return self.space.key(values)

    def lookup(self, arch: Architecture | Mapping[str, Scalar]) -> dict[str, Value]:
        """The table's record of an architecture (lists of draws kept whole)."""
        key = self._key(arch)
        try:
            return self.table[key]
        except KeyError:
            raise NotInTableError(
                f"Architecture {key!r} is not in {self.source} ({len(self.table)} entries). "
                "Check that the table matches the space (same ops, same key format)."
            ) from None

    def mean(self, arch: Architecture | Mapping[str, Scalar], metric: str) -> float:
        """A metric's value, averaged over its draws."""
        return float(np.mean(self.lookup(arch)[metric]))

    def evaluate(
        self, values: Mapping[str, Scalar], rng: np.random.Generator | None = None
    ) -> dict[str, float]:
        """Answers one trial: each metric's value (one random draw where several)."""
        record = self.lookup(values)
        rng = rng or np.random.default_rng()
        metrics = {
            name: float(v[rng.integers(len(v))]) if isinstance(v, tuple) else float(v)
            for name, v in record.items()
        }
        self.queries += 1
        if self.time_metric is not None:
            self.total_time += metrics[self.time_metric]
        if self.epochs is not None:
            self.total_epochs += self.epochs
        return metrics

    def best(self, metric: str, direction: str = "max") -> tuple[str, float]:
        """The key and mean value of the table's best architecture by a metric."""
        means = {k: float(np.mean(r[metric])) for k, r in self.table.items()}
        pick = max if direction == "max" else min
        key = pick(means, key=means.__getitem__)
        return key, means[key]

    def reset_budget(self) -> None:
        """Zeroes the query, time and epoch counters."""
        self.queries = 0
        self.total_time = 0.0
        self.total_epochs = 0

    def __repr__(self) -> str:
        return (
            f"TabularBenchmark({type(self.space).__name__}, {len(self.table)} architectures, "
            f"metrics={list(self.metric_names)}, source={self.source!r})"
        )


def _json_path(record: Any, spec: str, key: str, path: str) -> Value:
    value = record
    for name, index in _PATH_PART.findall(spec):
        try:
            if name:
                value = value[name]
            elif index == "*":
                value = tuple(float(v) for v in value)
            else:
                value = value[int(index)]
        except (KeyError, IndexError, TypeError):
            raise ValueError(
                f"The metric path {spec!r} does not lead to a value in record {key!r} of "
                f"{path}. Record: {json.dumps(record)[:200]}"
            ) from None
    if isinstance(value, tuple):
        return value
    return _number(value, spec, path)


def _number(value: Any, what: str, path: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} in {path} is not a number: {value!r}.") from None


def _scaled(value: Value, factor: float | None) -> Value:
    if factor is None:
        return value
    if isinstance(value, tuple):
        return tuple(v * factor for v in value)
    return value * factor


#: The shared tables by name: their file names in `shared/data` beside the project.
SHARED_TABLES = {
    "macro": "nas-bench-macro_cifar10.json",
    "channel_resnet": "channel-bench-macro_resnet_cifar10.json",
    "channel_mobilenet": "channel-bench-macro_mobilenet_cifar10.json",
    # TransNAS-Bench-101 micro: one file, a table per task.
    "transnas_class_scene": "transnas-bench-101_micro.csv",
    "transnas_jigsaw": "transnas-bench-101_micro.csv",
    "transnas_room_layout": "transnas-bench-101_micro.csv",
    "transnas_segmentsemantic": "transnas-bench-101_micro.csv",
    "transnas_autoencoder": "transnas-bench-101_micro.csv",
}
#: TransNAS-Bench-101 micro's tasks and what each `val` column holds (higher is better).
TRANSNAS_TASKS = {
    "class_scene": "top-1 accuracy (%)",
    "jigsaw": "top-1 accuracy (%)",
    "room_layout": "negative L2 loss",
    "segmentsemantic": "pixel accuracy (%)",
    "autoencoder": "SSIM",
}
#: TransNAS-Bench-101 micro's edge ops by digit of its arch strings.
TRANSNAS_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3")


def shared_table_path(name: str, start: str | os.PathLike | None = None) -> str | None:
    """Finds a shared table (a name of `SHARED_TABLES`) beside the project, if present.

    Looks in `$KERASNAS_SHARED_DATA`, then in `../shared/data` from `start`
    (default: the current directory) and from the package's checkout.
    """
    if name not in SHARED_TABLES:
        raise ValueError(f"Unknown shared table {name!r}; choose among {list(SHARED_TABLES)}.")
    return shared_data_path(SHARED_TABLES[name], start)


def shared_data_path(filename: str, start: str | os.PathLike | None = None) -> str | None:
    """Finds a file of `shared/data` beside the project (e.g. `nas-bench-101_20k.csv`), if
    present: in `$KERASNAS_SHARED_DATA`, then in `../shared/data` from `start` (default:
    the current directory) and from the package's checkout."""
    candidates = []
    if os.environ.get("KERASNAS_SHARED_DATA"):
        candidates.append(os.path.join(os.environ["KERASNAS_SHARED_DATA"], filename))
    roots = [
        os.fspath(start) if start else os.getcwd(),
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    ]
    for root in roots:
        candidates.append(os.path.join(root, "..", "shared", "data", filename))
    for candidate in candidates:
        if os.path.exists(candidate):
            return os.path.normpath(candidate)
    return None


def shared_table_paths(start: str | os.PathLike | None = None) -> dict[str, str]:
    """`{name: path}` of the shared tables found (`shared_table_path`), in `SHARED_TABLES` order."""
    found = {name: shared_table_path(name, start) for name in SHARED_TABLES}
    return {name: path for name, path in found.items() if path is not None}


def macro_table_path(start: str | os.PathLike | None = None) -> str | None:
    """Finds `shared/data/nas-bench-macro_cifar10.json` beside the project, if present.

    Looks in `$KERASNAS_SHARED_DATA`, then in `../shared/data` from `start`
    (default: the current directory) and from the package's checkout.
    """
    return shared_table_path("macro", start)


def channel_table_path(block: str = "resnet", start: str | os.PathLike | None = None) -> str | None:
    """Finds `shared/data/channel-bench-macro_<block>_cifar10.json` (as `macro_table_path`)."""
    return shared_table_path(f"channel_{_check_block(block)}", start)


def _check_block(block: str) -> str:
    if block not in ("resnet", "mobilenet"):
        raise ValueError(f"block must be 'resnet' or 'mobilenet'. Received: {block!r}.")
    return block


def load_macro(
    path: str | os.PathLike | None = None,
    *,
    search_metric: str = "test_acc[*]",
    space: SearchSpace | None = None,
    **kwargs: Any,
) -> TabularBenchmark:
    """The NAS-Bench-Macro CIFAR-10 table as a benchmark of `MacroSpace`.

    The table has no validation split, so searches use one training seed's
    test accuracy as `val_accuracy` (by default a random one of the three
    seeds on each query: a noisy signal) and report the mean over seeds as
    `test_accuracy`, so that the search signal and the reported figure
    differ. Accuracies are fractions (the file holds percentages); `params`
    and `flops` are mapped too.

    Args:
        path: The JSON file; found with `macro_table_path()` when None.
        search_metric: Path of the search signal in a record, e.g.
            `"test_acc[0]"` for seed 0 only. Defaults to `"test_acc[*]"`.
        space: A `MacroSpace`; a default one when None.
        **kwargs: `TabularBenchmark` arguments (`epochs`, ...).
    """
    from kerasnas.spaces.macro import MacroSpace

    path = path or macro_table_path()
    if path is None or not os.path.exists(path):
        raise FileNotFoundError(
            "The NAS-Bench-Macro table (nas-bench-macro_cifar10.json) was not found; "
            "pass its path, or set KERASNAS_SHARED_DATA to the folder holding it."
        )
    return _seeded_accuracy_table(path, space or MacroSpace(), search_metric, "mean_acc", **kwargs)


def load_channel(
    path: str | os.PathLike | None = None,
    block: str = "resnet",
    *,
    search_metric: str = "acc[*]",
    space: SearchSpace | None = None,
    **kwargs: Any,
) -> TabularBenchmark:
    """A Channel-Bench-Macro CIFAR-10 table as a benchmark of `ChannelSpace(block)`.

    Like `load_macro`: the table has no validation split, so `val_accuracy`
    is one training seed's test accuracy (by default a random one of the
    three seeds on each query) and `test_accuracy` the mean over seeds.
    Accuracies are fractions (the file holds percentages); `params` and
    `flops` are mapped too.

    Args:
        path: The JSON file; found with `channel_table_path(block)` when None.
        block: `"resnet"` or `"mobilenet"`: which of the two tables and spaces.
        search_metric: Path of the search signal in a record, e.g. `"acc[0]"`
            for seed 0 only. Defaults to `"acc[*]"`.
        space: A `ChannelSpace` of that block; a default one when None.
        **kwargs: `TabularBenchmark` arguments (`epochs`, ...).
    """
    from kerasnas.spaces.channel import ChannelSpace

    _check_block(block)
    if space is not None and getattr(space, "block", None) != block:
        raise ValueError(f"space must be a ChannelSpace of block {block!r}. Received: {space!r}.")
    path = path or channel_table_path(block)
    if path is None or not os.path.exists(path):
        raise FileNotFoundError(
            f"The Channel-Bench-Macro {block} table ({SHARED_TABLES['channel_' + block]}) was "
            "not found; pass its path, or set KERASNAS_SHARED_DATA to the folder holding it."
        )
    return _seeded_accuracy_table(
        path, space or ChannelSpace(block), search_metric, "mean", **kwargs
    )


def _seeded_accuracy_table(
    path: str | os.PathLike,
    space: SearchSpace,
    search_metric: str,
    mean_key: str,
    **kwargs: Any,
) -> TabularBenchmark:
    """A table of accuracies in percent over training seeds, with params and flops.

    `val_accuracy` is `search_metric` (a seed's accuracy) and `test_accuracy`
    the record's `mean_key` (the mean over seeds), both as fractions.
    """
    return TabularBenchmark.from_json(
        path,
        space=space,
        metrics={
            "val_accuracy": search_metric,
            "test_accuracy": mean_key,
            "params": "params",
            "flops": "flops",
        },
        scale={"val_accuracy": 0.01, "test_accuracy": 0.01},
        **kwargs,
    )


def load_transnas(
    path: str | os.PathLike | None = None,
    task: str = "class_scene",
    *,
    space: SearchSpace | None = None,
    **kwargs: Any,
) -> TabularBenchmark:
    """A task of TransNAS-Bench-101 micro as a benchmark of `NASBench201Space` with its
    four ops (`TRANSNAS_OPS`: no `avg_pool_3x3`): all 4,096 cells.

    The table holds one training's final validation figure per cell and task
    (`TRANSNAS_TASKS`: higher is better for each) and no test split, so
    `val_accuracy` and `test_accuracy` are both that figure, in the table's
    units: searches are judged by the best figure found (the regret to the
    task's best). Isomorphic cells are separate rows, so any cell can be
    queried.

    Args:
        path: The CSV file; found with `shared_data_path` when None.
        task: One of `TRANSNAS_TASKS`. Defaults to `"class_scene"`.
        space: A `NASBench201Space` with the four ops; a default one when None.
        **kwargs: `TabularBenchmark` arguments (`epochs`, ...).
    """
    from kerasnas.spaces.nasbench201 import EDGES, NASBench201Space, edge_name

    if task not in TRANSNAS_TASKS:
        raise ValueError(f"Unknown TransNAS-Bench-101 task {task!r}; choose among "
                         f"{list(TRANSNAS_TASKS)}.")  # fmt: skip
    space = space or NASBench201Space(ops=TRANSNAS_OPS, name="transnas_micro")
    if getattr(space, "ops", None) != TRANSNAS_OPS:
        raise ValueError(
            f"space must be a NASBench201Space(ops={list(TRANSNAS_OPS)}). Received: {space!r}."
        )
    path = path or shared_data_path(SHARED_TABLES["transnas_" + task])
    if path is None or not os.path.exists(path):
        raise FileNotFoundError(
            "The TransNAS-Bench-101 micro table (transnas-bench-101_micro.csv) was not found; "
            "pass its path, or set KERASNAS_SHARED_DATA to the folder holding it."
        )
    path = os.fspath(path)
    table: dict[str, dict[str, Value]] = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("task", "arch", "val") if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path} has no column(s) {missing}; its columns are "
                             f"{reader.fieldnames}.")  # fmt: skip
        for row in reader:
            if row["task"] != task:
                continue
            digits = row["arch"].strip()
            if len(digits) != len(EDGES) or not set(digits) <= set("0123"):
                raise ValueError(f"arch {digits!r} in {path} is not six digits 0-3.")
            edges = zip(EDGES, digits, strict=True)
            values = {edge_name(j, i): TRANSNAS_OPS[int(d)] for (j, i), d in edges}
            value = _number(row["val"], "val", path)
            table[space.key(values)] = {"val_accuracy": value, "test_accuracy": value}
    if not table:
        raise ValueError(f"{path} has no rows of task {task!r}.")
    return TabularBenchmark(space, table, source=f"{path} ({task})", **kwargs)


def load_shared(
    name: str, path: str | os.PathLike | None = None, *, search_metric: str | None = None
) -> TabularBenchmark:
    """A shared table by name (a name of `SHARED_TABLES`: `"macro"`, `"channel_resnet"`,
    `"channel_mobilenet"`, `"transnas_<task>"`).

    Args:
        name: A name of `SHARED_TABLES`.
        path: The table's file; found with `shared_table_path(name)` when None.
        search_metric: The search signal's record path; each loader's default
            (a random seed's accuracy per query) when None. TransNAS-Bench-101
            has one figure per cell: it takes none.
    """
    if name not in SHARED_TABLES:
        raise ValueError(f"Unknown shared table {name!r}; choose among {list(SHARED_TABLES)}.")
    if name.startswith("transnas_"):
        if search_metric is not None:
            raise ValueError(
                f"{name} has one figure per cell: no search_metric applies. "
                f"Received: search_metric={search_metric!r}."
            )
        return load_transnas(path, name.removeprefix("transnas_"))
    kwargs = {} if search_metric is None else {"search_metric": search_metric}
    if name == "macro":
        return load_macro(path, **kwargs)
    return load_channel(path, name.removeprefix("channel_"), **kwargs)
