"""Turns a pytest-benchmark JSON of bench/ into a markdown table of fastlstm's
speedups over torch.nn.LSTM (torch median / fastlstm median, per shape, one
column per mode, geometric means, the worst shape) and optionally a PNG.

    python bench/report.py bench/results/cpu.json [--markdown OUT.md] [--plot OUT.png]

The logic is fastlstm.bench (installed with the package); this is its CLI."""
import sys

from fastlstm.bench import report_main

if __name__ == "__main__":
    report_main(sys.argv[1:])
