"""Tabular benchmarks, budget counters and the strategy-comparison harness."""

from kerasnas.benchmarks.tabular import (
    NotInTableError,
    TabularBenchmark,
    load_macro,
    macro_table_path,
)

__all__ = ["NotInTableError", "TabularBenchmark", "load_macro", "macro_table_path"]
