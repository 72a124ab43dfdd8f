"""`python -m fastlstm nvrtc-check --arch 80,90`: compiles every CUDA kernel
instance through NVRTC, as the NVRTC executor would at run time, for each
arch and storage type; no GPU needed. With --cache it fills the disk cache
instead (what a first use would do; say which arch a deployment's GPUs
have), and reports for each compile whether the cache held it. Prints each instance's registers,
stack frame, spills and static shared memory from ptxas's report, and exits
non-zero when a compile fails, an instance is missing from the report, or
a kernel matching a --no-spills PATTERN spills, one matching a --no-stack
PATTERN keeps a stack frame (local memory), or one matching a --mma PATTERN
has no Tensor Core instruction (mma) in its PTX for compute_<arch>."""
import argparse
import re
import sys
import time

import torch

from . import _nvrtc
from . import _ptxas as ptxas

DTYPES = ("float32", "float64", "float16", "bfloat16")


def _archs(text):
    try:
        return [int(a) for a in text.split(",") if a.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected archs such as 80,90, got {text}") from None


def _matches(kernel, patterns):
    return any(re.search(p, kernel["name"]) for p in patterns)


def compile_report(dtype, arch):
    """The instances of one compile, each a ptxas dict with its "name"."""
    _cubin, log, names, lowered, _options = torch.ops.fastlstm._nvrtc_compile(dtype, arch)
    found = {k["mangled"]: k for k in ptxas.parse(log)}
    missing = [name for name, low in zip(names, lowered) if low not in found]
    if missing:
        raise RuntimeError(f"ptxas reported nothing for {', '.join(missing)} (sm_{arch})")
    kernels = []
    for name, low in zip(names, lowered):
        kernels.append({**found[low], "name": name.replace("fastlstm::", ""), "dtype": dtype})
    return kernels


def fill_cache(archs, dtypes):
    print(f"cache: {_nvrtc.cache_dir()}")
    for arch in archs:
        for dtype in dtypes:
            start = time.perf_counter()
            hit = torch.ops.fastlstm._nvrtc_cache(dtype, arch)
            print(f"sm_{arch} {dtype}: {'cache hit' if hit else 'compiled and cached'} in "
                  f"{time.perf_counter() - start:.3f} s")
    return 0


def ptx_bodies(dtype, arch):
    """{instance name: its entry's PTX} of the compile for compute_<arch>."""
    ptx, names, lowered = torch.ops.fastlstm._nvrtc_ptx(dtype, arch)
    starts = {m.group(1): m.start() for m in re.finditer(r"\.entry\s+(\S+?)\(", ptx)}
    ends = sorted(starts.values()) + [len(ptx)]
    body = {low: ptx[start:next(e for e in ends if e > start)] for low, start in starts.items()}
    return {name.replace("fastlstm::", ""): body.get(low, "") for name, low in zip(names, lowered)}


def mma_failures(archs, dtypes, patterns):
    failures = []
    for arch in archs:
        for dtype in dtypes:
            for name, body in ptx_bodies(dtype, arch).items():
                if any(re.search(p, name) for p in patterns):
                    count = len(re.findall(r"\bw?mma\.sync", body))
                    print(f"compute_{arch} {name}: {count} mma instructions")
                    if count == 0:
                        failures.append(f"{name} (compute_{arch}) has no mma instruction")
    return failures


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastlstm nvrtc-check",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=_archs, default=[80, 90], help="e.g. 80,90")
    parser.add_argument("--dtype", action="append", choices=DTYPES, default=None)
    parser.add_argument("--cache", action="store_true",
                        help="fill the disk cache (FASTLSTM_CACHE_DIR) instead of reporting")
    parser.add_argument("--no-spills", action="append", default=[], metavar="PATTERN",
                        help="regex of kernel names that must not spill")
    parser.add_argument("--no-stack", action="append", default=[], metavar="PATTERN",
                        help="regex of kernel names that must keep no stack frame")
    parser.add_argument("--mma", action="append", default=[], metavar="PATTERN",
                        help="regex of kernel names whose PTX must hold Tensor Core mma "
                             "instructions")
    args = parser.parse_args(argv)
    libraries, includes, sources, missing = _nvrtc.locate()
    if missing:
        print(f"nvrtc-check: NVRTC cannot run here: {missing}", file=sys.stderr)
        return 2
    print(f"NVRTC: {libraries[-1]}\nkernel sources: {sources}\nheaders: {', '.join(includes)}")
    if args.cache:
        return fill_cache(args.arch, args.dtype or DTYPES)
    kernels, failures = [], []
    for arch in args.arch:
        for dtype in args.dtype or DTYPES:
            start = time.perf_counter()
            try:
                found = compile_report(dtype, arch)
            except RuntimeError as error:
                failures.append(f"{dtype} sm_{arch}: {error}")
                continue
            kernels += found
            print(f"sm_{arch} {dtype}: {len(found)} instances in "
                  f"{time.perf_counter() - start:.1f} s")
    print(ptxas.table(kernels))
    for k in kernels:
        if _matches(k, args.no_spills) and (k["spill_stores"] or k["spill_loads"]):
            failures.append(f"{k['name']} ({k['arch']}) spills "
                            f"{k['spill_stores']}/{k['spill_loads']} B")
        if _matches(k, args.no_stack) and k["stack"]:
            failures.append(f"{k['name']} ({k['arch']}) keeps a {k['stack']} B stack frame")
    if args.mma:
        failures += mma_failures(args.arch, args.dtype or DTYPES, args.mma)
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0
