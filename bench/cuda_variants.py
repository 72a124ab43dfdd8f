"""Every fastlstm CUDA kernel variant, forced, against cuDNN (torch.nn.LSTM) on
a sweep of batch and hidden sizes: the data behind the kernel choice of
csrc/kernel_glue (persistent up to which batch; narrow or wide tiles; Tensor
Cores). Interleaved rounds, medians, ratios to cuDNN measured in the same run.

    python bench/cuda_variants.py [--json OUT.json] [--steps 100] [--rounds 9]

Prints one table per (dtype, mode): cuDNN's median, then each variant's
speedup over it (a variant that cannot run the shape shows its reason)."""
import argparse
import json
import statistics
import time

import torch

import fastlstm
from fastlstm import bench

VARIANTS = {"float32": ["auto", "step_narrow", "step_wide", "persistent", "persistent_2d"],
            "float16": ["auto", "step_narrow", "tensor_core", "persistent", "persistent_2d",
                        "persistent_tensor_core"],
            "bfloat16": ["auto", "tensor_core", "persistent", "persistent_2d",
                         "persistent_tensor_core"]}
BATCHES = {"float32": (1, 4, 8, 16, 32, 64, 128), "float16": (1, 8, 16, 32, 64, 128),
           "bfloat16": (8, 32)}
HIDDEN = (256, 512, 1024)


def timed(step):
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def sweep(dtype, mode, steps, rounds):
    rows = []
    for hidden in HIDDEN:
        for batch in BATCHES[dtype]:
            shape = bench.Shape(f"T{steps} B{batch} H{hidden}", steps, batch, hidden, hidden)
            ref, fast, x = bench.build_pair(shape, "cuda", dtype)
            calls = {"cudnn": bench.make_step(ref, x, mode)}
            errors = {}
            for kernel in VARIANTS[dtype]:
                fast_step = bench.make_step(fast, x, mode)

                def call(kernel=kernel, fast_step=fast_step):
                    with fastlstm.backend("native", kernel=kernel):
                        fast_step()
                try:
                    call()
                    calls[kernel] = call
                except RuntimeError as e:
                    errors[kernel] = str(e).split("\n")[0][:60]
            for call in calls.values():
                call()
            times = {name: [] for name in calls}
            names = list(calls)
            for i in range(rounds):
                for name in (names if i % 2 == 0 else names[::-1]):
                    times[name].append(timed(calls[name]))
            medians = {name: statistics.median(t) for name, t in times.items()}
            rows.append({"dtype": dtype, "mode": mode, "T": steps, "B": batch, "H": hidden,
                         "median_s": medians, "errors": errors})
            print(table_row(rows[-1], VARIANTS[dtype]), flush=True)
    return rows


def table_row(row, variants):
    base = row["median_s"]["cudnn"]
    cells = []
    for kernel in variants:
        if kernel in row["median_s"]:
            cells.append(f"{base / row['median_s'][kernel]:.2f}x")
        else:
            cells.append("n/a")
    return (f"| {row['dtype']} | {row['mode']} | B{row['B']} H{row['H']} | {base * 1e3:.3f} ms | "
            + " | ".join(cells) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--dtype", action="append", choices=sorted(VARIANTS))
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False  # float32 means float32 on both sides
    rows = []
    for dtype in args.dtype or ["float32", "float16", "bfloat16"]:
        print("| dtype | mode | shape | cuDNN | " + " | ".join(VARIANTS[dtype]) + " |")
        for mode in bench.MODES:
            rows += sweep(dtype, mode, args.steps, args.rounds)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": bench.machine_info("cuda"), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
