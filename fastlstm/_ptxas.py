"""ptxas's resource report (-v), parsed: one dict per kernel entry with its
registers, stack frame, spills and static shared memory. Shared by
tools/ptxas_report.py (nvcc) and `python -m fastlstm nvrtc-check` (NVRTC)."""
import re

ENTRY = re.compile(r"Compiling entry function '(\S+)' for '(sm_\d+)'")
SPILLS = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
USAGE = re.compile(r"Used (\d+) registers(?:.*?, (\d+) bytes smem)?")

COLUMNS = "| kernel | arch | registers | spill stores / loads (B) | stack (B) | static smem (B) |"


def parse(raw):
    """One dict per kernel entry in ptxas's -v output."""
    kernels, current = [], None
    for line in raw.splitlines():
        if m := ENTRY.search(line):
            current = {"mangled": m.group(1), "arch": m.group(2), "registers": None,
                       "stack": 0, "spill_stores": 0, "spill_loads": 0, "smem": 0}
            kernels.append(current)
        elif current and (m := SPILLS.search(line)):
            current.update(stack=int(m.group(1)), spill_stores=int(m.group(2)),
                           spill_loads=int(m.group(3)))
        elif current and (m := USAGE.search(line)):
            current["registers"] = int(m.group(1))
            current["smem"] = int(m.group(2) or 0)
    return kernels


def table(kernels):
    """Markdown rows of the kernels (each with a readable "name")."""
    lines = [COLUMNS, "|---|---|---:|---:|---:|---:|"]
    for k in kernels:
        lines.append(f"| `{k['name']}` | {k['arch']} | {k['registers']} | "
                     f"{k['spill_stores']} / {k['spill_loads']} | {k['stack']} | {k['smem']} |")
    return "\n".join(lines)
