"""The LSTM as torch.nn.LSTM computes it, through ATen's own kernels
(torch._VF.lstm, lstm_cell), for the two things the fastlstm ops cannot
take: an ONNX export, which both exporters (TorchScript and dynamo) translate
from aten::lstm into ONNX's LSTM op exactly as they do for nn.LSTM, and
complex models, which nn.LSTM runs and the fused backends do not.

A projection (proj_size > 0) has no ONNX LSTM op, nor an aten::lstm
translation in either exporter; it is exported as the reference equations
(fastlstm.reference) unrolled over the sequence the export traced."""
import torch

try:  # the two flags torch.onnx.is_in_onnx_export() reads, imported once
    from torch.onnx._internal.exporter import _flags as _dynamo_export
    from torch.onnx._internal.torchscript_exporter._globals import GLOBALS as _torchscript_export
except ImportError:  # another torch: its public test alone
    _dynamo_export = _torchscript_export = None


def onnx_exporting():
    """torch.onnx.is_in_onnx_export(), which imports both flags at every call
    (~4 µs, more than the rest of a small LSTMCell step's Python): the flags
    read directly in eager mode; the public test where torch.compile or
    torch.export traces (dynamo skips the flags' property)."""
    if _dynamo_export is None or torch.compiler.is_compiling():
        return torch.onnx.is_in_onnx_export()
    return _torchscript_export.in_onnx_export or _dynamo_export._is_onnx_exporting

__all__ = ["aten_cell", "aten_lstm", "onnx_exporting", "runs_on_aten"]


def runs_on_aten(compute, proj_size=0):
    """Whether layers computing in `compute` (dtype, device) run on ATen's
    kernels: complex models, and ONNX exports without projection."""
    return compute.dtype.is_complex or (not proj_size and onnx_exporting())


def aten_lstm(module, x, h0, c0, batch_sizes=None):
    """nn.LSTM's call of ATen's LSTM on a time-major x ([T, B, I], or a
    PackedSequence's data with batch_sizes) and the full (h0, c0); returns
    (output, h_n, c_n)."""
    weights = [w for layer in module.all_weights for w in layer]
    flags = (module.bias, module.num_layers, module.dropout, module.training, module.bidirectional)
    if batch_sizes is None:
        return torch._VF.lstm(x, (h0, c0), weights, *flags, False)
    # ATen reads batch_sizes as raw memory: a strided view would read garbage.
    return torch._VF.lstm(x, batch_sizes.contiguous(), (h0, c0), weights, *flags)


def aten_cell(cell, x, h0, c0):
    """nn.LSTMCell's call of ATen's cell: (h, c) of one step of batched x."""
    return torch._VF.lstm_cell(x, (h0, c0), cell.weight_ih, cell.weight_hh, cell.bias_ih,
                               cell.bias_hh)
