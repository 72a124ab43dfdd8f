"""Differential fuzzing against nn.LSTM and nn.LSTMCell in float64: random
configurations and inputs (lengths, packed sorted or not, hx or not,
unbatched, empty batch) drawn by hypothesis with a fixed derandomized seed,
outputs and every gradient compared with torch's."""
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastlstm
from conftest import FP64_TOL, Case, assert_results_close, make_cell_pair, make_pair, run_module

SETTINGS = settings(max_examples=800, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def lstm_cases(draw):
    hidden = draw(st.integers(1, 5))
    config = dict(input_size=draw(st.integers(1, 4)), hidden_size=hidden,
                  num_layers=draw(st.integers(1, 3)), bias=draw(st.booleans()),
                  batch_first=draw(st.booleans()), bidirectional=draw(st.booleans()),
                  proj_size=draw(st.sampled_from([0, 0, draw(st.integers(0, hidden - 1))])))
    steps = draw(st.integers(1, 5))
    layout = draw(st.sampled_from(["batched", "batched", "unbatched", "packed", "empty"]))
    if layout == "unbatched":
        return Case(config, steps=steps, batch=None, with_hx=draw(st.booleans()))
    if layout == "empty":
        return Case(config, steps=steps, batch=0, with_hx=draw(st.booleans()))
    batch = draw(st.integers(1, 4))
    if layout == "batched":
        return Case(config, steps=steps, batch=batch, with_hx=draw(st.booleans()))
    lengths = draw(st.lists(st.integers(1, steps), min_size=batch, max_size=batch))
    lengths[draw(st.integers(0, batch - 1))] = steps  # the padded input is `steps` long
    sorted_input = draw(st.booleans())
    if sorted_input:
        lengths.sort(reverse=True)
    return Case(config, steps=steps, batch=batch, lengths=tuple(lengths),
                enforce_sorted=sorted_input, with_hx=draw(st.booleans()))


def assert_lstm_matches_torch(case):
    ref, fast = make_pair(dtype=torch.float64, **case.config)
    expected = run_module(ref, case, torch.float64)
    actual = run_module(fast, case, torch.float64)
    assert_results_close(actual, expected, **FP64_TOL)


@SETTINGS
@given(lstm_cases())
def test_lstm_matches_torch(case):
    assert_lstm_matches_torch(case)


@settings(SETTINGS, max_examples=200)
@given(lstm_cases())
def test_lstm_on_the_emulated_kernels_matches_torch(case):
    with fastlstm.backend("emulated", order="random", seed=7):
        assert_lstm_matches_torch(case)


@settings(SETTINGS, max_examples=400)
@given(input_size=st.integers(1, 5), hidden=st.integers(1, 6), bias=st.booleans(),
       batch=st.sampled_from([None, 0, 1, 2, 5]), with_hx=st.booleans(), steps=st.integers(1, 3))
def test_cell_matches_torch(input_size, hidden, bias, batch, with_hx, steps):
    """A few steps of each cell, with input and state leaves, then every gradient."""
    ref, fast = make_cell_pair(dtype=torch.float64, input_size=input_size, hidden_size=hidden,
                               bias=bias)
    results = []
    for module in (ref, fast):
        gen = torch.Generator().manual_seed(0)
        lead = () if batch is None else (batch,)
        xs = [torch.randn(*lead, input_size, generator=gen, dtype=torch.float64).requires_grad_()
              for _ in range(steps)]
        hx = tuple(torch.randn(*lead, hidden, generator=gen, dtype=torch.float64).requires_grad_()
                   for _ in range(2)) if with_hx else None
        state = hx
        for x in xs:
            state = module(x, state)
        loss = (state[0] * torch.randn(state[0].shape, generator=gen, dtype=torch.float64)).sum()
        loss = loss + state[1].sum()
        wrt = xs + list(hx or ()) + list(module.parameters())
        results.append(list(state) + list(torch.autograd.grad(loss, wrt)))
    for a, e in zip(results[1], results[0]):
        torch.testing.assert_close(a, e, **FP64_TOL)
