"""`python -m fastlstm bench`: the interleaved comparison on a named grid,
printed as the markdown report and written as JSON, markdown and a plot."""
import argparse
import sys
import time

import torch

from .._cli import default_device, non_negative_int, positive_int
from .grid import GRIDS, MODES
from .machine import cuda_skip_reason, device_name
from .report import emit, write_json
from .runner import run_interleaved

__all__ = ["build_parser", "main"]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m fastlstm bench",
        description="Time fastlstm.LSTM / LSTMCell against torch.nn.LSTM / LSTMCell on a few "
                    "shapes, alternating the two round by round so that host noise hits both, "
                    "and print the speedups (torch median / fastlstm median) as a markdown "
                    "table; on the CPU, with each case's time as a share of the bound that this "
                    "machine's FMA peak and read bandwidth (probed in the same run) allow. The "
                    "full, pytest-benchmark suite is bench/ in the repository.")
    parser.add_argument("--device", default=default_device(),
                        help="cpu or cuda (default: %(default)s)")
    parser.add_argument("--dtype", default="float32",
                        choices=("float32", "float64", "float16", "bfloat16"),
                        help="(default: %(default)s)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="shapes", action="store_const", const="quick",
                      help="a few shapes, few rounds (the default)")
    size.add_argument("--full", dest="shapes", action="store_const", const="full",
                      help="the whole grid of bench/ (long on a CPU)")
    size.add_argument("--shapes", choices=sorted(GRIDS), help="a named grid: "
                      + ", ".join(f"{k} ({len(v)} shapes)" for k, v in GRIDS.items()))
    parser.add_argument("--mode", action="append", choices=MODES, dest="modes",
                        help="fwd and/or fwd+bwd (repeatable; default: both)")
    parser.add_argument("--rounds", type=positive_int, default=None,
                        help="timed rounds per impl (default: 5 quick, 15 full and cells, 3 tiny)")
    parser.add_argument("--warmup", type=non_negative_int, default=None,
                        help="warm-up rounds per impl (default: 2; 1 for tiny)")
    parser.add_argument("--no-parity", action="store_true",
                        help="skip the check that both give the same answer first")
    parser.add_argument("--no-bounds", action="store_true",
                        help="skip the probes of the machine's FMA peak and read bandwidth and "
                             "the bound column (CPU)")
    parser.add_argument("--json", metavar="OUT.json",
                        help="write the results as a pytest-benchmark-like JSON")
    parser.add_argument("--markdown", metavar="OUT.md", help="also write the table here")
    parser.add_argument("--plot", metavar="OUT.png", help="write a bar chart (matplotlib)")
    parser.add_argument("--allow-tf32", action="store_true",
                        help="let cuDNN run float32 in TF32 (torch's default); without it both "
                             "sides compute in true float32")
    parser.set_defaults(shapes="quick")
    return parser


def main(argv=None):
    """Entry point of `python -m fastlstm bench`; returns the results dict
    (pytest-benchmark-like; its table is report.markdown(result))."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        device = torch.device(args.device)
    except RuntimeError as e:
        parser.error(f"--device: {e}")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: {cuda_skip_reason()}")
    rounds = args.rounds or {"quick": 5, "full": 15, "cells": 15, "tiny": 3}[args.shapes]
    warmup = args.warmup if args.warmup is not None else (1 if args.shapes == "tiny" else 2)
    shapes = GRIDS[args.shapes]
    modes = tuple(args.modes or MODES)
    print(f"fastlstm bench: {len(shapes)} shapes x {len(modes)} modes on {device_name(device)} "
          f"({device.type}, {args.dtype}), {rounds} interleaved rounds after {warmup} warm-up",
          file=sys.stderr)
    started = time.perf_counter()
    data = run_interleaved(shapes, modes, device, args.dtype, rounds=rounds, warmup=warmup,
                           parity=not args.no_parity, allow_tf32=args.allow_tf32,
                           bounds=not args.no_bounds,
                           progress=lambda g: print(f"  {g}", file=sys.stderr, flush=True))
    print(f"done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    if args.json:
        write_json(data, args.json)
    emit(data, args.markdown, args.plot,
         title=f"fastlstm bench ({args.shapes}, {device.type}, {args.dtype})")
    return data
