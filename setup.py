"""Builds fastlstm._C: the CPU backend, the glue of the CUDA kernels and their
NVRTC executor always; the nvcc-built CUDA kernels when nvcc and a CUDA build
of torch are both present (FASTLSTM_FORCE_CPU=1 skips them). The kernel
sources ship as package data (fastlstm._csrc), which NVRTC compiles at run
time. The SIMT emulator, test infrastructure, is built apart
(fastlstm/_emulated.py)."""
import glob
import os

import torch
from setuptools import setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

ROOT = os.path.dirname(os.path.abspath(__file__))
PRODUCT_FOLDERS = ("csrc", "csrc/cpu", "csrc/cpu/engine", "csrc/kernel_glue", "csrc/gpu",
                   "csrc/nvrtc")


def sources(pattern):
    return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, pattern)))


def build_cuda():
    if os.environ.get("FASTLSTM_FORCE_CPU", "0") == "1":
        return False
    has_nvcc = CUDA_HOME is not None and os.path.exists(os.path.join(CUDA_HOME, "bin", "nvcc"))
    return torch.version.cuda is not None and has_nvcc


def extension():
    cxx = ["-O3", "-std=c++17", "-fopenmp", "-pthread"]
    cpu_sources = [src for folder in PRODUCT_FOLDERS for src in sources(f"{folder}/*.cpp")]
    link = ["-fopenmp", "-pthread", "-ldl"]
    if not build_cuda():
        return CppExtension("fastlstm._C", cpu_sources, extra_compile_args={"cxx": cxx},
                            extra_link_args=link)
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;8.6;9.0")
    return CUDAExtension(
        "fastlstm._C", cpu_sources + sources("csrc/cuda/*.cpp") + sources("csrc/cuda/*.cu"),
        extra_compile_args={"cxx": cxx + ["-DFASTLSTM_WITH_CUDA"], "nvcc": ["-O3", "-std=c++17"]},
        extra_link_args=link,
    )


setup(
    packages=["fastlstm", "fastlstm.bench", "fastlstm._csrc"],
    package_dir={"fastlstm._csrc": "csrc"},
    package_data={"fastlstm._csrc": ["gate_math.h", "kernels/*.cuh", "kernels/*.h"]},
    ext_modules=[extension()],
    cmdclass={"build_ext": BuildExtension},
)
