"""fastlstm against torch.nn.LSTM / nn.LSTMCell: same device, dtype, shape,
weights and inputs, measured in the same run.

Each (shape, mode, dtype, device) is one benchmark group holding both
implementations, so their ratio comes from one run on one machine. The grid,
the model pairs, the timed steps, the parity check and the bound model live
in fastlstm/bench/. On the CPU each result's extra_info also holds its
case's hardware bound (bound_s, bound_kind), from probes of the same
session. Timed run (about 25 min on 2 CPU cores, float32 and float64):

    python -m pytest bench --benchmark-only --benchmark-json=bench/results/cpu.json
    python bench/report.py bench/results/cpu.json --markdown cpu.md --plot cpu.png

CI runs this file with --benchmark-disable as a smoke test: every case runs
once, sequences cut to SMOKE_STEPS steps, after the parity check.
Options (--bench-quick, --bench-budget): bench/conftest.py."""
import os
import time

import pytest
import torch

from fastlstm import bench

# T of every shape when benchmarking is disabled (0: the full shapes, ~1 min)
SMOKE_STEPS = int(os.environ.get("FASTLSTM_BENCH_SMOKE_STEPS", "16"))
MIN_ROUNDS, MAX_ROUNDS = 5, 1000
WARMUP_ROUNDS = {"cpu": 1, "cuda": 3}  # after one cold call and one calibration call

_CUDA_SKIP = bench.cuda_skip_reason()
DEVICE_DTYPES = [
    pytest.param(device, dtype, id=f"{device}-{dtype}",
                 marks=[pytest.mark.skipif(device == "cuda" and _CUDA_SKIP is not None,
                                           reason=_CUDA_SKIP or "")])
    for device, dtype in bench.DEVICE_DTYPES
]
_checked = set()  # parity checked once per (shape, mode, device, dtype)
_probes = []  # the session's probes of the machine, made at the first timed CPU case


def _bound_info(shape, mode, dtype):
    if not _probes:
        _probes.append(bench.Probes())
    bound = bench.case_bound(shape, mode, dtype, _probes[0])
    return {"bound_s": bound.seconds, "bound_kind": bound.kind, "probes": _probes[0].as_dict()}


def _shape_id(shape):
    return shape.name.replace(" ", "-")


def run_case(benchmark, budget, shape, mode, impl, device, dtype):
    smoke = benchmark.disabled
    if smoke and SMOKE_STEPS > 0:
        shape = shape.with_steps(SMOKE_STEPS)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True  # torch's side: let cuDNN autotune (warm-up)
        torch.backends.cudnn.allow_tf32 = False  # float32 means float32 on both sides

    key = (shape, mode, device, dtype)
    if key not in _checked:  # never time a wrong answer
        bench.check_parity(shape, mode, device, dtype)
        _checked.add(key)

    ref, fast, x = bench.build_pair(shape, device, dtype)
    step = bench.make_step(ref if impl == bench.BASELINE else fast, x, mode)
    benchmark.group = bench.group_name(shape, mode, device, dtype)
    benchmark.extra_info.update(bench.case_info(shape, mode, device, dtype, impl), smoke=smoke)
    if smoke:
        benchmark.pedantic(step, rounds=1, iterations=1)
        return

    if device == "cpu":
        benchmark.extra_info.update(_bound_info(shape, mode, dtype))
    step()  # cold: allocations, oneDNN primitives, cuDNN autotuning
    start = time.perf_counter()
    step()
    per_call = time.perf_counter() - start
    rounds = bench.rounds_for(per_call, budget(device), MIN_ROUNDS, MAX_ROUNDS)
    benchmark.extra_info["budget_s"] = budget(device)
    benchmark.pedantic(step, rounds=rounds, iterations=1, warmup_rounds=WARMUP_ROUNDS[device])


@pytest.mark.parametrize("impl", bench.IMPLS)
@pytest.mark.parametrize("mode", bench.MODES)
@pytest.mark.parametrize("shape", bench.LSTM_SHAPES, ids=_shape_id)
@pytest.mark.parametrize("device,dtype", DEVICE_DTYPES)
def test_lstm(benchmark, bench_budget, device, dtype, shape, mode, impl):
    run_case(benchmark, bench_budget, shape, mode, impl, device, dtype)


@pytest.mark.parametrize("impl", bench.IMPLS)
@pytest.mark.parametrize("mode", bench.MODES)
@pytest.mark.parametrize("shape", bench.PACKED_SHAPES, ids=_shape_id)
@pytest.mark.parametrize("device,dtype", DEVICE_DTYPES)
def test_packed(benchmark, bench_budget, device, dtype, shape, mode, impl):
    run_case(benchmark, bench_budget, shape, mode, impl, device, dtype)


@pytest.mark.parametrize("impl", bench.IMPLS)
@pytest.mark.parametrize("mode", bench.MODES)
@pytest.mark.parametrize("shape", bench.CELL_SHAPES + bench.CELL_LOOP_SHAPES, ids=_shape_id)
@pytest.mark.parametrize("device,dtype", DEVICE_DTYPES)
def test_cell(benchmark, bench_budget, device, dtype, shape, mode, impl):
    run_case(benchmark, bench_budget, shape, mode, impl, device, dtype)
