"""Runs cases of tests/bad_input_corpus.py named on the command line, one
after the other in this process, and writes one JSON line per case to
stdout: {"start": name} before it, then {"name", "fast", "torch", "compared"}
after it. A crash or a hang leaves a "start" line without its result, which
tests/test_fuzz_bad_input.py reports as that case's failure before it
starts another worker for the remaining cases."""
import json
import math
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from bad_input_corpus import CORPUS  # noqa: E402


def tensors_of(result):
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, (tuple, list)):
        return [t for item in result for t in tensors_of(item)]
    return []


def outcome(call):
    if call is None:
        return None, None
    try:
        result = call()
    except Exception as error:  # noqa: BLE001  (the point is which type)
        return {"raised": type(error).__name__, "message": str(error)[:2000]}, None
    return {"returned": True}, tensors_of(result)


def compare(actual, expected):
    """None where equal to float64 round-off (NaN where expected's is), else why not."""
    if len(actual) != len(expected):
        return f"{len(actual)} tensors, expected {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected)):
        try:
            torch.testing.assert_close(a.detach(), e.detach(), atol=1e-9, rtol=1e-7,
                                       equal_nan=True, check_layout=False)
        except AssertionError as error:
            return f"item {i}: {error}"[:2000]
    return None


def run(name):
    make, _ = CORPUS[name]
    try:
        fast_call, torch_call = make()
    except Exception as error:  # noqa: BLE001
        return {"setup_error": f"{type(error).__name__}: {error}"[:2000]}
    fast, fast_result = outcome(fast_call)
    ref, ref_result = outcome(torch_call)
    compared = None
    if fast_result is not None and ref_result is not None:
        compared = compare(fast_result, ref_result) or "equal"
    return {"fast": fast, "torch": ref, "compared": compared}


def main(names):
    torch.set_num_threads(1)
    for name in names:
        print(json.dumps({"start": name}), flush=True)
        result = run(name)
        print(json.dumps({"name": name, **result}, default=lambda v: None if isinstance(
            v, float) and math.isnan(v) else str(v)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
