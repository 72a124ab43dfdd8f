"""What ran, where: the machine, the kernels of each implementation, and the
extra_info recorded with every result."""
import os
import platform

import torch

from .cases import dtype_name

__all__ = ["kernel_name", "torch_kernel_name", "cpu_model", "device_name", "machine_info",
           "group_name", "case_info", "cuda_skip_reason"]

BASELINE, OURS = "torch", "fastlstm"
IMPLS = (BASELINE, OURS)


def kernel_name(device):
    """(name of the fastlstm kernels for `device`, whether fastlstm reported it).

    fastlstm._backend.kernel_name answers where the op it asks exists; with an
    older build it raises, and the name is assumed from the device."""
    try:
        from .. import _backend
        return str(_backend.kernel_name(device)), True
    except Exception:  # noqa: BLE001 (an import error, a missing op: anything)
        return ("cuda-step" if torch.device(device).type == "cuda" else "cpu"), False


def torch_kernel_name(device, shape, dtype="float32"):
    device = torch.device(device)
    if device.type == "cuda":
        return "aten-fused-cell" if shape.cell else "cudnn"
    if shape.cell:
        return "aten"
    # oneDNN's RNN primitives take float32 and lower precisions, not float64.
    onednn = torch.backends.mkldnn.is_available() and dtype_name(dtype) != "float64"
    return "onednn" if onednn else "aten"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_name(device):
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model()


def machine_info(device="cpu"):
    """The machine, for the report's header: CPU model, cores, threads, torch
    version, OMP_WAIT_POLICY, and the GPU where `device` is one."""
    info = {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default")}
    if torch.device(device).type == "cuda":
        info["gpu"] = device_name(device)
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
        info["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
    return info


def group_name(shape, mode, device, dtype):
    """The benchmark group: one shape, mode, dtype and device, both impls."""
    return f"{shape.name} {mode} {dtype_name(dtype)} {torch.device(device).type}"


def case_info(shape, mode, device, dtype, impl):
    """benchmark.extra_info of one benchmark (and of one CLI result)."""
    info = machine_info(device)
    info.update(shape.info())
    kernel, reported = (kernel_name(device) if impl == OURS
                        else (torch_kernel_name(device, shape, dtype), True))
    info.update(impl=impl, mode=mode, dtype=dtype_name(dtype), device=torch.device(device).type,
                device_name=device_name(device), kernel=kernel, kernel_reported=reported)
    return info


def cuda_skip_reason():
    """None where CUDA works, else why the CUDA cases are skipped."""
    if torch.cuda.is_available():
        return None
    if torch.version.cuda is None:
        return f"no CUDA device: torch {torch.__version__} is a CPU-only build"
    return "no CUDA device: torch.cuda.is_available() is False"
