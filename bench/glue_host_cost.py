"""The host cost of one LSTMCell step through the CUDA glue, measured without
a GPU: the glue (csrc/kernel_glue) runs on CPU tensors with an executor whose
launches do nothing (bench/glue_probe.cpp), beside torch's own lstm_cell on
the same CPU tensors (its dispatch, and a few microseconds of arithmetic at
these sizes). Both sides are timed in the same process, in interleaved
rounds; the medians are printed.

    python bench/glue_host_cost.py [--rounds 15] [--calls 2000]"""
import argparse
import os
import statistics
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = [(1, 8), (16, 256), (64, 512)]


def load_probe():
    from torch.utils import cpp_extension
    import fastlstm  # noqa: F401  (the fastlstm ops the glue's checks read)
    build = os.path.join(ROOT, "build", "glue-probe")
    os.makedirs(build, exist_ok=True)
    csrc = os.path.join(ROOT, "csrc")
    sources = [os.path.join(ROOT, "bench", "glue_probe.cpp"),
               os.path.join(csrc, "kernel_glue", "lstm_kernel_glue.cpp"),
               *(os.path.join(csrc, f) for f in ("lstm_args.cpp", "kernel_choice.cpp",
                                                 "step_schedule.cpp"))]
    cpp_extension.load(name="fastlstm_glue_probe", sources=sources, build_directory=build,
                       extra_include_paths=[csrc], is_python_module=False,
                       extra_cflags=["-O2", "-std=c++17", "-fvisibility=hidden"])
    return torch.ops.fastlstm_glue_probe


def torch_cell_us(x, h, c, w_ih, w_hh, b, backward, calls):
    leaves = [t.detach().requires_grad_(backward) for t in (x, h, c, w_ih, w_hh)]
    start = time.perf_counter()
    for _ in range(calls):
        h1, c1 = torch.lstm_cell(leaves[0], (leaves[1], leaves[2]), leaves[3], leaves[4], b, b)
        if backward:
            torch.autograd.grad((h1.sum() + c1.sum()), leaves)
    return (time.perf_counter() - start) / calls * 1e6


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    probe = load_probe()
    print("| B, H | mode | glue, no launches (us) | torch.lstm_cell on the CPU (us) |")
    print("|---|---|---:|---:|")
    for batch, hidden in SIZES:
        x, h, c = (torch.randn(batch, hidden) for _ in range(3))
        w_ih, w_hh = torch.randn(4 * hidden, hidden), torch.randn(4 * hidden, hidden)
        b = torch.randn(4 * hidden)
        for backward in (False, True):
            ours, theirs = [], []
            for _ in range(args.rounds):
                ours.append(probe.glue_us(x, h, c, w_ih, w_hh, b, backward, args.calls))
                theirs.append(torch_cell_us(x, h, c, w_ih, w_hh, b, backward, args.calls))
            print(f"| B{batch} H{hidden} | {'fwd+bwd' if backward else 'fwd'} | "
                  f"{statistics.median(ours):.1f} | {statistics.median(theirs):.1f} |")


if __name__ == "__main__":
    main()
