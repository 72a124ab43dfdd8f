"""ONNX export of models holding fastlstm.LSTM / LSTMCell with both of
torch.onnx.export's exporters (TorchScript: dynamo=False; torch.export:
dynamo=True), run by onnxruntime against nn.LSTM with the same weights."""
import warnings

import onnx
import onnxruntime
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import fastlstm

TOL = {"atol": 1e-5, "rtol": 1e-5}


class Model(nn.Module):
    """An LSTM between two linear layers, returning output, h_n and c_n."""

    def __init__(self, lstm_cls, **config):
        super().__init__()
        torch.manual_seed(0)
        self.lstm = lstm_cls(**config)
        self.head = nn.Linear((config.get("proj_size") or config["hidden_size"])
                              * (2 if config.get("bidirectional") else 1), 2)

    def forward(self, x, h0=None, c0=None):
        output, (h_n, c_n) = self.lstm(x, None if h0 is None else (h0, c0))
        return self.head(output), h_n, c_n


class PackedModel(Model):
    def forward(self, x, lengths):
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        output, (h_n, c_n) = self.lstm(packed)
        return pad_packed_sequence(output)[0], h_n, c_n


class CellModel(nn.Module):
    def __init__(self, cell_cls):
        super().__init__()
        torch.manual_seed(0)
        self.cell = cell_cls(3, 5)

    def forward(self, x, h, c):
        return self.cell(x, (h, c))


def lstm_inputs(steps=6, batch=2, size=3, hidden=None, layers=1):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(steps, batch, size, generator=gen)
    if hidden is None:
        return (x,)
    return x, torch.randn(layers, batch, hidden, generator=gen), torch.randn(layers, batch, hidden,
                                                                             generator=gen)


BASE = dict(input_size=3, hidden_size=5)
CASES = {
    "plain": (Model, BASE, lstm_inputs()),
    "stacked_bidirectional_batch_first": (
        Model, dict(BASE, num_layers=2, bidirectional=True, batch_first=True, dropout=0.3),
        lstm_inputs(2, 6)),
    "no_bias_with_hx": (Model, dict(BASE, bias=False, num_layers=2),
                        lstm_inputs(hidden=5, layers=2)),
    "unbatched": (Model, dict(BASE, num_layers=2), (torch.randn(6, 3),)),
    "projection": (Model, dict(BASE, proj_size=2, num_layers=2, bidirectional=True),
                   lstm_inputs()),
    "packed": (PackedModel, dict(BASE, bidirectional=True),
               (torch.randn(6, 3, 3), torch.tensor([6, 2, 4]))),
    "cell": (CellModel, None, (torch.randn(2, 3), torch.randn(2, 5), torch.randn(2, 5))),
}
# What nn.LSTM cannot export itself: there the reference is nn.LSTM run in eager mode.
TORCH_EXPORT_FAILS = {("projection", False), ("projection", True), ("packed", True)}


def build(name, lstm_cls, cell_cls):
    model_cls, config, inputs = CASES[name]
    model = model_cls(cell_cls) if config is None else model_cls(lstm_cls, **config)
    return model.eval(), inputs


def export_and_run(model, inputs, dynamo, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, inputs, path, dynamo=dynamo)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {arg.name: value.numpy() for arg, value in zip(session.get_inputs(), inputs)}
    return [torch.from_numpy(out) for out in session.run(None, feeds)]


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("name", CASES)
def test_onnx_export_matches_nn_lstm(name, dynamo, tmp_path):
    fast, inputs = build(name, fastlstm.LSTM, fastlstm.LSTMCell)
    ref, _ = build(name, nn.LSTM, nn.LSTMCell)
    ref.load_state_dict(fast.state_dict())
    if name == "packed" and dynamo:
        # torch.export cannot trace pack_padded_sequence's data-dependent
        # shapes: both modules fail there alike, before reaching the LSTM.
        for model, path in ((fast, "fast.onnx"), (ref, "ref.onnx")):
            with pytest.raises(torch.onnx.OnnxExporterError, match="torch.export"):
                export_and_run(model, inputs, dynamo, tmp_path / path)
        return
    actual = export_and_run(fast, inputs, dynamo, tmp_path / "fast.onnx")
    with torch.no_grad():
        expected = ref(*inputs)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e, **TOL)
    ops = {node.op_type for node in onnx.load(str(tmp_path / "fast.onnx")).graph.node}
    if name == "projection":
        assert "LSTM" not in ops and {"MatMul", "Sigmoid", "Tanh"} <= ops | {"Gemm"}
    elif name != "cell":
        assert "LSTM" in ops
    if (name, dynamo) not in TORCH_EXPORT_FAILS:
        # The graph nn.LSTM exports computes what fastlstm's does.
        torch.testing.assert_close(export_and_run(ref, inputs, dynamo, tmp_path / "ref.onnx"),
                                   actual, **TOL)


def test_export_leaves_the_eager_model_on_the_fastlstm_ops(tmp_path):
    fast, inputs = build("plain", fastlstm.LSTM, fastlstm.LSTMCell)
    export_and_run(fast, inputs, False, tmp_path / "fast.onnx")
    assert not torch.onnx.is_in_onnx_export()
    program = torch.export.export(fast, inputs)
    targets = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert any("fastlstm.lstm_layer" in t for t in targets), targets
