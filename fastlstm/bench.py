"""Benchmarks of fastlstm against torch.nn.LSTM / nn.LSTMCell, and their report.

Three users share this module (it needs neither pytest nor bench/, so it works
after a plain ``pip install .``):

* ``bench/test_bench_lstm.py`` (pytest-benchmark) takes the shape grid, the
  model pairs, the timed steps and the parity check from here;
* ``python bench/report.py RESULTS.json`` (a thin wrapper of :func:`report_main`)
  turns a pytest-benchmark JSON into a markdown table of speedups and a PNG;
* ``python -m fastlstm bench`` (:func:`main`) times a few shapes with the two
  implementations interleaved round by round, and prints the same table.

Speedup = median time of torch.nn.LSTM / median time of fastlstm, both run
with the same configuration, weights, inputs, dtype and device; above 1.0,
fastlstm is faster."""
import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, replace

import torch
from torch import nn

from .cell import LSTMCell
from .lstm import LSTM
from ._cli import non_negative_int, positive_int

__all__ = [
    "Shape", "LSTM_SHAPES", "CELL_SHAPES", "ALL_SHAPES", "GRIDS", "MODES", "IMPLS",
    "DEVICE_DTYPES", "build_pair", "make_step", "check_parity", "kernel_name",
    "machine_info", "case_info", "group_name", "run_interleaved", "speedup_rows",
    "summary", "markdown", "plot", "report_main", "main",
]

BASELINE, OURS = "torch", "fastlstm"
IMPLS = (BASELINE, OURS)
MODES = ("fwd", "fwd+bwd")
# (device, dtype) pairs of the grid: float32 on the CPU; float32, float16 and
# bfloat16 on CUDA.
DEVICE_DTYPES = (("cpu", "float32"), ("cuda", "float32"), ("cuda", "float16"),
                 ("cuda", "bfloat16"))


# ----------------------------------------------------------------------------
# Shapes

@dataclass(frozen=True)
class Shape:
    """One benchmark shape: an LSTM over T steps, or T steps of an LSTMCell."""
    name: str
    steps: int          # T: sequence length, or the number of cell steps
    batch: int          # B
    input_size: int     # I
    hidden_size: int    # H
    layers: int = 1
    bidirectional: bool = False
    cell: bool = False  # LSTMCell, stepped T times from Python

    @property
    def kind(self):
        return "LSTMCell" if self.cell else "LSTM"

    def with_steps(self, steps):
        """The same shape, at most `steps` long (the benchmark smoke run)."""
        return replace(self, steps=min(self.steps, steps))

    def info(self):
        return {"shape": self.name, "kind": self.kind, "T": self.steps, "B": self.batch,
                "I": self.input_size, "H": self.hidden_size, "layers": self.layers,
                "bidirectional": self.bidirectional}


def _lstm(name, steps, batch, hidden, layers=1, bidirectional=False):
    return Shape(name, steps, batch, hidden, hidden, layers, bidirectional)


def _cell(steps, batch, hidden):
    return Shape(f"cell T{steps} B{batch} H{hidden}", steps, batch, hidden, hidden, cell=True)


LSTM_SHAPES = (
    [_lstm("fastrnns T100 B64 H512", 100, 64, 512)]
    + [_lstm(f"small T256 B{b} H{h}", 256, b, h) for b in (1, 4, 16) for h in (128, 256, 512, 1024)]
    + [_lstm("long T2048 B8 H256", 2048, 8, 256),
       _lstm("stacked T100 B32 H256 2-layer bidir", 100, 32, 256, layers=2, bidirectional=True)]
)
CELL_SHAPES = [_cell(100, b, h) for b in (1, 16, 64) for h in (256, 512)]
ALL_SHAPES = LSTM_SHAPES + CELL_SHAPES
_BY_NAME = {s.name: s for s in ALL_SHAPES}

