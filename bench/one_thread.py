"""fastlstm against torch.nn.LSTM / nn.LSTMCell on one thread, timed in CPU
time (time.thread_time), not wall time: on a shared host whose other
processes take the cores, a one-thread process's CPU time moves little,
where two-thread wall times (the grid's) move by 2x. The ratio is not the
grid's (one thread, not all), but A/Bs of the engine hold there.

    python bench/one_thread.py --dtype float64 --shapes full
    python bench/one_thread.py --dtype float32 --shapes cells --rounds 7"""
import argparse
import statistics
import time

import torch

from fastlstm import bench


def cpu_times(steps, rounds):
    """Median CPU time of each callable, rounds alternating which goes first."""
    times = [[] for _ in steps]
    for step in steps:
        step()
    for r in range(rounds):
        for i in (range(len(steps)) if r % 2 == 0 else reversed(range(len(steps)))):
            start = time.thread_time()
            steps[i]()
            times[i].append(time.thread_time() - start)
    return [statistics.median(t) for t in times]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--shapes", default="full", choices=sorted(bench.GRIDS))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"one thread, CPU time, {args.dtype}, {args.rounds} alternating rounds: "
          "torch / fastlstm (above 1.00x fastlstm is faster), fastlstm's median")
    for shape in bench.GRIDS[args.shapes]:
        ref, fast, x = bench.build_pair(shape, "cpu", args.dtype)
        cells = []
        for mode in bench.MODES:
            ours, theirs = cpu_times([bench.make_step(fast, x, mode), bench.make_step(ref, x, mode)],
                                     args.rounds)
            cells.append(f"{mode} {theirs / ours:.2f}x ({ours * 1e3:.2f} ms)")
        print(f"{shape.name:40s} " + "   ".join(cells), flush=True)


if __name__ == "__main__":
    main()
