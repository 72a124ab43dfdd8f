"""Which implementation runs the fastlstm ops, and a switch to pick another.

CUDA tensors run the CUDA kernels (nvcc-built, or compiled at run time by
NVRTC). CPU tensors run the fused C++ backend, or, inside
``with fastlstm.backend("emulated"):``, the CUDA kernels themselves, compiled
for the CPU SIMT emulator (test infrastructure: fastlstm/_emulated.py),
whose ops stand in for the CPU ones while the block runs.
``FASTLSTM_BACKEND=emulated`` sets the default. ``kernel`` forces a CUDA
kernel variant ("auto" lets the glue choose; the names are KERNELS, from the
extension); ``order`` and ``seed`` set the emulator's thread scheduling."""
import contextlib
import os

import torch

from . import _ops  # noqa: F401  (loads the extension)

BACKENDS = ("native", "emulated")
KERNELS = tuple(torch.ops.fastlstm._kernel_names())
ORDERS = ("forward", "reverse", "random")

_state = ("native", "auto", "forward", 0)


def _apply(name, kernel, order, seed):
    global _state
    if name not in BACKENDS:
        raise ValueError(f"fastlstm.backend: expected a backend in {BACKENDS}, got {name!r}")
    if kernel not in KERNELS:
        raise ValueError(f"fastlstm.backend: expected kernel in {KERNELS}, got {kernel!r}")
    if order not in ORDERS:
        raise ValueError(f"fastlstm.backend: expected order in {ORDERS}, got {order!r}")
    if name == "emulated":
        from . import _emulated
        _emulated.stand_in(kernel, order, int(seed))
    elif _state[0] == "emulated":
        from . import _emulated
        _emulated.withdraw()
    torch.ops.fastlstm._set_kernel(kernel)
    _state = (name, kernel, order, int(seed))


@contextlib.contextmanager
def forced_kernel(kernel):
    """Force one CUDA kernel variant inside the block (the autotuner's)."""
    before = torch.ops.fastlstm._get_kernel()
    torch.ops.fastlstm._set_kernel(kernel)
    if _state[0] == "emulated":
        from . import _emulated
        _emulated.stand_in(kernel, _state[2], _state[3])
    try:
        yield
    finally:
        torch.ops.fastlstm._set_kernel(before)
        if _state[0] == "emulated":
            from . import _emulated
            _emulated.stand_in(before, _state[2], _state[3])


def backend_state():
    """(backend, kernel, order, seed) now in force."""
    return _state


@contextlib.contextmanager
def backend(name="native", *, kernel="auto", order="forward", seed=0):
    """Run the ops inside the block on the named backend (see module doc)."""
    before = backend_state()
    _apply(name, kernel, order, seed)
    try:
        yield
    finally:
        _apply(*before)


def last_kernel(device):
    """The CUDA kernel variant that ran the last layer forward for tensors on
    ``device`` (a GPU, or the CPU under the emulator); empty before any."""
    if torch.device(device).type == "cuda":
        return torch.ops.fastlstm._last_kernel()
    return torch.ops.fastlstm_emulated._last_kernel()


def kernel_name(device):
    """Short name of the kernels that ran the last layer for tensors on
    ``device``: cpu- and the CPU engine's instruction set (avx512, avx2, generic), or
    cuda-/emulated- and the CUDA kernel variant."""
    device = torch.device(device)
    name, kernel, _, _ = backend_state()
    if device.type == "cuda":
        return f"cuda-{last_kernel(device) or kernel}"
    if name == "emulated":
        return f"emulated-{last_kernel(device) or kernel}"
    return f"cpu-{torch.ops.fastlstm._cpu_engine()}"


def default_from_env():
    """FASTLSTM_BACKEND (and FASTLSTM_SIM_ORDER, FASTLSTM_SIM_SEED) at import."""
    name = os.environ.get("FASTLSTM_BACKEND", "native")
    if name != "native":
        _apply(name, "auto", os.environ.get("FASTLSTM_SIM_ORDER", "forward"),
               int(os.environ.get("FASTLSTM_SIM_SEED", "0")))
