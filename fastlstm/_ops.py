"""Python half of the fastlstm ops: fake (meta) kernels for torch.compile.
The schemas, kernels and autograd live in C++ (csrc/; the autograd in
csrc/lstm_autograd.cpp, where a call costs a few µs instead of the ~70 µs of
torch.library.register_autograd)."""
import torch

from . import _C  # noqa: F401  (loading the library registers the ops)
from . import _autotune, _backend, _nvrtc

_nvrtc.configure()

__all__ = ["lstm_layer"]


def workspace_dtype(storage_dtype):
    """Half and bfloat16 layers compute, and keep their workspace, in float32."""
    return torch.float32 if storage_dtype in (torch.float16, torch.bfloat16) else storage_dtype


def _check_same_device(input, batch_sizes, *tensors):
    # The fake kernel also serves meta tensors, where a mix with real tensors
    # would otherwise return uninitialised memory instead of an error.
    for t in tensors:
        if t is not None and t.device != input.device:
            raise RuntimeError(f"fastlstm: expected every tensor on {input.device} (the input's "
                               f"device), got one on {t.device}")
    if batch_sizes is not None and batch_sizes.device.type != "cpu":
        raise RuntimeError(f"fastlstm: expected batch_sizes as a 1-D int64 CPU tensor, got one "
                           f"on {batch_sizes.device}")


@torch.library.register_fake("fastlstm::lstm_layer")
def _lstm_layer_fake(input, h0, c0, w_ih, w_hh, bias, w_hr, batch_sizes, reverse,
                     save_workspace):
    _check_same_device(input, batch_sizes, h0, c0, w_ih, w_hh, bias, w_hr)
    rows, hidden, proj = input.shape[0], w_ih.shape[0] // 4, w_hh.shape[1]
    saved_rows = rows if save_workspace else 0
    workspace = {"dtype": workspace_dtype(input.dtype)}
    return (
        input.new_empty(rows, proj),
        h0.new_empty(h0.shape),
        c0.new_empty(c0.shape),
        input.new_empty(saved_rows, 4 * hidden, **workspace),
        input.new_empty(saved_rows, hidden, **workspace),
    )


@torch.library.register_fake("fastlstm::lstm_layer_backward")
def _lstm_layer_backward_fake(grad_output, grad_h_n, grad_c_n, input, h0, c0, w_ih, w_hh, w_hr,
                              batch_sizes, reverse, output, gates, cells):
    _check_same_device(input, batch_sizes, grad_output, grad_h_n, grad_c_n, h0, c0, w_ih, w_hh, w_hr, output,
                       gates, cells)
    grad_w_hr = w_hr.new_empty(w_hr.shape) if w_hr is not None else input.new_empty(0)
    return (
        input.new_empty(input.shape),
        h0.new_empty(h0.shape),
        c0.new_empty(c0.shape),
        w_ih.new_empty(w_ih.shape),
        w_hh.new_empty(w_hh.shape),
        w_ih.new_empty(w_ih.shape[0]),
        grad_w_hr,
    )


def lstm_layer(input, h0, c0, w_ih, w_hh, bias=None, w_hr=None, batch_sizes=None, reverse=False):
    """One layer, one direction, over time-major rows; see csrc/lstm_op.cpp.

    Returns (output [N, P], h_n [B, P], c_n [B, H])."""
    # The backward workspace is kept only when autograd will ask for it.
    save_workspace = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (input, h0, c0, w_ih, w_hh, bias, w_hr))
    args = (input, h0, c0, w_ih, w_hh, bias, w_hr, batch_sizes, reverse)
    kernel = _autotune.kernel_for(*args, save_workspace) if _autotune.enabled() else None
    if kernel is None:
        return torch.ops.fastlstm.lstm_layer(*args, save_workspace)[:3]
    with _backend.forced_kernel(kernel):
        return torch.ops.fastlstm.lstm_layer(*args, save_workspace)[:3]
