"""fastlstm.LSTM against torch.nn.LSTM (and fastlstm.reference) with the same
weights: outputs, final states and the gradients of input, h0, c0 and every
parameter, over a grid that covers each feature and the combinations that
share code paths (reverse + packed, projection + bidirectional, ...)."""
import pytest
import torch

from conftest import (FP64_TOL, FP32_TOL, Case, assert_all_close, assert_results_close, make_pair,
                      run_module, run_reference)


def cfg(input_size=3, hidden_size=5, **kwargs):
    return dict(input_size=input_size, hidden_size=hidden_size, **kwargs)


CASES = [
    # layers and directions
    Case(cfg()),
    Case(cfg(num_layers=2)),
    Case(cfg(num_layers=3)),
    Case(cfg(bidirectional=True)),
    Case(cfg(num_layers=2, bidirectional=True)),
    Case(cfg(num_layers=3, bidirectional=True, batch_first=True)),
    # batch_first
    Case(cfg(batch_first=True)),
    Case(cfg(num_layers=2, batch_first=True), batch=4),
    # projection
    Case(cfg(proj_size=2)),
    Case(cfg(proj_size=3, num_layers=2, bidirectional=True)),
    Case(cfg(proj_size=1, num_layers=3, batch_first=True)),
    # no bias
    Case(cfg(bias=False)),
    Case(cfg(bias=False, num_layers=2, bidirectional=True)),
    Case(cfg(bias=False, proj_size=2, bidirectional=True)),
    # unbatched input (batch_first is ignored for it, as in nn.LSTM)
    Case(cfg(), batch=None),
    Case(cfg(num_layers=2, bidirectional=True), batch=None),
    Case(cfg(proj_size=2, batch_first=True), batch=None),
    Case(cfg(num_layers=2), batch=None, with_hx=False),
    # single step, odd sizes
    Case(cfg(), steps=1),
    Case(cfg(num_layers=2, bidirectional=True), steps=1, batch=1),
    Case(cfg(), batch=1),
    Case(cfg(num_layers=2, bidirectional=True), batch=7),
    Case(cfg(proj_size=2), steps=1, batch=7),
    Case(cfg(input_size=1, hidden_size=1, num_layers=2, bidirectional=True), steps=3, batch=2),
    Case(cfg(input_size=6, hidden_size=8, num_layers=2, bidirectional=True, proj_size=3),
         steps=6, batch=5),
    # hx=None
    Case(cfg(), with_hx=False),
    Case(cfg(num_layers=2, bidirectional=True, proj_size=2), with_hx=False),
    # PackedSequence, sorted
    Case(cfg(), lengths=(4, 3, 1)),
    Case(cfg(num_layers=2, bidirectional=True), lengths=(4, 3, 1)),
    Case(cfg(proj_size=2), lengths=(4, 4, 2)),
    Case(cfg(bidirectional=True), lengths=(4, 4, 4)),
    Case(cfg(bidirectional=True), lengths=(1, 1, 1)),
    Case(cfg(num_layers=2, bidirectional=True), steps=1, batch=1, lengths=(1,)),
    Case(cfg(batch_first=True, bidirectional=True), lengths=(4, 2, 1)),
    # PackedSequence, unsorted
    Case(cfg(), lengths=(2, 4, 1), enforce_sorted=False),
    Case(cfg(num_layers=2, bidirectional=True, batch_first=True), lengths=(1, 4, 3),
         enforce_sorted=False),
    Case(cfg(proj_size=2, bidirectional=True), batch=4, lengths=(3, 1, 4, 2), enforce_sorted=False),
    Case(cfg(bias=False, num_layers=2), lengths=(2, 4, 1), enforce_sorted=False),
    Case(cfg(num_layers=2, bidirectional=True), lengths=(2, 4, 1), enforce_sorted=False,
         with_hx=False),
    Case(cfg(num_layers=3, bidirectional=True, proj_size=2, batch_first=True), steps=5, batch=7,
         lengths=(5, 1, 3, 5, 2, 4, 1), enforce_sorted=False),
]

FLOAT64_CASES = [
    Case(cfg(num_layers=2, bidirectional=True)),
    Case(cfg(proj_size=2, num_layers=2, batch_first=True)),
    Case(cfg(bias=False, bidirectional=True), batch=None),
    Case(cfg(num_layers=2, bidirectional=True), lengths=(4, 3, 1)),
    Case(cfg(proj_size=3, bidirectional=True), batch=4, lengths=(3, 1, 4, 2), enforce_sorted=False),
    Case(cfg(), steps=1, batch=7, with_hx=False),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_matches_torch_lstm(case):
    ref, fast = make_pair(**case.config)
    assert_results_close(run_module(fast, case), run_module(ref, case), **FP32_TOL)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_matches_reference_equations(case):
    _, fast = make_pair(**case.config)
    assert_results_close(run_module(fast, case), run_reference(fast, case), **FP32_TOL)


@pytest.mark.parametrize("case", FLOAT64_CASES, ids=str)
def test_float64_matches_torch_lstm(case):
    ref, fast = make_pair(dtype=torch.float64, **case.config)
    expected = run_module(ref, case, torch.float64)
    actual = run_module(fast, case, torch.float64)
    assert actual["output"].dtype == torch.float64
    assert_results_close(actual, expected, **FP64_TOL)


@pytest.mark.parametrize("case", FLOAT64_CASES, ids=str)
def test_float64_reference_matches_torch_lstm(case):
    # The reference is what the op tests trust, so pin it to nn.LSTM too.
    ref, _ = make_pair(dtype=torch.float64, **case.config)
    assert_results_close(run_reference(ref, case, torch.float64), run_module(ref, case, torch.float64),
                         **FP64_TOL)


@pytest.mark.parametrize("used", ["output", "h_n", "c_n"])
def test_gradients_when_only_one_result_is_used(used):
    # Outputs that take no part in the loss reach the backward as None or zeros.
    ref, fast = make_pair(num_layers=2, bidirectional=True, proj_size=2, input_size=3, hidden_size=5)
    grads = []
    for module in (ref, fast):
        torch.manual_seed(3)
        x = torch.randn(4, 3, 3, requires_grad=True)
        output, (h_n, c_n) = module(x)
        picked = {"output": output, "h_n": h_n, "c_n": c_n}[used]
        (picked * torch.randn_like(picked)).sum().backward()
        grads.append([x.grad] + [p.grad for p in module.parameters()])
    assert_all_close(grads[1], grads[0], **FP32_TOL)


THREADED_CASES = [
    Case(cfg(input_size=16, hidden_size=272, bidirectional=True), steps=4, batch=16),
    Case(cfg(input_size=16, hidden_size=272, proj_size=40, bidirectional=True), steps=4, batch=16,
         lengths=(4,) * 8 + (3, 3, 2, 2, 2, 1, 1, 1), enforce_sorted=False),
]


@pytest.mark.parametrize("case", THREADED_CASES, ids=str)
def test_matches_torch_lstm_when_steps_are_split_across_threads(case):
    # batch * hidden = 4352 is over the CPU backend's 4096-element grain, so the
    # elementwise passes run in parallel blocks, some starting mid-row; the grid above is
    # too small to leave the inline path.
    torch.set_num_threads(2)
    ref, fast = make_pair(**case.config)
    assert_results_close(run_module(fast, case), run_module(ref, case), **FP32_TOL)
