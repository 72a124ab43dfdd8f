"""Pure-PyTorch LSTM, written for reading rather than speed: the equations that
every fastlstm backend must reproduce, used as the reference by the tests.

Gate order is PyTorch's (input, forget, cell, output)."""
import torch
from torch.nn.utils.rnn import PackedSequence

from ._weights import layer_weights

__all__ = ["layer_weights", "lstm_cell_ref", "lstm_layer_ref", "lstm_ref"]


def lstm_cell_ref(x, h, c, w_ih, w_hh, bias=None, w_hr=None):
    """One step: returns (h_t, c_t); h_t is projected by w_hr when given."""
    gates = x @ w_ih.T + h @ w_hh.T
    if bias is not None:
        gates = gates + bias
    i, f, g, o = gates.chunk(4, dim=1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * c + i * g
    h = o * torch.tanh(c)
    if w_hr is not None:
        h = h @ w_hr.T
    return h, c


def lstm_layer_ref(input, h0, c0, w_ih, w_hh, bias=None, w_hr=None, batch_sizes=None,
                   reverse=False):
    """Same contract as fastlstm.ops.lstm_layer: input is time-major rows [N, I]
    in which step t owns batch_sizes[t] rows (all B rows when batch_sizes is None).
    Rows past a step's batch keep their state, as a PackedSequence needs."""
    batch = h0.shape[0]
    if batch_sizes is None:
        steps = input.shape[0] // batch if batch else 0
        batch_sizes = [batch] * steps
    else:
        batch_sizes = [int(b) for b in batch_sizes]
    offsets = [sum(batch_sizes[:t]) for t in range(len(batch_sizes))]
    order = range(len(batch_sizes) - 1, -1, -1) if reverse else range(len(batch_sizes))
    h, c = h0, c0
    outputs = [None] * len(batch_sizes)
    for t in order:
        n = batch_sizes[t]
        x = input[offsets[t]:offsets[t] + n]
        h_t, c_t = lstm_cell_ref(x, h[:n], c[:n], w_ih, w_hh, bias, w_hr)
        h = torch.cat([h_t, h[n:]])
        c = torch.cat([c_t, c[n:]])
        outputs[t] = h_t
    output = torch.cat(outputs) if outputs else input.new_zeros(0, h0.shape[1])
    return output, h, c


def lstm_ref(module, input, hx=None):
    """Runs the parameters of an nn.LSTM-like module (torch.nn.LSTM or
    fastlstm.LSTM) through the reference equations; no dropout.
    Accepts what nn.LSTM.forward accepts and returns what it returns."""
    dirs = 2 if module.bidirectional else 1
    proj = module.proj_size or module.hidden_size
    packed = isinstance(input, PackedSequence)
    if packed:
        rows, batch_sizes, sorted_idx, unsorted_idx = input
        batch = int(batch_sizes[0])
    else:
        unbatched = input.dim() == 2
        x = input.unsqueeze(1) if unbatched else input
        x = x.transpose(0, 1) if module.batch_first and not unbatched else x
        steps, batch = x.shape[:2]
        rows, batch_sizes, sorted_idx, unsorted_idx = x.reshape(steps * batch, -1), None, None, None
    if hx is None:
        h0 = rows.new_zeros(module.num_layers * dirs, batch, proj)
        c0 = rows.new_zeros(module.num_layers * dirs, batch, module.hidden_size)
    else:
        h0, c0 = hx
        if not packed and unbatched:
            h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
        if sorted_idx is not None:
            h0, c0 = h0.index_select(1, sorted_idx), c0.index_select(1, sorted_idx)
    h_n, c_n = [], []
    for layer in range(module.num_layers):
        outs = []
        for d in range(dirs):
            k = layer * dirs + d
            out, h, c = lstm_layer_ref(rows, h0[k], c0[k], *layer_weights(module, layer, d),
                                       batch_sizes=batch_sizes, reverse=bool(d))
            outs.append(out)
            h_n.append(h)
            c_n.append(c)
        rows = torch.cat(outs, dim=1)
    h_n, c_n = torch.stack(h_n), torch.stack(c_n)
    if packed:
        if unsorted_idx is not None:
            h_n, c_n = h_n.index_select(1, unsorted_idx), c_n.index_select(1, unsorted_idx)
        return PackedSequence(rows, batch_sizes, sorted_idx, unsorted_idx), (h_n, c_n)
    output = rows.reshape(steps, batch, -1)
    if unbatched:
        return output.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
    if module.batch_first:
        output = output.transpose(0, 1)
    return output, (h_n, c_n)
