"""Options of the benchmark suite (bench/test_bench_lstm.py).

    --bench-quick        only the shapes of fastlstm.bench.GRIDS["quick"]
                         (or FASTLSTM_BENCH_QUICK=1)
    --bench-budget SECS  time to spend per benchmark; rounds = SECS / (time
                         of one call), at least 5, at most 1000 (default 5 s
                         on the CPU, 2 s on CUDA; 1 s with --bench-quick; or
                         FASTLSTM_BENCH_BUDGET)

`pytest -k` selects as usual, e.g. -k "cpu and small and not bwd"."""
import os

import pytest

from fastlstm import bench


def pytest_addoption(parser):
    group = parser.getgroup("fastlstm bench")
    group.addoption("--bench-quick", action="store_true",
                    default=os.environ.get("FASTLSTM_BENCH_QUICK", "") not in ("", "0"),
                    help="only the quick subset of the shape grid (fastlstm.bench.GRIDS)")
    group.addoption("--bench-budget", type=float, metavar="SECONDS",
                    default=float(os.environ["FASTLSTM_BENCH_BUDGET"])
                    if os.environ.get("FASTLSTM_BENCH_BUDGET") else None,
                    help="seconds of timed rounds per benchmark (default: 5 on CPU, 2 on CUDA, "
                         "1 with --bench-quick)")


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--bench-quick"):
        return
    quick = {shape.name for shape in bench.GRIDS["quick"]}
    keep, drop = [], []
    for item in items:
        shape = getattr(item, "callspec", None) and item.callspec.params.get("shape")
        (keep if shape is None or shape.name in quick else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def bench_budget(request):
    """Seconds of timed rounds per benchmark on `device` (a function of it)."""
    explicit = request.config.getoption("--bench-budget")
    quick = request.config.getoption("--bench-quick")

    def budget(device):
        if explicit is not None:
            return explicit
        if quick:
            return 1.0
        return 2.0 if device == "cuda" else 5.0
    return budget


@pytest.fixture(scope="session")
def machine():
    return bench.machine_info()
