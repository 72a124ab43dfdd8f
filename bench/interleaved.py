"""fastlstm vs torch.nn.LSTM with their steps alternated, so that a noisy,
shared host slows both alike; prints medians and the speedup.

    python bench/interleaved.py --steps 100 --batch 64 --hidden 512 --mode fwd+bwd"""
import argparse
import statistics
import time

import torch

import fastlstm


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=100, help="sequence length T")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=512, help="hidden size (= input size)")
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--bidirectional", action="store_true")
    parser.add_argument("--mode", choices=("fwd", "fwd+bwd"), default="fwd+bwd")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()

    torch.manual_seed(0)
    ref = torch.nn.LSTM(args.hidden, args.hidden, args.layers, bidirectional=args.bidirectional)
    models = {"torch.nn.LSTM": ref, "fastlstm.LSTM": fastlstm.LSTM.from_torch(ref)}
    x = torch.randn(args.steps, args.batch, args.hidden, requires_grad=args.mode == "fwd+bwd")

    def run(model):
        if args.mode == "fwd":
            with torch.no_grad():
                model(x)
        else:
            out, (h_n, c_n) = model(x)
            (out.sum() + h_n.sum() + c_n.sum()).backward()

    times = {name: [] for name in models}
    for round_ in range(args.rounds + 2):  # the first two rounds warm up
        for name, model in models.items():
            elapsed = timed(lambda: run(model))
            if round_ >= 2:
                times[name].append(elapsed)
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, median in medians.items():
        print(f"{name:15s} {median * 1e3:9.2f} ms (median of {args.rounds})")
    print(f"speedup fastlstm vs nn.LSTM: "
          f"{medians['torch.nn.LSTM'] / medians['fastlstm.LSTM']:.2f}x")


if __name__ == "__main__":
    main()
