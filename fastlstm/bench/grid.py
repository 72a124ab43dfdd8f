"""The benchmark grid: its shapes (an LSTM over T steps, the same over a
PackedSequence of unsorted lengths, T steps of an LSTMCell from Python), the
named subsets, and the (device, dtype) pairs the grid runs at."""
from dataclasses import dataclass, replace

import torch

__all__ = ["Shape", "MODES", "DEVICE_DTYPES", "LSTM_SHAPES", "PACKED_SHAPES", "CELL_SHAPES",
           "CELL_LOOP_SHAPES", "CELL_SWEEP", "ALL_SHAPES", "FULL_SHAPES", "GRIDS"]

MODES = ("fwd", "fwd+bwd")
# (device, dtype) pairs of the grid: float32 and float64 on the CPU; float32,
# float16 and bfloat16 on CUDA.
DEVICE_DTYPES = (("cpu", "float32"), ("cpu", "float64"), ("cuda", "float32"),
                 ("cuda", "float16"), ("cuda", "bfloat16"))


@dataclass(frozen=True)
class Shape:
    """One benchmark shape: an LSTM over T steps (of full batches, or packed
    sequences of unsorted lengths), or T steps of an LSTMCell."""
    name: str
    steps: int          # T: sequence length (the longest, packed), or the number of cell steps
    batch: int          # B
    input_size: int     # I
    hidden_size: int    # H
    layers: int = 1
    bidirectional: bool = False
    cell: bool = False    # LSTMCell, stepped T times from Python
    packed: bool = False  # a PackedSequence of lengths() (enforce_sorted=False)

    @property
    def kind(self):
        return "LSTMCell" if self.cell else "LSTM packed" if self.packed else "LSTM"

    def with_steps(self, steps):
        """The same shape, at most `steps` long (the benchmark smoke run)."""
        return replace(self, steps=min(self.steps, steps))

    def lengths(self):
        """A packed shape's sequence lengths, in batch order: drawn from
        [T/4, T] by a fixed seed, unsorted, the longest T."""
        if not self.packed:
            return [self.steps] * self.batch
        gen = torch.Generator().manual_seed(self.batch * 1000 + self.steps)
        lengths = torch.randint(max(1, self.steps // 4), self.steps + 1, (self.batch,),
                                generator=gen)
        lengths[torch.randint(self.batch, (1,), generator=gen)] = self.steps
        return lengths.tolist()

    def batch_sizes(self):
        """Rows of each step, as a PackedSequence's batch_sizes."""
        lengths = self.lengths()
        return [sum(1 for n in lengths if n > t) for t in range(self.steps)]

    def info(self):
        info = {"shape": self.name, "kind": self.kind, "T": self.steps, "B": self.batch,
                "I": self.input_size, "H": self.hidden_size, "layers": self.layers,
                "bidirectional": self.bidirectional}
        if self.packed:
            info["lengths"] = self.lengths()
        return info


def _lstm(name, steps, batch, hidden, layers=1, bidirectional=False):
    return Shape(name, steps, batch, hidden, hidden, layers, bidirectional)


def _packed(steps, batch, hidden):
    return Shape(f"packed T{steps} B{batch} H{hidden}", steps, batch, hidden, hidden, packed=True)


def _cell(steps, batch, hidden):
    return Shape(f"cell T{steps} B{batch} H{hidden}", steps, batch, hidden, hidden, cell=True)


LSTM_SHAPES = (
    [_lstm("fastrnns T100 B64 H512", 100, 64, 512)]
    + [_lstm(f"small T256 B{b} H{h}", 256, b, h) for b in (1, 4, 16) for h in (128, 256, 512, 1024)]
    + [_lstm("long T2048 B8 H256", 2048, 8, 256),
       _lstm("stacked T100 B32 H256 2-layer bidir", 100, 32, 256, layers=2, bidirectional=True)]
)
# The LSTM and 100-step LSTMCell shapes: the grid of the earlier results
# files, and the one bench/gpu_model.py predicts.
CELL_SHAPES = [_cell(100, b, h) for b in (1, 16, 64) for h in (256, 512)]
ALL_SHAPES = LSTM_SHAPES + CELL_SHAPES
# Unsorted lengths from T/4 to T: nn.LSTM's packed path against fastlstm's.
PACKED_SHAPES = [_packed(100, 64, 256), _packed(256, 16, 256), _packed(256, 4, 512)]
# LSTMCell loops of 50 steps: the per-call cost (B1 H8), pytorch/examples'
# time_sequence_prediction (B97 H51), and the widest batch.
CELL_LOOP_SHAPES = [_cell(50, 1, 8), _cell(50, 97, 51), _cell(50, 128, 8), _cell(50, 128, 512)]
# Every LSTMCell size from B1 to B128 and H8 to H512 (`--shapes cells`).
CELL_SWEEP = [_cell(50, b, h) for b in (1, 4, 16, 64, 128) for h in (8, 32, 128, 256, 512)]
FULL_SHAPES = LSTM_SHAPES + PACKED_SHAPES + CELL_SHAPES + CELL_LOOP_SHAPES
_BY_NAME = {s.name: s for s in FULL_SHAPES}

# Named subsets: "quick" (the CLI default, and `pytest bench --bench-quick`),
# "full" (the whole grid), "cells" (the LSTMCell sweep) and "tiny" (seconds
# in all; for tests).
GRIDS = {
    "full": FULL_SHAPES,
    "quick": [_BY_NAME[n] for n in (
        "fastrnns T100 B64 H512", "small T256 B1 H256", "small T256 B16 H512",
        "stacked T100 B32 H256 2-layer bidir", "packed T256 B16 H256", "cell T100 B16 H256",
        "cell T50 B1 H8")],
    "cells": CELL_SWEEP,
    "tiny": [_lstm("tiny T8 B2 H16", 8, 2, 16),
             _lstm("tiny T8 B2 H16 2-layer bidir", 8, 2, 16, layers=2, bidirectional=True),
             Shape("tiny packed T8 B3 H16", 8, 3, 16, 16, packed=True),
             _cell(8, 2, 16)],
}
