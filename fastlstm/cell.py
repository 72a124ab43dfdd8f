"""fastlstm.LSTMCell: torch.nn.LSTMCell's interface and parameters; one step is
one call of the fused layer op with a single time step.

In eager mode the common case (batched input, hx given, everything of the
weights' dtype and device) is one C call, fastlstm._C._cell_step, which checks
it and calls the op unboxed: a Python loop over cell steps pays for the step,
not for the wrapper (csrc/cell_call.cpp). Everything else, and torch.compile,
takes the checks and the op call in Python below."""
import torch
from torch import nn

from . import _C
from ._aten import aten_cell, onnx_exporting, runs_on_aten
from ._checks import check_dtype_device, check_hidden_pair, computing_as, under_autocast, weights_as
from ._ops import lstm_layer
from .lstm import reset_uniform

__all__ = ["LSTMCell"]


class LSTMCell(nn.Module):
    """Drop-in replacement for :class:`torch.nn.LSTMCell`."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size, **factory))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size, **factory))
            self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        reset_uniform(self)

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")

    def forward(self, input, hx=None):
        if hx is not None and not torch.compiler.is_compiling() and not onnx_exporting():
            step = _C._cell_step(input, hx, *self._weights())
            if step is not None:
                return step
        return self._checked_forward(input, hx)

    def _weights(self):
        """weight_ih, weight_hh, bias_ih, bias_hh (None without bias), read from
        _parameters where they are there (nn.Module's __getattr__ costs about
        0.5 us a name); by attribute where a hook or parametrization replaced them."""
        params = self._parameters
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") if self.bias else (
            "weight_ih", "weight_hh")
        weights = [params.get(name) for name in names]
        if any(w is None for w in weights):
            weights = [getattr(self, name) for name in names]
        return weights if self.bias else weights + [None, None]

    def _checked_forward(self, input, hx):
        if input.dim() not in (1, 2):
            raise ValueError(f"LSTMCell: Expected input to be 1D or 2D, got {input.dim()}D instead")
        compute = computing_as(self.weight_ih, input)
        input = under_autocast(input, compute)
        check_dtype_device("LSTMCell", input, compute)
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {input.shape[-1]} "
                               f"expected {self.input_size}")
        unbatched = input.dim() == 1
        x = input.unsqueeze(0) if unbatched else input
        h0, c0 = self._initial_state(x, hx, unbatched, compute)
        if runs_on_aten(compute):
            h, c = aten_cell(self, x, h0, c0)
        else:
            bias = self.bias_ih + self.bias_hh if self.bias else None
            w_ih, w_hh, bias = weights_as([self.weight_ih, self.weight_hh, bias], x.dtype)
            _, h, c = lstm_layer(x, h0, c0, w_ih, w_hh, bias)
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)

    def _initial_state(self, x, hx, unbatched, compute):
        batch = x.shape[0]
        if hx is None:
            zeros = x.new_zeros(batch, self.hidden_size)
            return zeros, zeros
        check_hidden_pair("LSTMCell", hx)
        h0, c0 = hx
        # The common case in one comparison each: batched, of the right
        # shape, dtype and device (the checks below name what is wrong).
        if (not unbatched and h0.shape == c0.shape == (batch, self.hidden_size)
                and h0.dtype == c0.dtype == compute.dtype
                and h0.device == c0.device == compute.device):
            return h0, c0
        hx = [under_autocast(t, compute) for t in hx]
        h0, c0 = (t.unsqueeze(0) for t in hx) if unbatched else hx
        for i, t in enumerate((h0, c0)):
            if t.dim() != 2:
                raise ValueError(f"LSTMCell: Expected hx[{i}] to be {1 if unbatched else 2}D, "
                                 f"got {t.dim() - unbatched}D instead")
            if t.shape[0] != batch:
                raise RuntimeError(f"Input batch size {batch} doesn't match hidden{i} batch "
                                   f"size {t.shape[0]}")
            if t.shape[1] != self.hidden_size:
                raise RuntimeError(f"hidden{i} has inconsistent hidden_size: got {t.shape[1]}, "
                                   f"expected {self.hidden_size}")
            check_dtype_device("LSTMCell", t, compute, f"hx[{i}]")
        return h0, c0
