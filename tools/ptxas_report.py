"""Compiles every CUDA kernel file (csrc/cuda/*.cu, torch-free) with nvcc for
the given archs and tabulates ptxas's resource report per kernel: registers,
spill stores/loads, stack, static shared memory.

    python tools/ptxas_report.py [--arch 80 --arch 90] [--out DIR] [--no-spills PATTERN]

Writes DIR/ptxas-report.md and the raw DIR/ptxas-raw.txt and prints the
table. Exits non-zero when nvcc fails, or when a kernel whose name matches a
--no-spills pattern spills."""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile

from fastlstm import _ptxas as ptxas

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What torch's CUDAExtension adds to every nvcc command: the kernels must
# build without CUDA's implicit half/bfloat16 conversions and operators.
TORCH_NVCC_FLAGS = ["-D__CUDA_NO_HALF_OPERATORS__", "-D__CUDA_NO_HALF_CONVERSIONS__",
                    "-D__CUDA_NO_BFLOAT16_CONVERSIONS__", "-D__CUDA_NO_HALF2_OPERATORS__"]

def demangle(names):
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True)
    return out.stdout.splitlines() if out.returncode == 0 else names


def compile_report(source, arch, nvcc):
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [nvcc, "-std=c++17", "-O3", f"-arch=sm_{arch}", "-Xptxas", "-v", *TORCH_NVCC_FLAGS,
               "-c", source, "-o", os.path.join(tmp, "kernel.o")]
        run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"nvcc failed on {source} (sm_{arch}):\n{run.stderr}")
    return run.stderr


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", action="append", default=None)
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "cuda-report"))
    parser.add_argument("--nvcc", default=os.environ.get("NVCC", "nvcc"))
    parser.add_argument("--no-spills", action="append", default=[],
                        help="regex of kernel names that must not spill")
    args = parser.parse_args(argv)
    archs = args.arch or ["80", "90"]
    sources = sorted(glob.glob(os.path.join(ROOT, "csrc", "cuda", "*.cu")))
    if not sources:
        sys.exit("no csrc/cuda/*.cu files")
    raw, kernels = [], []
    for source in sources:
        for arch in archs:
            text = compile_report(source, arch, args.nvcc)
            raw.append(f"== {os.path.relpath(source, ROOT)} sm_{arch}\n{text}")
            found = ptxas.parse(text)
            for k, name in zip(found, demangle([k["mangled"] for k in found])):
                k["name"] = name
                k["source"] = os.path.basename(source)
            kernels += found
    table = ptxas.table(kernels)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "ptxas-report.md"), "w") as f:
        f.write(f"# ptxas report ({', '.join('sm_' + a for a in archs)})\n\n{table}\n")
    with open(os.path.join(args.out, "ptxas-raw.txt"), "w") as f:
        f.write("\n".join(raw))
    print(table)
    bad = [k for k in kernels if (k["spill_stores"] or k["spill_loads"])
           and any(re.search(p, k["name"]) for p in args.no_spills)]
    for k in bad:
        print(f"spills in {k['name']} ({k['arch']})", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
