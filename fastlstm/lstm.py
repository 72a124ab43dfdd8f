"""fastlstm.LSTM: torch.nn.LSTM's interface, parameters and results, run by the
fused fastlstm ops one layer direction at a time.

It is an nn.Module rather than an nn.LSTM subclass on purpose: torch.compile
refuses to trace anything that is an nn.LSTM."""
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from ._aten import aten_lstm, onnx_exporting, runs_on_aten
from ._checks import (check_dtype_device, check_hidden_pair, check_hidden_shape, check_lstm_config,
                      computing_as, under_autocast, weights_as)
from ._ops import lstm_layer
from ._weights import layer_weights
from .reference import lstm_layer_ref

__all__ = ["LSTM"]

_CONFIG = ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
           "bidirectional", "proj_size")


class LSTM(nn.Module):
    """Drop-in replacement for :class:`torch.nn.LSTM` (same constructor, parameter
    names, shapes, initialization, inputs and outputs)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        check_lstm_config(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                          proj_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        factory = {"device": device, "dtype": dtype}
        dirs = 2 if bidirectional else 1
        real_hidden = proj_size or hidden_size
        # Registration order is nn.LSTM's, so the same seed gives the same weights.
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else real_hidden * dirs
            for direction in range(dirs):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                shapes = {"weight_ih": (4 * hidden_size, layer_input),
                          "weight_hh": (4 * hidden_size, real_hidden)}
                if bias:
                    shapes.update(bias_ih=(4 * hidden_size,), bias_hh=(4 * hidden_size,))
                if proj_size:
                    shapes["weight_hr"] = (proj_size, hidden_size)
                for name, shape in shapes.items():
                    setattr(self, name + suffix, nn.Parameter(torch.empty(shape, **factory)))
        self.reset_parameters()

    def reset_parameters(self):
        reset_uniform(self)

    @property
    def all_weights(self):
        """Parameters per layer and direction, as nn.LSTM.all_weights lists them."""
        dirs = 2 if self.bidirectional else 1
        names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if self.bias else [])
        names += ["weight_hr"] if self.proj_size else []
        return [[getattr(self, f"{name}_l{layer}" + ("_reverse" if d else "")) for name in names]
                for layer in range(self.num_layers) for d in range(dirs)]

    def flatten_parameters(self):
        """Kept for code written for nn.LSTM; fastlstm needs no flat weight buffer."""

    @classmethod
    def from_torch(cls, module):
        """A fastlstm.LSTM with the configuration and weights of an nn.LSTM."""
        weight = next(module.parameters())
        new = cls(**{k: getattr(module, k) for k in _CONFIG}, device=weight.device,
                  dtype=weight.dtype)
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        return new

    def to_torch(self):
        """An nn.LSTM with this module's configuration and weights."""
        weight = next(self.parameters())
        new = nn.LSTM(**{k: getattr(self, k) for k in _CONFIG}, device=weight.device,
                      dtype=weight.dtype)
        new.load_state_dict(self.state_dict())
        new.train(self.training)
        return new

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        defaults = {"proj_size": 0, "num_layers": 1, "bias": True, "batch_first": False,
                    "dropout": 0.0, "bidirectional": False}
        for key, default in defaults.items():
            if getattr(self, key) != default:
                s += f", {key}={getattr(self, key)}"
        return s

    def forward(self, input, hx=None):
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        if input.dim() not in (2, 3):
            raise ValueError(f"LSTM: Expected input to be 2D or 3D, got {input.dim()}D instead")
        compute = computing_as(self.weight_ih_l0, input)
        input = under_autocast(input, compute)
        self._check_input(input, compute)
        unbatched = input.dim() == 2
        x = input.unsqueeze(1) if unbatched else input
        if self.batch_first and not unbatched:
            x = x.transpose(0, 1)
        steps, batch = x.shape[0], x.shape[1]
        if steps == 0:
            raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
        h0, c0 = self._initial_state(x, hx, batch, unbatched, compute)
        if runs_on_aten(compute, self.proj_size):
            output, h_n, c_n = aten_lstm(self, x, h0, c0)
        else:
            rows, h_n, c_n = self._run_layers(x.reshape(steps * batch, x.shape[2]), h0, c0, None)
            output = rows.view(steps, batch, rows.shape[1])
        if unbatched:
            return output.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
        if self.batch_first:
            output = output.transpose(0, 1)
        return output, (h_n, c_n)

    def _forward_packed(self, packed, hx):
        data, batch_sizes, sorted_indices, unsorted_indices = packed
        compute = computing_as(self.weight_ih_l0, data)
        data = under_autocast(data, compute)
        self._check_input(data, compute)
        h0, c0 = self._initial_state(data, hx, int(batch_sizes[0]), False, compute)
        if sorted_indices is not None:
            h0, c0 = h0.index_select(1, sorted_indices), c0.index_select(1, sorted_indices)
        if runs_on_aten(compute, self.proj_size):
            rows, h_n, c_n = aten_lstm(self, data, h0, c0, batch_sizes)
        else:
            rows, h_n, c_n = self._run_layers(data, h0, c0, batch_sizes)
        if unsorted_indices is not None:
            h_n, c_n = h_n.index_select(1, unsorted_indices), c_n.index_select(1, unsorted_indices)
        return PackedSequence(rows, batch_sizes, sorted_indices, unsorted_indices), (h_n, c_n)

    def _check_input(self, input, compute):
        check_dtype_device("LSTM", input, compute)
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. "
                               f"Expected {self.input_size}, got {input.shape[-1]}")

    def _initial_state(self, x, hx, batch, unbatched, compute):
        dirs = 2 if self.bidirectional else 1
        layers = self.num_layers * dirs
        h_shape = (layers, batch, self.proj_size or self.hidden_size)
        c_shape = (layers, batch, self.hidden_size)
        if hx is None:
            return x.new_zeros(h_shape), x.new_zeros(c_shape)
        check_hidden_pair("LSTM", hx)
        h0, c0 = (under_autocast(t, compute) for t in hx)
        if unbatched:
            if h0.dim() != 2 or c0.dim() != 2:
                raise RuntimeError(f"For unbatched 2-D input, hx and cx should also be 2-D but "
                                   f"got ({h0.dim()}-D, {c0.dim()}-D) tensors")
            h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
        elif h0.dim() != 3 or c0.dim() != 3:
            raise RuntimeError(f"For batched 3-D input, hx and cx should also be 3-D but "
                               f"got ({h0.dim()}-D, {c0.dim()}-D) tensors")
        check_hidden_shape(0, h0, h_shape)
        check_hidden_shape(1, c0, c_shape)
        check_dtype_device("LSTM", h0, compute, "hx")
        check_dtype_device("LSTM", c0, compute, "cx")
        return h0, c0

    def _run_layers(self, rows, h0, c0, batch_sizes):
        dirs = 2 if self.bidirectional else 1
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            if dirs == 2 and _overlap_directions(rows):
                results = self._directions_on_two_streams(rows, h0, c0, layer, batch_sizes)
            else:
                results = [self._direction(rows, h0, c0, layer, d, batch_sizes)
                           for d in range(dirs)]
            outputs = [out for out, _, _ in results]
            h_n += [h for _, h, _ in results]
            c_n += [c for _, _, c in results]
            rows = torch.cat(outputs, dim=1) if dirs == 2 else outputs[0]
            if self.dropout and self.training and layer < self.num_layers - 1:
                rows = F.dropout(rows, self.dropout, training=True)
        return rows, torch.stack(h_n), torch.stack(c_n)

    def _direction(self, rows, h0, c0, layer, direction, batch_sizes):
        k = layer * (2 if self.bidirectional else 1) + direction
        weights = weights_as(layer_weights(self, layer, direction), rows.dtype)
        # An ONNX export of a projection: the equations, which export as plain ops.
        layer_fn = lstm_layer_ref if onnx_exporting() else lstm_layer
        return layer_fn(rows, h0[k], c0[k], *weights, batch_sizes=batch_sizes,
                        reverse=bool(direction))

    def _directions_on_two_streams(self, rows, h0, c0, layer, batch_sizes):
        """The reverse direction on a side stream while the forward one runs on
        the current stream: at small batch neither fills the GPU. Autograd runs
        each backward on its forward's stream, so the backward overlaps too."""
        main = torch.cuda.current_stream(rows.device)
        side = _side_stream(rows.device)
        side.wait_stream(main)
        with torch.cuda.stream(side):
            reverse = self._direction(rows, h0, c0, layer, 1, batch_sizes)
        forward = self._direction(rows, h0, c0, layer, 0, batch_sizes)
        main.wait_stream(side)
        # The caching allocator must not hand out memory that the other
        # stream may still read: inputs read on the side stream, outputs
        # made there and read on the current one.
        for t in (rows, h0, c0, *layer_weights(self, layer, 1)):
            if t is not None:
                t.record_stream(side)
        for t in reverse:
            t.record_stream(main)
        return [forward, reverse]


_SIDE_STREAMS = {}


def _side_stream(device):
    if device not in _SIDE_STREAMS:
        _SIDE_STREAMS[device] = torch.cuda.Stream(device)
    return _SIDE_STREAMS[device]


def _overlap_directions(rows):
    """Both directions at once on a GPU, in eager mode (torch.compile and CUDA
    graph capture keep the single stream)."""
    return (rows.is_cuda and not torch.compiler.is_compiling()
            and not torch.cuda.is_current_stream_capturing())


def reset_uniform(module):
    """nn.LSTM's and nn.LSTMCell's initialization: every parameter, in
    registration order, from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
    bound = 1.0 / math.sqrt(module.hidden_size) if module.hidden_size > 0 else 0
    for weight in module.parameters():
        nn.init.uniform_(weight, -bound, bound)
