"""Runs every CUDA kernel variant once, forward and backward, on small inputs
that still span several blocks, partial tiles and packed rows: the workload
for compute-sanitizer (memcheck, racecheck, synccheck, initcheck).

    compute-sanitizer --tool racecheck --kernel-name kns=lstm python tools/cuda_sanitize_cases.py

Each case is also compared with fastlstm.reference, so a run that the
sanitizer passes is a run that computed the right numbers. Exits non-zero on
any mismatch."""
import argparse
import os
import sys

import torch

import fastlstm
from fastlstm.reference import lstm_layer_ref

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests"))
from conftest import layer_args, layer_results, on_device  # noqa: E402

# (name, layer sizes, reverse, kernels, dtypes)
CASES = [
    ("multi_block", dict(steps=3, batch=37, input_size=5, hidden=70), False,
     ["step_narrow", "step_wide", "persistent", "persistent_2d"], [torch.float32]),
    ("packed_reverse", dict(batch_sizes=[37, 30, 17, 2], input_size=3, hidden=24), True,
     ["step_narrow", "step_wide", "persistent", "persistent_2d"], [torch.float32, torch.float64]),
    ("wide_batch_2d", dict(steps=3, batch=130, input_size=8, hidden=96), False,
     ["persistent_2d"], [torch.float32, torch.float64]),
    ("projection", dict(steps=3, batch=19, input_size=4, hidden=72, proj=70), True,
     ["step_narrow", "step_wide"], [torch.float32]),
    ("tiles", dict(steps=3, batch=20, input_size=16, hidden=64), False,
     ["tensor_core", "persistent", "persistent_2d", "persistent_tensor_core", "step_narrow"],
     [torch.float16, torch.bfloat16]),
    ("tiles_packed_reverse", dict(batch_sizes=[5, 4, 2], input_size=8, hidden=32), True,
     ["tensor_core", "persistent", "persistent_2d", "persistent_tensor_core"], [torch.float16]),
    # Float32 on the Tensor Core kernel is TF32 (torch's default allow_tf32): passes of 16
    # rows, where half and bfloat16 slices of at most 8 take passes of 8.
    ("tf32_tiles", dict(steps=3, batch=20, input_size=16, hidden=64), False,
     ["persistent_tensor_core"], [torch.float32]),
    # Past one block's 128 units: several blocks a batch slice, handshaking by flags (the
    # layers above fit one block a slice).
    ("blocks_a_slice", dict(steps=3, batch=5, input_size=4, hidden=160), True,
     ["persistent_2d"], [torch.float32]),
]
TF32_TOL = 5e-3


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip", action="append", default=[], metavar="KERNEL",
                        help="leave this forced kernel out (repeatable)")
    skip = set(parser.parse_args().skip)
    failures = 0
    for name, sizes, reverse, kernels, dtypes in CASES:
        for dtype in dtypes:
            exact = on_device(layer_args(dtype=torch.float64, **sizes), "cuda")
            args = {k: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point()
                    else v for k, v in exact.items()}
            exact = {k: v.double() if isinstance(v, torch.Tensor) and v.is_floating_point()
                     else v for k, v in args.items()}
            expected = layer_results(lstm_layer_ref, exact, reverse)
            for kernel in (k for k in kernels if k not in skip):
                with fastlstm.backend("native", kernel=kernel):
                    got = layer_results(fastlstm.lstm_layer, args, reverse)
                    inference = torch.ops.fastlstm.lstm_layer(*args.values(), reverse, False)
                    ran = fastlstm._backend.last_kernel("cuda")
                torch.cuda.synchronize()
                tol = (1e-9 if dtype == torch.float64 else
                       TF32_TOL if dtype == torch.float32 and kernel == "persistent_tensor_core"
                       else 1e-4 if dtype == torch.float32 else 5e-2)
                err = max((g.double() - e).abs().max().item() / max(1.0, e.abs().max().item())
                          for g, e in zip(got, expected))
                err = max(err, (inference[0].double() - expected[0]).abs().max().item())
                ok = err <= tol
                failures += not ok
                print(f"{'ok  ' if ok else 'FAIL'} {name:22s} {str(dtype)[6:]:9s} "
                      f"{kernel:12s} ran {ran:24s} max rel err {err:.2e}", flush=True)
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
