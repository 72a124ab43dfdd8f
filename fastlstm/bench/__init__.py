"""Benchmarks of fastlstm against torch.nn.LSTM / nn.LSTMCell, and their report.

Three users share this package (it needs neither pytest nor bench/, so it
works after a plain ``pip install .``):

* ``bench/test_bench_lstm.py`` (pytest-benchmark) takes the shape grid, the
  model pairs, the timed steps and the parity check from here;
* ``python bench/report.py RESULTS.json`` (a thin wrapper of :func:`report_main`)
  turns a pytest-benchmark JSON into a markdown table of speedups and a PNG;
* ``python -m fastlstm bench`` (:func:`main`) times a grid with the two
  implementations interleaved round by round, and prints the same table,
  with each case's share of its hardware bound on the CPU.

Speedup = median time of torch.nn.LSTM / median time of fastlstm, both run
with the same configuration, weights, inputs, dtype and device; above 1.0,
fastlstm is faster.

Modules, one job each: grid (shapes and named grids), cases (model pairs,
timed steps, parity check), machine (what ran, where), runner (interleaved
timing), bounds (probes of the machine and the bound model), stats
(speedups, geometric means), report (markdown, JSON, plot), cli."""
from . import bounds, cases, grid, machine, report, runner, stats
from .bounds import Bound, Probes, case_bound
from .cases import build_pair, check_parity, make_step
from .cli import build_parser, main
from .grid import (ALL_SHAPES, CELL_LOOP_SHAPES, CELL_SHAPES, CELL_SWEEP, DEVICE_DTYPES,
                   FULL_SHAPES, GRIDS, LSTM_SHAPES, MODES, PACKED_SHAPES, Shape)
from .machine import (BASELINE, IMPLS, OURS, case_info, cuda_skip_reason, group_name,
                      kernel_name, machine_info)
from .report import markdown, plot, report_main
from .runner import rounds_for, run_interleaved
from .stats import Row, geomean, speedup_rows, summary

__all__ = [
    "Shape", "LSTM_SHAPES", "PACKED_SHAPES", "CELL_SHAPES", "CELL_LOOP_SHAPES", "CELL_SWEEP",
    "ALL_SHAPES", "FULL_SHAPES", "GRIDS",
    "MODES", "IMPLS", "BASELINE", "OURS", "DEVICE_DTYPES", "build_pair", "make_step",
    "check_parity", "kernel_name", "machine_info", "case_info", "group_name",
    "cuda_skip_reason", "run_interleaved", "rounds_for", "Probes", "Bound", "case_bound",
    "Row", "speedup_rows", "summary", "geomean", "markdown", "plot", "report_main", "main",
    "build_parser", "bounds", "cases", "grid", "machine", "report", "runner", "stats",
]
