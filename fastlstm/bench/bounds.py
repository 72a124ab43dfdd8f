"""The hardware bound of each benchmark case: the least time that this
machine's FMA peak and its read bandwidth allow for the case's arithmetic
and weight streams, both probed in the same run (csrc/cpu/probes.cpp).

The model (bench/README.md states it in full), per layer and direction of N
rows over T steps, B_t rows at step t, input I, hidden H, s bytes a value,
F the probed FMA rate of all threads (FLOP/s), R(S) the probed rate at which
the threads read S bytes split between them, every other pass backwards
(as the recurrences walk W_hh), and S_hh = 4H H s:

    forward   2N 4H I / F                                  input projection
              + sum_t max(2 B_t 4H H / F, S_hh / R(S_hh))   each step needs all of W_hh
    backward  sum_t max(2 B_t 4H H / F, S_hh / R(S_hh))     dh_{t-1} = dgates_t W_hh
              + (2 * 2N 4H I + 2N 4H H) / F                 grad_input, grad_w_ih, grad_w_hh

and per step of an LSTMCell loop, with S = 4H (I + H) s (both weights):

    forward   max(2B 4H (I + H) / F, S / R(S))
    backward  max(4B 4H (I + H) / F, 2S / R(S))             read W, write the step's dW

The gate math and the elementwise passes are left out (a few percent of the
FLOPs), so the bound is below what any implementation can reach."""
from dataclasses import dataclass

import torch

from .cases import dtype_name

__all__ = ["Probes", "Bound", "case_bound"]

# FMA iterations per member per try (about 10 ms of one core's FMAs), and
# bytes each read probe covers (at least 4 passes over the buffer).
FMA_ITERATIONS = 2_000_000
READ_PROBE_BYTES = 64 << 20


def _compute_dtype(dtype):
    """The CPU backend computes half and bfloat16 in float32."""
    name = dtype_name(dtype)
    return name if name == "float64" else "float32"


class Probes:
    """The machine's ceilings, probed once per run and kept: the FMA rate of
    all threads at once (FLOP/s) per dtype, and the read rate (bytes/s) of a
    buffer split over the threads, per size and dtype. Each is the best of
    `repeats` tries: noise only ever slows a probe down."""

    def __init__(self, threads=None, repeats=5):
        self.threads = threads or torch.get_num_threads()
        self.repeats = repeats
        self._fma = {}
        self._read = {}

    def fma_flops(self, dtype):
        name = _compute_dtype(dtype)
        if name not in self._fma:
            probe = torch.ops.fastlstm._cpu_probe_fma
            self._fma[name] = max(probe(getattr(torch, name), self.threads, FMA_ITERATIONS)
                                  for _ in range(self.repeats))
        return self._fma[name]

    def read_rate(self, nbytes, dtype):
        key = (_compute_dtype(dtype), int(nbytes))
        if key not in self._read:
            probe = torch.ops.fastlstm._cpu_probe_read
            passes = max(4, READ_PROBE_BYTES // key[1])
            self._read[key] = max(probe(getattr(torch, key[0]), key[1], self.threads, passes)
                                  for _ in range(self.repeats))
        return self._read[key]

    def as_dict(self):
        """What was probed, for the JSON and the report's header."""
        return {"threads": self.threads,
                "fma_flops": dict(self._fma),
                "reads": [{"dtype": d, "bytes": n, "bytes_per_s": rate}
                          for (d, n), rate in sorted(self._read.items())]}


@dataclass
class Bound:
    """A case's least time: compute_s of it under the FMA peak, stream_s
    under the weights' read rate."""
    compute_s: float = 0.0
    stream_s: float = 0.0

    @property
    def seconds(self):
        return self.compute_s + self.stream_s

    @property
    def kind(self):
        """Which ceiling holds most of the bound."""
        return "FMA" if self.compute_s >= self.stream_s else "bandwidth"

    def add(self, flops, stream_bytes, peak, rate):
        """One phase that needs `flops` and reads `stream_bytes` (0: none):
        bound by the slower of the two."""
        compute, stream = flops / peak, stream_bytes / rate if stream_bytes else 0.0
        if compute >= stream:
            self.compute_s += compute
        else:
            self.stream_s += stream


def case_bound(shape, mode, dtype, probes):
    """The Bound of one case (shape, "fwd" or "fwd+bwd", dtype) on this machine."""
    size = 8 if _compute_dtype(dtype) == "float64" else 4
    peak = probes.fma_flops(dtype)
    bound = Bound()
    H = shape.hidden_size
    if shape.cell:
        I, B = shape.input_size, shape.batch
        weights = 4 * H * (I + H) * size
        rate = probes.read_rate(weights, dtype)
        for _ in range(shape.steps):
            bound.add(2 * B * 4 * H * (I + H), weights, peak, rate)
            if mode != "fwd":
                bound.add(4 * B * 4 * H * (I + H), 2 * weights, peak, rate)
        return bound
    batch_sizes = shape.batch_sizes()
    rows = sum(batch_sizes)
    w_hh = 4 * H * H * size
    rate = probes.read_rate(w_hh, dtype)
    passes = 1 if mode == "fwd" else 2  # the recurrence forward, and backward
    for layer in range(shape.layers):
        I = shape.input_size if layer == 0 else H * (2 if shape.bidirectional else 1)
        for _ in range(2 if shape.bidirectional else 1):
            projection = 2 * rows * 4 * H * I
            bound.add(projection, 0, peak, rate)
            for _ in range(passes):
                for b in batch_sizes:
                    bound.add(2 * b * 4 * H * H, w_hh, peak, rate)
            if mode != "fwd":
                bound.add(2 * projection + 2 * rows * 4 * H * H, 0, peak, rate)
    return bound
