"""The interleaved runner of `python -m fastlstm bench`: torch and fastlstm
timed round by round on each case, alternating which goes first, so that
noise on a shared host hits both alike; on the CPU each case also gets its
hardware bound (bounds.py), from probes of the same run."""
import platform
import statistics
import time

import torch

from .bounds import Probes, case_bound
from .cases import build_pair, check_parity, make_step
from .grid import MODES
from .machine import BASELINE, IMPLS, OURS, case_info, group_name

__all__ = ["run_interleaved", "rounds_for", "stats_of"]


def rounds_for(seconds_per_call, budget_s, min_rounds=5, max_rounds=100):
    """Rounds that fit `budget_s`, within [min_rounds, max_rounds]."""
    if seconds_per_call <= 0:
        return max_rounds
    return max(min_rounds, min(max_rounds, int(budget_s / seconds_per_call)))


def stats_of(data):
    """The stats of one implementation's times, as pytest-benchmark writes them."""
    return {"median": statistics.median(data), "mean": statistics.fmean(data), "min": min(data),
            "max": max(data), "stddev": statistics.stdev(data) if len(data) > 1 else 0.0,
            "rounds": len(data), "data": list(data)}


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _interleaved_times(steps, rounds):
    times = {impl: [] for impl in IMPLS}
    for i in range(rounds):
        for impl in (IMPLS if i % 2 == 0 else IMPLS[::-1]):
            times[impl].append(_timed(steps[impl]))
    return times


def run_interleaved(shapes, modes=MODES, device="cpu", dtype="float32", rounds=5, warmup=2,
                    parity=True, budget_s=None, progress=None, allow_tf32=False, bounds=True):
    """Times torch and fastlstm on each shape and mode, alternating the two
    round by round (and which goes first) so that host noise hits both.

    Returns a dict shaped like a pytest-benchmark JSON ({"benchmarks": [...]},
    each with group, name, stats (median, mean, min, max, stddev, rounds, data)
    and extra_info), which the report takes. With `budget_s`, each (shape,
    mode) runs about that many seconds, at least `rounds` rounds (at most
    10x). On CUDA, cuDNN's float32 runs in true float32 unless `allow_tf32`
    (torch's default) lets it use TF32. On the CPU, with `bounds`, each
    result's extra_info holds its case's bound (bound_s, bound_kind) and the
    dict the probes behind them ("probes")."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = allow_tf32
    probes = Probes() if bounds and device.type == "cpu" else None
    benchmarks = []
    for shape in shapes:
        for mode in modes:
            group = group_name(shape, mode, device, dtype)
            if progress:
                progress(group)
            if parity:
                check_parity(shape, mode, device, dtype)
            ref, fast, x = build_pair(shape, device, dtype)
            steps = {BASELINE: make_step(ref, x, mode), OURS: make_step(fast, x, mode)}
            per_call = 0.0
            for _ in range(warmup):
                per_call = sum(_timed(step) for step in steps.values())
            n = rounds if budget_s is None else rounds_for(per_call, budget_s, rounds, 10 * rounds)
            times = _interleaved_times(steps, n)
            bound = {}
            if probes is not None:
                b = case_bound(shape, mode, dtype, probes)
                bound = {"bound_s": b.seconds, "bound_kind": b.kind}
            for impl in IMPLS:
                benchmarks.append({
                    "group": group, "name": f"{impl} {group}", "stats": stats_of(times[impl]),
                    "extra_info": dict(case_info(shape, mode, device, dtype, impl), **bound,
                                       timing=f"interleaved, {n} rounds after {warmup} warm-up"),
                })
    data = {"benchmarks": benchmarks, "machine_info": {"node": platform.node()},
            "datetime": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if probes is not None:
        data["probes"] = probes.as_dict()
    return data
