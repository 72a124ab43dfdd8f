"""Peak resident memory of one training step (forward + backward) of fastlstm.LSTM
and of torch.nn.LSTM, each in a fresh subprocess, same shape and weights.

Method: in a new process, build the model and the input, run one small step of
another shape to load every library, read ru_maxrss (peak RSS so far), run one
training step of the shape, read ru_maxrss again. The difference is how far
the step raised the process's peak above everything before it.

    python bench/peak_memory.py --steps 100 --batch 64 --hidden 512"""
import argparse
import json
import resource
import subprocess
import sys

CHILD = """
import json, resource, sys, torch, fastlstm
impl, T, B, H, layers, bidir = sys.argv[1], *map(int, sys.argv[2:7])
torch.manual_seed(0)
ref = torch.nn.LSTM(H, H, layers, bidirectional=bool(bidir))
model = ref if impl == "torch" else fastlstm.LSTM.from_torch(ref)
warm = torch.randn(3, 2, H, requires_grad=True)
out, (h, c) = model(warm); (out.sum() + h.sum() + c.sum()).backward()
model.zero_grad(set_to_none=True)
x = torch.randn(T, B, H, requires_grad=True)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out, (h, c) = model(x); (out.sum() + h.sum() + c.sum()).backward()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"impl": impl, "peak_rise_mib": (after - before) / 1024}))
"""


def measure(impl, args):
    cmd = [sys.executable, "-c", CHILD, impl, str(args.steps), str(args.batch), str(args.hidden),
           str(args.layers), str(int(args.bidirectional))]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_rise_mib"]


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--bidirectional", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per impl")
    args = parser.parse_args()
    for impl in ("torch", "fastlstm"):
        rises = sorted(measure(impl, args) for _ in range(args.repeat))
        print(f"{impl:9s} peak RSS rise of one training step: median {rises[len(rises) // 2]:.1f} "
              f"MiB (runs: {', '.join(f'{r:.1f}' for r in rises)})")


if __name__ == "__main__":
    main()