# Named subsets: "quick" (the CLI default, and `pytest bench --bench-quick`),
# "full" (the whole grid) and "tiny" (seconds in all; for tests).
GRIDS = {
    "full": ALL_SHAPES,
    "quick": [_BY_NAME[n] for n in (
        "fastrnns T100 B64 H512", "small T256 B1 H256", "small T256 B16 H512",
        "stacked T100 B32 H256 2-layer bidir", "cell T100 B16 H256")],
    "tiny": [_lstm("tiny T8 B2 H16", 8, 2, 16),
             _lstm("tiny T8 B2 H16 2-layer bidir", 8, 2, 16, layers=2, bidirectional=True),
             _cell(8, 2, 16)],
}


# ----------------------------------------------------------------------------
# Models, inputs and the timed steps

def _dtype(dtype):
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype


def _dtype_name(dtype):
    return str(_dtype(dtype)).removeprefix("torch.")


def build_pair(shape, device="cpu", dtype="float32", seed=0):
    """(torch module, fastlstm module with the same weights, input [T, B, I]).

    The torch module is built first from a fixed seed; fastlstm copies its
    weights, so the pair is the same for every run and impl."""
    device, dtype = torch.device(device), _dtype(dtype)
    torch.manual_seed(seed)
    factory = {"device": device, "dtype": dtype}
    if shape.cell:
        ref = nn.LSTMCell(shape.input_size, shape.hidden_size, **factory)
        fast = LSTMCell(shape.input_size, shape.hidden_size, **factory)
        fast.load_state_dict(ref.state_dict())
    else:
        ref = nn.LSTM(shape.input_size, shape.hidden_size, shape.layers,
                      bidirectional=shape.bidirectional, **factory)
        fast = LSTM.from_torch(ref)
    x = torch.randn(shape.steps, shape.batch, shape.input_size, **factory)
    return ref, fast, x


def _run_cell(cell, x):
    h = c = x.new_zeros(x.shape[1], cell.hidden_size)
    outs = []
    for x_t in x:
        h, c = cell(x_t, (h, c))
        outs.append(h)
    return torch.stack(outs), (h, c)


def _forward(model, x):
    """output [T, B, D*H], (h_n, c_n) of an nn.LSTM-like model or T cell steps."""
    if isinstance(model, (nn.LSTMCell, LSTMCell)):
        return _run_cell(model, x)
    return model(x)


def _loss(out, h_n, c_n):
    return out.sum() + h_n.sum() + c_n.sum()


