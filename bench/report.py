"""Turns a pytest-benchmark JSON of bench/ into a markdown table of
fastlstm / torch.nn.LSTM speedups (ratio of medians within each group).

    python bench/report.py bench/results/cpu.json [--out table.md]"""
import argparse
import json
import math
from collections import defaultdict


def speedups(data):
    groups = defaultdict(dict)
    for bench in data["benchmarks"]:
        groups[bench["group"]][bench["extra_info"]["impl"]] = bench["stats"]["median"]
    return {g: (t["torch"], t["fastlstm"]) for g, t in groups.items()
            if "torch" in t and "fastlstm" in t}


def markdown(data):
    rows = speedups(data)
    info = data["benchmarks"][0]["extra_info"] if data["benchmarks"] else {}
    lines = [f"Machine: {info.get('cpu', '?')}, {info.get('cores', '?')} cores, "
             f"torch {info.get('torch', '?')}, {info.get('threads', '?')} threads",
             "", "| shape / mode | torch.nn.LSTM median (ms) | fastlstm median (ms) | speedup |",
             "|---|---:|---:|---:|"]
    for group, (ref, ours) in sorted(rows.items()):
        lines.append(f"| {group} | {ref * 1e3:.2f} | {ours * 1e3:.2f} | {ref / ours:.2f}x |")
    if rows:
        geo = math.exp(sum(math.log(r / o) for r, o in rows.values()) / len(rows))
        lines += ["", f"Geometric mean speedup: {geo:.2f}x over {len(rows)} groups"]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("json")
    parser.add_argument("--out")
    args = parser.parse_args()
    with open(args.json) as f:
        text = markdown(json.load(f))
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
