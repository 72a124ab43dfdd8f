"""From results to speedups: one row per shape (at one dtype and device)
with each mode's medians, the geometric means and the worst group."""
import math
from collections import OrderedDict
from dataclasses import dataclass, field

from .grid import (ALL_SHAPES, CELL_LOOP_SHAPES, CELL_SWEEP, DEVICE_DTYPES, LSTM_SHAPES, MODES,
                   PACKED_SHAPES)
from .machine import BASELINE, IMPLS, OURS

__all__ = ["Row", "speedup_rows", "modes_of", "geomean", "summary"]


@dataclass
class Row:
    """One shape (at one dtype and device): torch and fastlstm medians per
    mode, and where the run probed them, each mode's hardware bound."""
    shape: str
    dtype: str
    device: str
    medians: "OrderedDict[str, tuple]"  # mode -> (torch median s, fastlstm median s)
    kernels: dict                        # mode -> fastlstm kernel name
    bounds: dict = field(default_factory=dict)  # mode -> (bound s, "FMA" or "bandwidth")

    @property
    def label(self):
        return f"{self.shape} {self.dtype} {self.device}"

    def speedup(self, mode):
        ref, ours = self.medians[mode]
        return ref / ours

    def of_bound(self, mode, impl=OURS):
        """The bound as a fraction of the impl's median (1.0: at the bound)."""
        ref, ours = self.medians[mode]
        return self.bounds[mode][0] / (ours if impl == OURS else ref)


def _case_key(bench):
    """(shape, mode, dtype, device) of one benchmark, from extra_info (older
    files without it fall back to the group name)."""
    info = bench.get("extra_info", {})
    shape = info.get("shape") or bench.get("group") or bench.get("name")
    return (str(shape), info.get("mode", "run"), info.get("dtype", "?"), info.get("device", "?"))


def _order(known, value):
    known = list(OrderedDict.fromkeys(known))
    return known.index(value) if value in known else len(known)


def speedup_rows(data):
    """Rows, in the order their shapes first appear, of the groups holding
    both a torch and a fastlstm result; modes in order of appearance too."""
    cases = OrderedDict()
    for bench in data.get("benchmarks", []):
        info = bench.get("extra_info", {})
        impl, median = info.get("impl"), (bench.get("stats") or {}).get("median")
        if impl not in IMPLS or not median:
            continue
        entry = cases.setdefault(_case_key(bench), {})
        entry[impl] = median
        if impl == OURS:
            entry["kernel"] = info.get("kernel", "?")
        if info.get("bound_s"):
            entry["bound"] = (info["bound_s"], info.get("bound_kind", "?"))
    rows = OrderedDict()
    for (shape, mode, dtype, device), entry in cases.items():
        if BASELINE not in entry or OURS not in entry:
            continue
        row = rows.setdefault((shape, dtype, device), Row(shape, dtype, device, OrderedDict(), {}))
        row.medians[mode] = (entry[BASELINE], entry[OURS])
        row.kernels[mode] = entry.get("kernel", "?")
        if "bound" in entry:
            row.bounds[mode] = entry["bound"]
    for row in rows.values():  # fwd before fwd+bwd, whatever order the file has
        row.medians = OrderedDict(sorted(row.medians.items(), key=lambda kv: _order(MODES, kv[0])))
    # Device, dtype, then the grid's order (a JSON may come sorted by name);
    # shapes not in the grid keep their order of appearance, after it.
    # (the sweep's cells in sweep order, the loops of the full grid after them)
    shapes = [s.name for s in LSTM_SHAPES + PACKED_SHAPES + ALL_SHAPES + CELL_SWEEP
              + CELL_LOOP_SHAPES]
    return sorted(rows.values(), key=lambda r: (
        _order([d for d, _ in DEVICE_DTYPES], r.device), _order([t for _, t in DEVICE_DTYPES],
                                                                  r.dtype),
        _order(shapes, r.shape)))


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
