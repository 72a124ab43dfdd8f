"""The report of a results dict (a pytest-benchmark JSON or the runner's):
the markdown table of speedups with each case's share of its hardware bound,
the plot, and `python bench/report.py RESULTS.json` (report_main)."""
import argparse
import json

from .stats import modes_of, speedup_rows, summary

__all__ = ["markdown", "plot", "report_main", "emit", "write_json"]


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


def _size(nbytes):
    return f"{nbytes / 2 ** 20:g} MiB" if nbytes >= 2 ** 20 else f"{nbytes / 2 ** 10:g} KiB"


def _percent(fraction):
    """A share of the bound: whole percent, tenths below 10%."""
    return f"{100 * fraction:.0f}%" if fraction >= 0.1 else f"{100 * fraction:.1f}%"


def _probe_lines(probes):
    """The ceilings behind the bound column, as probed in the run."""
    if not probes:
        return []
    threads = probes.get("threads", "?")
    peaks = ", ".join(f"{d} {flops / 1e9:.0f} GFLOP/s" for d, flops in
                      probes.get("fma_flops", {}).items())
    reads = ", ".join(f"{r['dtype']} {_size(r['bytes'])} {r['bytes_per_s'] / 1e9:.0f} GB/s"
                      for r in probes.get("reads", []))
    return [f"Probed in this run on {threads} threads: FMA peak {peaks}; reads of a buffer split "
            f"over the threads (the weights a recurrence streams every step): {reads}.",
            "Bound: the least time those allow for the case's FLOPs and weight streams "
            "(model in bench/README.md); % of bound = bound / median, 100% is at the "
            "machine's limit."]


def _probes_of(data):
    """The run's probes: the runner's, or the last a pytest-benchmark result
    carries in its extra_info (the session's, with every size probed)."""
    if data.get("probes"):
        return data["probes"]
    for bench in reversed(data.get("benchmarks", [])):
        if bench.get("extra_info", {}).get("probes"):
            return bench["extra_info"]["probes"]
    return None


def _speedup_table(rows, modes, with_bounds):
    head = "| shape | dtype | device | " + " | ".join(modes)
    rule = "|---|---|---|" + "---:|" * len(modes)
    if with_bounds:
        head += " | " + " | ".join(f"{m} % of bound" for m in modes)
        rule += "---:|" * len(modes)
    lines = [head + " |", rule]
    for row in rows:
        cells = [f"{row.speedup(m):.2f}x" if m in row.medians else "" for m in modes]
        if with_bounds:
            cells += [f"{_percent(row.of_bound(m))} ({row.bounds[m][1]})" if m in row.bounds
                      else "" for m in modes]
        lines.append(f"| {row.shape} | {row.dtype} | {row.device} | " + " | ".join(cells) + " |")
    return lines


def _median_table(rows, with_bounds):
    head = "| shape | dtype | device | mode | torch | fastlstm | fastlstm kernel |"
    rule = "|---|---|---|---|---:|---:|---|"
    if with_bounds:
        head += " bound | bound kind | torch % of bound | fastlstm % of bound |"
        rule += "---:|---|---:|---:|"
    lines = [head, rule]
    for row in rows:
        for mode, (ref, ours) in row.medians.items():
            line = (f"| {row.shape} | {row.dtype} | {row.device} | {mode} | {ref * 1e3:.3f} | "
                    f"{ours * 1e3:.3f} | {row.kernels.get(mode, '?')} |")
            if with_bounds and mode in row.bounds:
                bound, kind = row.bounds[mode]
                line += (f" {bound * 1e3:.3f} | {kind} | {_percent(row.of_bound(mode, 'torch'))} | "
                         f"{_percent(row.of_bound(mode))} |")
            elif with_bounds:
                line += " | | | |"
            lines.append(line)
    return lines


def markdown(data, title=None):
    """The markdown report of a results dict (already loaded)."""
    rows = speedup_rows(data)
    modes = modes_of(rows)
    with_bounds = any(row.bounds for row in rows)
    lines = [f"# {title}", ""] if title else []
    lines += [f"Machine: {m}" for m in _machines(data)] or ["Machine: unknown"]
    lines += ["", "Speedup of fastlstm over torch.nn.LSTM / nn.LSTMCell (torch median / "
                  "fastlstm median; above 1.00x fastlstm is faster), same weights, inputs, "
                  "dtype and device.", ""]
    if with_bounds:
        lines += _probe_lines(_probes_of(data)) + [""]
    if not rows:
        return "\n".join(lines + ["No group holds both a torch and a fastlstm result."])
    lines += _speedup_table(rows, modes, with_bounds)
    s = summary(rows)
    lines += ["", "| geometric mean | speedup | groups |", "|---|---:|---:|"]
    lines += [f"| {mode} | {geo:.2f}x | {n} |" for mode, (geo, n) in s["per_mode"].items()]
    lines.append(f"| **overall** | **{s['overall'][0]:.2f}x** | {s['overall'][1]} |")
    label, mode, worst = s["worst"]
    lines += ["", f"Worst: {label} {mode}: {worst:.2f}x", "", "Medians (ms):", ""]
    lines += _median_table(rows, with_bounds)
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


def write_json(data, path):
    with open(path, "w") as f:
        json.dump(data, f, indent=1)


def emit(data, markdown_path, plot_path, title=None):
    """Prints the markdown report, and writes it and the plot where asked."""
    text = markdown(data, title)
    print(text)
    if markdown_path:
        with open(markdown_path, "w") as f:
            f.write(text + "\n")
    if plot_path:
        plot(data, plot_path, title)
        print(f"\nplot: {plot_path}")
    return text


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
    return emit(data, args.markdown, args.plot, args.title)
