"""Where the NVRTC executor finds what it needs, told to the extension at
import: libnvrtc and the CUDA headers (from the wheels that
`pip install "fastlstm[nvrtc]"` brings, else from the CUDA toolkit), the
kernel sources (package data, fastlstm/_csrc) and the cubin cache
(FASTLSTM_CACHE_DIR, else ~/.cache/fastlstm). Nothing is loaded here: NVRTC
runs at the first CUDA call of a process that has no nvcc-built kernels."""
import glob
import importlib.util
import os

import torch

EXTRA = 'pip install "fastlstm[nvrtc]"'
# Headers the kernels include, and the wheel that brings each.
HEADERS = {"cuda_fp16.h": "nvidia-cuda-runtime", "cuda/std/cstdint": "nvidia-cuda-cccl",
           "crt/mma.h": "nvidia-cuda-crt"}


def _cuda_major():
    version = torch.version.cuda
    return int(version.split(".")[0]) if version else 13


def _wheel_roots(major):
    """Folders of the nvidia-* wheels for this CUDA major version: CUDA 13's
    share nvidia/cu13; CUDA 12's have one folder each (nvidia/cuda_nvrtc, ...)."""
    spec = importlib.util.find_spec("nvidia")
    if spec is None or spec.submodule_search_locations is None:
        return []
    roots = []
    for base in spec.submodule_search_locations:
        roots.append(os.path.join(base, f"cu{major}"))
        if major == 12:
            roots += [os.path.join(base, name)
                      for name in ("cuda_nvrtc", "cuda_runtime", "cuda_cccl", "cuda_nvcc")]
    return roots


def _toolkit_root():
    from torch.utils.cpp_extension import CUDA_HOME
    return CUDA_HOME


def _find_libraries(major):
    """[builtins, libnvrtc] of the first folder that has libnvrtc, or []: libnvrtc
    opens its builtins by name, which a wheel's folder would not resolve."""
    folders = [os.path.join(root, "lib") for root in _wheel_roots(major)]
    if _toolkit_root():
        folders += [os.path.join(_toolkit_root(), sub) for sub in ("lib64", "lib")]
    for folder in folders:
        library = os.path.join(folder, f"libnvrtc.so.{major}")
        if os.path.exists(library):
            builtins = sorted(glob.glob(os.path.join(folder, f"libnvrtc-builtins.so.{major}.*")))
            return builtins[:1] + [library]
    return []


def _include_dirs(major):
    candidates = []
    for root in _wheel_roots(major):
        candidates += [os.path.join(root, "include"), os.path.join(root, "include", "cccl")]
    if _toolkit_root():
        base = os.path.join(_toolkit_root(), "include")
        candidates += [base, os.path.join(base, "cccl")]
    return [d for d in candidates if os.path.isdir(d)]


def _source_dir():
    """The package data of an install (fastlstm/_csrc), else a checkout's csrc/."""
    package = os.path.dirname(os.path.abspath(__file__))
    for folder in (os.path.join(package, "_csrc"), os.path.join(os.path.dirname(package), "csrc")):
        if os.path.exists(os.path.join(folder, "gate_math.h")):
            return folder
    return ""


def cache_dir():
    if os.environ.get("FASTLSTM_CACHE_DIR"):
        return os.environ["FASTLSTM_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "fastlstm", "nvrtc")


def locate():
    """(libraries, include_dirs, source_dir, missing): missing says what to
    install where NVRTC cannot run, else is empty."""
    major = _cuda_major()
    libraries, includes, sources = _find_libraries(major), _include_dirs(major), _source_dir()
    missing = []
    if not libraries:
        missing.append(f"libnvrtc.so.{major} (nvidia-cuda-nvrtc)")
    for header, wheel in HEADERS.items():
        if not any(os.path.exists(os.path.join(d, header)) for d in includes):
            missing.append(f"{header} ({wheel})")
    if not sources:
        missing.append("the kernel sources (fastlstm._csrc: reinstall fastlstm)")
    why = f"missing {', '.join(missing)}: {EXTRA}" if missing else ""
    return libraries, includes, sources, why


def configure():
    libraries, includes, sources, missing = locate()
    torch.ops.fastlstm._nvrtc_configure(libraries, includes, sources, cache_dir(), missing)
