"""bfloat16 and float16 layers on the CPU: stored in low precision, computed in
float32. Rule: fastlstm's error against a float32 reference is at most twice
nn.LSTM's own low-precision error, plus half an ulp of the storage dtype for
the final rounding. The reference uses the same low-precision-rounded weights
and input, so the errors measure the computation, not the rounding of data."""
import pytest
import torch
from torch.nn.utils.rnn import pack_sequence

import fastlstm
from conftest import make_pair

CONFIGS = {
    "plain": dict(input_size=6, hidden_size=8),
    "stacked_bidirectional": dict(input_size=6, hidden_size=8, num_layers=2, bidirectional=True),
    "projection": dict(input_size=6, hidden_size=8, proj_size=3),
}
HALF_ULP = {torch.bfloat16: 2.0 ** -9, torch.float16: 2.0 ** -12}


def outputs_and_grads(model, x, upstream):
    model.zero_grad()
    x = x.detach().requires_grad_()
    out, (h_n, c_n) = model(x)
    loss = (out.float() * upstream).sum() + h_n.float().sum() + c_n.float().sum()
    loss.backward()
    return [out, h_n, c_n, x.grad] + [p.grad for p in model.parameters()]


def assert_within_twice_torch_error(ours, theirs, reference, dtype):
    for name, a, b, ref in zip(range(len(reference)), ours, theirs, reference):
        assert a.dtype == dtype, (name, a.dtype)
        scale = ref.abs().max().item()
        ours_err = (a.float() - ref).abs().max().item()
        torch_err = (b.float() - ref).abs().max().item()
        assert ours_err <= 2 * torch_err + HALF_ULP[dtype] * max(scale, 1.0), \
            f"tensor {name}: fastlstm error {ours_err:.3g}, torch error {torch_err:.3g}"


@pytest.mark.filterwarnings("ignore:LSTM with projections")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("name", CONFIGS)
def test_low_precision_within_twice_torch_error(name, dtype):
    torch_low, fast_low = make_pair(dtype=dtype, **CONFIGS[name])
    reference, _ = make_pair(dtype=torch.float32, **CONFIGS[name])
    reference.load_state_dict({k: v.float() for k, v in torch_low.state_dict().items()})
    x = torch.randn(7, 3, 6).to(dtype)
    upstream = torch.randn(7, 3, torch_low(x)[0].shape[-1])
    expected = outputs_and_grads(reference, x.float(), upstream)
    theirs = outputs_and_grads(torch_low, x, upstream)
    ours = outputs_and_grads(fast_low, x, upstream)
    assert_within_twice_torch_error(ours, theirs, expected, dtype)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_low_precision_packed_and_cell(dtype):
    torch.manual_seed(0)
    fast = fastlstm.LSTM(4, 5, dtype=dtype)
    reference = fastlstm.LSTM(4, 5)
    reference.load_state_dict({k: v.float() for k, v in fast.state_dict().items()})
    seqs = [torch.randn(n, 4).to(dtype) for n in (5, 2, 3)]
    out, (h_n, _) = fast(pack_sequence(seqs, enforce_sorted=False))
    ref_out, (ref_h, _) = reference(pack_sequence([s.float() for s in seqs], enforce_sorted=False))
    assert out.data.dtype == dtype
    torch.testing.assert_close(out.data.float(), ref_out.data, atol=4 * HALF_ULP[dtype], rtol=0)
    torch.testing.assert_close(h_n.float(), ref_h, atol=4 * HALF_ULP[dtype], rtol=0)

    cell = fastlstm.LSTMCell(4, 5, dtype=dtype)
    ref_cell = fastlstm.LSTMCell(4, 5)
    ref_cell.load_state_dict({k: v.float() for k, v in cell.state_dict().items()})
    h, c = cell(seqs[0])
    ref_h, ref_c = ref_cell(seqs[0].float())
    assert h.dtype == c.dtype == dtype
    torch.testing.assert_close(h.float(), ref_h, atol=4 * HALF_ULP[dtype], rtol=0)


def test_low_precision_op_keeps_float32_workspace():
    args = [torch.randn(6, 3), torch.zeros(2, 4), torch.zeros(2, 4), torch.randn(16, 3),
            torch.randn(16, 4), None, None, None, False, True]
    args[:5] = [a.to(torch.bfloat16) for a in args[:5]]
    torch.library.opcheck(torch.ops.fastlstm.lstm_layer.default, tuple(args))
    output, h_n, c_n, gates, cells = torch.ops.fastlstm.lstm_layer(*args)
    assert output.dtype == h_n.dtype == c_n.dtype == torch.bfloat16
    assert gates.dtype == cells.dtype == torch.float32