def make_step(model, x, mode):
    """The timed callable: one inference pass under no_grad ("fwd"), or one
    training step, forward and backward of out.sum() + h_n.sum() + c_n.sum()
    with the gradients set to None first ("fwd+bwd"). On CUDA it synchronizes
    before returning, so the time covers the kernels, not their launch."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    params = list(model.parameters())
    if mode == "fwd":
        def step():
            with torch.no_grad():
                _forward(model, x)
            sync()
    else:
        x_leaf = x.detach().requires_grad_()

        def step():
            x_leaf.grad = None
            for p in params:
                p.grad = None
            out, (h_n, c_n) = _forward(model, x_leaf)
            _loss(out, h_n, c_n).backward()
            sync()
    return step


def _outputs(model, x, mode):
    """What the parity check compares: the outputs, and in fwd+bwd mode the
    gradients of the input and of every parameter (by name)."""
    if mode == "fwd":
        with torch.no_grad():
            out, (h_n, c_n) = _forward(model, x)
        return {"output": out, "h_n": h_n, "c_n": c_n}
    model.zero_grad(set_to_none=True)
    x = x.detach().requires_grad_()
    out, (h_n, c_n) = _forward(model, x)
    _loss(out, h_n, c_n).backward()
    result = {"output": out.detach(), "h_n": h_n.detach(), "c_n": c_n.detach(),
              "grad input": x.grad}
    result.update((f"grad {name}", p.grad) for name, p in model.named_parameters())
    model.zero_grad(set_to_none=True)
    return result


# Loose on purpose: the check is there so that no benchmark times a wrong
# answer, not to test accuracy (tests/ does that, tightly).
FP32_TOL = {"atol": 1e-4, "rtol": 1e-3}
LOW_PRECISION_FLOOR = {torch.float16: 2e-3, torch.bfloat16: 2e-2}


@contextlib.contextmanager
def _true_float32():
    """cuDNN in float32, not TF32, for the references of the parity check."""
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = tf32


def check_parity(shape, mode, device="cpu", dtype="float32", seed=0):
    """Asserts that fastlstm matches torch on this case (raises AssertionError).

    float32/float64: outputs (and in fwd+bwd mode every gradient) match within
    FP32_TOL. float16/bfloat16: the outputs of both are compared with a
    float32 run of the same weights, and fastlstm's largest error must stay
    within twice torch's own (plus a small floor); gradients must be finite."""
    ref, fast, x = build_pair(shape, device, dtype, seed)
    with _true_float32():
        want, got = _outputs(ref, x, mode), _outputs(fast, x, mode)
    dtype = _dtype(dtype)
    if dtype not in LOW_PRECISION_FLOOR:
        for key in want:
            # A weight gradient sums T*B products: its rounding grows with its magnitude.
            scale = max(1.0, want[key].abs().max().item())
            torch.testing.assert_close(got[key], want[key], rtol=FP32_TOL["rtol"],
                                       atol=FP32_TOL["atol"] * scale,
                                       msg=lambda m, key=key: f"{shape.name} {mode}: {key}: {m}")
        return
    with _true_float32():
        ref32 = _outputs(ref.float(), x.float(), "fwd")
    for key in ("output", "h_n", "c_n"):
        err_torch = (want[key].float() - ref32[key]).abs().max().item()
        err_fast = (got[key].float() - ref32[key]).abs().max().item()
        bound = 2 * err_torch + LOW_PRECISION_FLOOR[dtype]
        assert err_fast <= bound, (
            f"{shape.name} {mode} {_dtype_name(dtype)}: {key}: fastlstm's error against float32 "
            f"{err_fast:.3g} > 2 x torch's {err_torch:.3g} + {LOW_PRECISION_FLOOR[dtype]}")
    for key, value in got.items():
        if key.startswith("grad") and value is not None:
            assert torch.isfinite(value).all(), f"{shape.name} {mode}: {key} is not finite"


# ----------------------------------------------------------------------------
# What ran, where

def kernel_name(device):
    """(name of the fastlstm kernels for `device`, whether fastlstm reported it).

    fastlstm._backend.kernel_name answers where the op it asks exists; with an
    older build it raises, and the name is assumed from the device."""
    try:
        from . import _backend
        return str(_backend.kernel_name(device)), True
    except Exception:  # noqa: BLE001 (an import error, a missing op: anything)
        return ("cuda-step" if torch.device(device).type == "cuda" else "cpu"), False


def torch_kernel_name(device, shape):
    device = torch.device(device)
    if device.type == "cuda":
        return "aten-fused-cell" if shape.cell else "cudnn"
    if shape.cell:
        return "aten"
    return "onednn" if torch.backends.mkldnn.is_available() else "aten"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_name(device):
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model()


