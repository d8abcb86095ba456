"""Tabular benchmarks, budget counters and the strategy-comparison harness."""

from kerasnas.benchmarks import analysis, compare, harness, tpe
from kerasnas.benchmarks.tabular import (
    SHARED_TABLES,
    TRANSNAS_TASKS,
    TabularBenchmark,
    load_channel,
    load_macro,
    load_shared,
    load_transnas,
    macro_table_path,
    shared_data_path,
    shared_table_paths,
)

__all__ = [
    "analysis",
    "compare",
    "harness",
    "tpe",
    "SHARED_TABLES",
    "TRANSNAS_TASKS",
    "TabularBenchmark",
    "load_channel",
    "load_macro",
    "load_shared",
    "load_transnas",
    "macro_table_path",
    "shared_data_path",
    "shared_table_paths",
]
