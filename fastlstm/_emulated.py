"""The SIMT emulator's library: the CUDA kernels compiled for the CPU
(csrc/sim, csrc/emulated) behind the same glue as on a GPU, with the layer
ops of fastlstm in the namespace fastlstm_emulated. Test infrastructure,
kept out of the product's build: it is compiled here from the source
checkout at first use (torch.utils.cpp_extension, cached under build/), or
loaded from FASTLSTM_EMULATOR_LIBRARY (the CMake build's). While
fastlstm.backend("emulated") is on, its ops stand in for fastlstm's CPU
kernels (a torch.library override, withdrawn on leaving)."""
import glob
import os
import warnings

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE_FOLDERS = ("csrc/emulated", "csrc/sim", "csrc/kernel_glue")
SHARED_SOURCES = ("csrc/lstm_args.cpp", "csrc/kernel_choice.cpp", "csrc/step_schedule.cpp")

_override = None


def _sources():
    found = [p for folder in SOURCE_FOLDERS for p in sorted(glob.glob(f"{ROOT}/{folder}/*.cpp"))]
    return found + [os.path.join(ROOT, p) for p in SHARED_SOURCES]


def _build_and_load():
    if not os.path.isdir(os.path.join(ROOT, "csrc", "emulated")):
        raise RuntimeError(
            "fastlstm.backend('emulated') runs the CUDA kernels under the SIMT emulator, test "
            f"infrastructure built from a source checkout; {ROOT} has no csrc/. Point "
            "FASTLSTM_EMULATOR_LIBRARY at a built library, or work from a checkout.")
    from torch.utils import cpp_extension
    build = os.path.join(ROOT, "build", "emulator")
    os.makedirs(build, exist_ok=True)
    cpp_extension.load(
        name="fastlstm_emulated", sources=_sources(), build_directory=build,
        extra_cflags=["-O2", "-std=c++17", "-pthread", "-fvisibility=hidden"],
        extra_ldflags=["-pthread"], is_python_module=False, verbose=False)


def load():
    """The emulator's ops, built or loaded once per process."""
    if not hasattr(torch.ops.fastlstm_emulated, "lstm_layer"):
        library = os.environ.get("FASTLSTM_EMULATOR_LIBRARY")
        if library:
            torch.ops.load_library(library)
        else:
            _build_and_load()
    return torch.ops.fastlstm_emulated


def stand_in(kernel, order, seed):
    """The emulator's ops run fastlstm's CPU calls from now on, with this
    kernel variant and scheduling order."""
    global _override
    ops = load()
    ops._configure(kernel, order, seed)
    if _override is None:
        lib = torch.library.Library("fastlstm", "IMPL")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Warning only once for all operators")
            lib.impl("lstm_layer", ops.lstm_layer.default, "CPU")
            lib.impl("lstm_layer_backward", ops.lstm_layer_backward.default, "CPU")
        _override = lib


def withdraw():
    """fastlstm's own CPU kernels again."""
    global _override
    if _override is not None:
        _override._destroy()
        _override = None