def machine_info(device="cpu"):
    """The machine, for the report's header: CPU model, cores, threads, torch
    version, OMP_WAIT_POLICY, and the GPU where `device` is one."""
    info = {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default")}
    if torch.device(device).type == "cuda":
        info["gpu"] = device_name(device)
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
        info["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
    return info


def group_name(shape, mode, device, dtype):
    """The benchmark group: one shape, mode, dtype and device, both impls."""
    return f"{shape.name} {mode} {_dtype_name(dtype)} {torch.device(device).type}"


def case_info(shape, mode, device, dtype, impl):
    """benchmark.extra_info of one benchmark (and of one CLI result)."""
    info = machine_info(device)
    info.update(shape.info())
    kernel, reported = kernel_name(device) if impl == OURS else (torch_kernel_name(device, shape),
                                                                 True)
    info.update(impl=impl, mode=mode, dtype=_dtype_name(dtype), device=torch.device(device).type,
                device_name=device_name(device), kernel=kernel, kernel_reported=reported)
    return info


def cuda_skip_reason():
    """None where CUDA works, else why the CUDA cases are skipped."""
    if torch.cuda.is_available():
        return None
    if torch.version.cuda is None:
        return f"no CUDA device: torch {torch.__version__} is a CPU-only build"
    return "no CUDA device: torch.cuda.is_available() is False"


def rounds_for(seconds_per_call, budget_s, min_rounds=5, max_rounds=100):
    """Rounds that fit `budget_s`, within [min_rounds, max_rounds]."""
    if seconds_per_call <= 0:
        return max_rounds
    return max(min_rounds, min(max_rounds, int(budget_s / seconds_per_call)))


# ----------------------------------------------------------------------------
# Quick interleaved runs (python -m fastlstm bench)

def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_interleaved(shapes, modes=MODES, device="cpu", dtype="float32", rounds=5, warmup=2,
                    parity=True, budget_s=None, progress=None, allow_tf32=False):
    """Times torch and fastlstm on each shape and mode, alternating the two
    round by round (and which goes first) so that host noise hits both.

    Returns a dict shaped like a pytest-benchmark JSON ({"benchmarks": [...]},
    each with group, name, stats (median, mean, min, max, stddev, rounds, data)
    and extra_info), which :func:`markdown` and :func:`plot` take.
    With `budget_s`, each (shape, mode) runs about that many seconds, at least
    `rounds` rounds (at most 10x). On CUDA, cuDNN's float32 runs in true
    float32 unless `allow_tf32` (torch's default) lets it use TF32."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = allow_tf32
    benchmarks = []
    for shape in shapes:
        for mode in modes:
            if progress:
                progress(group_name(shape, mode, device, dtype))
            if parity:
                check_parity(shape, mode, device, dtype)
            ref, fast, x = build_pair(shape, device, dtype)
            steps = {BASELINE: make_step(ref, x, mode), OURS: make_step(fast, x, mode)}
            per_call = 0.0
            for _ in range(warmup):
                per_call = sum(_timed(step) for step in steps.values())
            n = rounds if budget_s is None else rounds_for(per_call, budget_s, rounds, 10 * rounds)
            times = {impl: [] for impl in IMPLS}
            for i in range(n):
                order = IMPLS if i % 2 == 0 else IMPLS[::-1]
                for impl in order:
                    times[impl].append(_timed(steps[impl]))
            for impl in IMPLS:
                benchmarks.append({
                    "group": group_name(shape, mode, device, dtype),
                    "name": f"{impl} {group_name(shape, mode, device, dtype)}",
                    "stats": _stats(times[impl]),
                    "extra_info": dict(case_info(shape, mode, device, dtype, impl),
                                       timing=f"interleaved, {n} rounds after {warmup} warm-up"),
                })
    return {"benchmarks": benchmarks, "machine_info": {"node": platform.node()},
            "datetime": time.strftime("%Y-%m-%dT%H:%M:%S")}


def _stats(data):
    return {"median": statistics.median(data), "mean": statistics.fmean(data), "min": min(data),
            "max": max(data), "stddev": statistics.stdev(data) if len(data) > 1 else 0.0,
            "rounds": len(data), "data": list(data)}


# ----------------------------------------------------------------------------
# Report: speedup table, summary and plot from a pytest-benchmark JSON

@dataclass
class Row:
    """One shape (at one dtype and device): torch and fastlstm medians per mode."""
    shape: str
    dtype: str
    device: str
    medians: "OrderedDict[str, tuple]"  # mode -> (torch median s, fastlstm median s)
    kernels: dict                        # mode -> fastlstm kernel name

    @property
    def label(self):
        return f"{self.shape} {self.dtype} {self.device}"

    def speedup(self, mode):
        ref, ours = self.medians[mode]
        return ref / ours


def _case_key(bench):
    """(shape, mode, dtype, device) of one benchmark, from extra_info (older
    files without it fall back to the group name)."""
    info = bench.get("extra_info", {})
    shape = info.get("shape") or bench.get("group") or bench.get("name")
    return (str(shape), info.get("mode", "run"), info.get("dtype", "?"), info.get("device", "?"))


def speedup_rows(data):
    """Rows, in the order their shapes first appear, of the groups holding
    both a torch and a fastlstm result; modes in order of appearance too."""
    cases = OrderedDict()
    for bench in data.get("benchmarks", []):
        impl = bench.get("extra_info", {}).get("impl")
        median = (bench.get("stats") or {}).get("median")
        if impl not in IMPLS or not median:
            continue
        entry = cases.setdefault(_case_key(bench), {})
        entry[impl] = median
        if impl == OURS:
            entry["kernel"] = bench["extra_info"].get("kernel", "?")
    rows = OrderedDict()
    for (shape, mode, dtype, device), entry in cases.items():
        if BASELINE not in entry or OURS not in entry:
            continue
        row = rows.setdefault((shape, dtype, device), Row(shape, dtype, device, OrderedDict(), {}))
        row.medians[mode] = (entry[BASELINE], entry[OURS])
        row.kernels[mode] = entry.get("kernel", "?")
    for row in rows.values():  # fwd before fwd+bwd, whatever order the file has
        row.medians = OrderedDict(sorted(row.medians.items(), key=lambda kv: _order(MODES, kv[0])))
    # Device, dtype, then the grid's order (a JSON may come sorted by name);
    # shapes not in the grid keep their order of appearance, after it.
    return sorted(rows.values(), key=lambda r: (
        _order([d for d, _ in DEVICE_DTYPES], r.device), _order([t for _, t in DEVICE_DTYPES],
                                                                  r.dtype),
        _order([s.name for s in ALL_SHAPES], r.shape)))


def _order(known, value):
    known = list(OrderedDict.fromkeys(known))
    return known.index(value) if value in known else len(known)


def modes_of(rows):
    modes = []
    for row in rows:
        modes += [m for m in row.medians if m not in modes]
    return modes


def geomean(values):
    values = list(values)
    if not values:
        return float("nan")
    return math.exp(sum(math.log(v) for v in values) / len(values))


def summary(rows):
    """{"per_mode": {mode: (geomean speedup, count)}, "overall": (geomean, count),
    "worst": (row label, mode, speedup) or None}."""
    per_mode = OrderedDict()
    for mode in modes_of(rows):
        values = [r.speedup(mode) for r in rows if mode in r.medians]
        per_mode[mode] = (geomean(values), len(values))
    everything = [(r.label, m, r.speedup(m)) for r in rows for m in r.medians]
    return {"per_mode": per_mode,
            "overall": (geomean(s for _, _, s in everything), len(everything)),
            "worst": min(everything, key=lambda item: item[2]) if everything else None}


def _machines(data):
    """One header line per distinct machine/device found in extra_info."""
    lines = []
    for bench in data.get("benchmarks", []):
        info = bench.get("extra_info", {})
        parts = [f"CPU {info.get('cpu', '?')}, {info.get('cores', '?')} cores, "
                 f"{info.get('threads', '?')} torch threads"]
        if info.get("gpu"):
            parts.append(f"GPU {info['gpu']} (CUDA {info.get('cuda', '?')}, "
                         f"cuDNN {info.get('cudnn', '?')})")
        parts.append(f"torch {info.get('torch', '?')}")
        if info.get("omp_wait_policy", "default") != "default":
            parts.append(f"OMP_WAIT_POLICY={info['omp_wait_policy']}")
        line = ", ".join(parts)
        if line not in lines:
            lines.append(line)
    return lines


def markdown(data, title=None):
    """The markdown report of a pytest-benchmark JSON (already loaded)."""
    rows = speedup_rows(data)
    modes = modes_of(rows)
    lines = [f"# {title}", ""] if title else []
    lines += [f"Machine: {m}" for m in _machines(data)] or ["Machine: unknown"]
    lines += ["", "Speedup of fastlstm over torch.nn.LSTM / nn.LSTMCell (torch median / "
                  "fastlstm median; above 1.00x fastlstm is faster), same weights, inputs, "
                  "dtype and device.", ""]
    if not rows:
        return "\n".join(lines + ["No group holds both a torch and a fastlstm result."])
    lines += ["| shape | dtype | device | " + " | ".join(modes) + " |",
              "|---|---|---|" + "---:|" * len(modes)]
    for row in rows:
        cells = [f"{row.speedup(m):.2f}x" if m in row.medians else "" for m in modes]
        lines.append(f"| {row.shape} | {row.dtype} | {row.device} | " + " | ".join(cells) + " |")
    s = summary(rows)
    lines += ["", "| geometric mean | speedup | groups |", "|---|---:|---:|"]
    lines += [f"| {mode} | {geo:.2f}x | {n} |" for mode, (geo, n) in s["per_mode"].items()]
    lines.append(f"| **overall** | **{s['overall'][0]:.2f}x** | {s['overall'][1]} |")
    label, mode, worst = s["worst"]
    lines += ["", f"Worst: {label} {mode}: {worst:.2f}x", "",
              "Medians (ms):", "",
              "| shape | dtype | device | mode | torch | fastlstm | fastlstm kernel |",
              "|---|---|---|---|---:|---:|---|"]
    for row in rows:
        for mode, (ref, ours) in row.medians.items():
            lines.append(f"| {row.shape} | {row.dtype} | {row.device} | {mode} | "
                         f"{ref * 1e3:.3f} | {ours * 1e3:.3f} | {row.kernels.get(mode, '?')} |")
    return "\n".join(lines)


_PLOT_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.33, 0.5, 0.67, 0.8, 0.9, 1, 1.1, 1.25, 1.5, 2, 3,
               5, 10, 20, 50, 100)


def plot(data, path, title=None):
    """A PNG of the speedup by shape: horizontal bars from the 1.0x line (right:
    fastlstm faster, left: slower), one color per mode, log axis. Needs
    matplotlib (the `bench` extra)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    rows = speedup_rows(data)
    modes = modes_of(rows)
    if not rows:
        raise ValueError("no group holds both a torch and a fastlstm result: nothing to plot")
    height = 0.8 / len(modes)
    fig, ax = plt.subplots(figsize=(10, 1.6 + 0.22 * len(rows) * len(modes)))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    extreme = 1.25
    for j, mode in enumerate(modes):
        ys, xs = [], []
        for i, row in enumerate(rows):
            if mode in row.medians:
                ys.append(i - 0.4 + height * (j + 0.5))
                xs.append(row.speedup(mode))
        extreme = max([extreme] + [max(x, 1 / x) for x in xs])
        ax.barh(ys, [x - 1 for x in xs], left=1, height=height, color=colors[j % len(colors)],
                label=mode)
        for y, x in zip(ys, xs):
            ax.annotate(f"{x:.2f}x", (x, y), xytext=(3 if x >= 1 else -3, 0),
                        textcoords="offset points", va="center", ha="left" if x >= 1 else "right",
                        fontsize=7)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlim(1 / extreme ** 1.25, extreme ** 1.25)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r.label for r in rows], fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("speedup of fastlstm over torch: torch median / fastlstm median "
                  "(log scale; right of 1x: fastlstm faster)")
    low, high = ax.get_xlim()
    ax.set_xticks([t for t in _PLOT_TICKS if low <= t <= high])
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.legend(title="mode", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.set_title(title or "; ".join(_machines(data)) or "fastlstm vs torch", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def report_main(argv=None, prog="python bench/report.py"):
    """CLI: JSON [--markdown OUT.md] [--plot OUT.png]; prints the table."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Turn a pytest-benchmark JSON of bench/ into a markdown table "
                               "of fastlstm's speedups over torch, and optionally a PNG plot.")
    parser.add_argument("json", help="pytest-benchmark JSON (--benchmark-json=...)")
    parser.add_argument("--markdown", "--out", dest="markdown", metavar="OUT.md",
                        help="also write the table to this file")
    parser.add_argument("--plot", metavar="OUT.png", help="write a bar chart of the speedups")
    parser.add_argument("--title", help="a heading for the table and the plot")
    args = parser.parse_args(argv)
    with open(args.json) as f:
        data = json.load(f)
    return _emit(data, args.markdown, args.plot, args.title)


def _emit(data, markdown_path, plot_path, title=None):
    text = markdown(data, title)
    print(text)
    if markdown_path:
        with open(markdown_path, "w") as f:
            f.write(text + "\n")
    if plot_path:
        plot(data, plot_path, title)
        print(f"\nplot: {plot_path}")
    return text


# ----------------------------------------------------------------------------
# python -m fastlstm bench

def default_device():
    return "cuda" if torch.cuda.is_available() else "cpu"


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m fastlstm bench",
        description="Time fastlstm.LSTM / LSTMCell against torch.nn.LSTM / LSTMCell on a few "
                    "shapes, alternating the two round by round so that host noise hits both, "
                    "and print the speedups (torch median / fastlstm median) as a markdown "
                    "table. The full, pytest-benchmark suite is bench/ in the repository.")
    parser.add_argument("--device", default=default_device(),
                        help="cpu or cuda (default: %(default)s)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"),
                        help="(default: %(default)s)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="shapes", action="store_const", const="quick",
                      help="a few shapes, few rounds (the default)")
    size.add_argument("--full", dest="shapes", action="store_const", const="full",
                      help="the whole grid of bench/ (long on a CPU)")
    size.add_argument("--shapes", choices=sorted(GRIDS), help="a named grid: "
                      + ", ".join(f"{k} ({len(v)} shapes)" for k, v in GRIDS.items()))
    parser.add_argument("--mode", action="append", choices=MODES, dest="modes",
                        help="fwd and/or fwd+bwd (repeatable; default: both)")
    parser.add_argument("--rounds", type=positive_int, default=None,
                        help="timed rounds per impl (default: 5 quick, 15 full, 3 tiny)")
    parser.add_argument("--warmup", type=non_negative_int, default=None,
                        help="warm-up rounds per impl (default: 2; 1 for tiny)")
    parser.add_argument("--no-parity", action="store_true",
                        help="skip the check that both give the same answer first")
    parser.add_argument("--json", metavar="OUT.json",
                        help="write the results as a pytest-benchmark-like JSON")
    parser.add_argument("--markdown", metavar="OUT.md", help="also write the table here")
    parser.add_argument("--plot", metavar="OUT.png", help="write a bar chart (matplotlib)")
    parser.add_argument("--allow-tf32", action="store_true",
                        help="let cuDNN run float32 in TF32 (torch's default); without it both "
                             "sides compute in true float32")
    parser.set_defaults(shapes="quick")
    return parser


def main(argv=None):
    """Entry point of `python -m fastlstm bench`; returns the results dict
    (pytest-benchmark-like; its table is markdown(result))."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        device = torch.device(args.device)
    except RuntimeError as e:
        parser.error(f"--device: {e}")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: {cuda_skip_reason()}")
    rounds = args.rounds or {"quick": 5, "full": 15, "tiny": 3}[args.shapes]
    warmup = args.warmup if args.warmup is not None else (1 if args.shapes == "tiny" else 2)
    shapes = GRIDS[args.shapes]
    modes = tuple(args.modes or MODES)
    print(f"fastlstm bench: {len(shapes)} shapes x {len(modes)} modes on {device_name(device)} "
          f"({device.type}, {args.dtype}), {rounds} interleaved rounds after {warmup} warm-up",
          file=sys.stderr)
    started = time.perf_counter()
    data = run_interleaved(shapes, modes, device, args.dtype, rounds=rounds, warmup=warmup,
                           parity=not args.no_parity, allow_tf32=args.allow_tf32,
                           progress=lambda g: print(f"  {g}", file=sys.stderr, flush=True))
    print(f"done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
    _emit(data, args.markdown, args.plot,
          title=f"fastlstm bench ({args.shapes}, {device.type}, {args.dtype})")
    return data
