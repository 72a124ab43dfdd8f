"""Which implementation runs the fastlstm ops, and a switch to pick another.

CUDA tensors run the CUDA kernels. CPU tensors run the fused C++ backend,
or, inside ``with fastlstm.backend("emulated"):``, the CUDA kernels
themselves, compiled for the CPU SIMT emulator (csrc/sim/) and launched by
the same glue as on a GPU. ``FASTLSTM_BACKEND=emulated`` sets the default.
``kernel`` forces a kernel variant ("auto" lets the glue choose); ``order``
and ``seed`` set the emulator's thread scheduling order."""
import contextlib
import os

import torch

BACKENDS = ("native", "emulated")
KERNELS = ("auto", "step", "step_narrow", "step_wide", "tensor_core", "persistent",
           "persistent_tensor_core")
ORDERS = ("forward", "reverse", "random")


def _apply(name, kernel, order, seed):
    if name not in BACKENDS:
        raise ValueError(f"fastlstm.backend: expected a backend in {BACKENDS}, got {name!r}")
    if kernel not in KERNELS:
        raise ValueError(f"fastlstm.backend: expected kernel in {KERNELS}, got {kernel!r}")
    if order not in ORDERS:
        raise ValueError(f"fastlstm.backend: expected order in {ORDERS}, got {order!r}")
    from . import _ops  # noqa: F401  (loads the extension)
    torch.ops.fastlstm._set_backend(name, kernel, order, int(seed))


def backend_state():
    """(backend, kernel, order, seed) now in force."""
    from . import _ops  # noqa: F401
    name, kernel, order, seed = torch.ops.fastlstm._get_backend()
    return name, kernel, order, int(seed)


@contextlib.contextmanager
def backend(name="native", *, kernel="auto", order="forward", seed=0):
    """Run the ops inside the block on the named backend (see module doc)."""
    before = backend_state()
    _apply(name, kernel, order, seed)
    try:
        yield
    finally:
        _apply(*before)


def kernel_name(device):
    """Short name of the kernels that ran the last layer for tensors on
    ``device``: cpu- and the CPU engine's instruction set (avx512, avx2, generic), or
    cuda-/emulated- and step_narrow, step_wide or persistent."""
    device = torch.device(device)
    name, kernel, _, _ = backend_state()
    if device.type != "cuda" and name != "emulated":
        return f"cpu-{torch.ops.fastlstm._cpu_engine()}"
    prefix = "cuda" if device.type == "cuda" else "emulated"
    return f"{prefix}-{torch.ops.fastlstm._last_kernel() or kernel}"


def default_from_env():
    """FASTLSTM_BACKEND (and FASTLSTM_SIM_ORDER, FASTLSTM_SIM_SEED) at import."""
    name = os.environ.get("FASTLSTM_BACKEND", "native")
    if name != "native":
        _apply(name, "auto", os.environ.get("FASTLSTM_SIM_ORDER", "forward"),
               int(os.environ.get("FASTLSTM_SIM_SEED", "0")))
