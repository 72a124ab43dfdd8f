"""The CPU backward that overlaps its recurrence with the products (csrc/cpu/
overlap.h): at two and three threads one thread runs the chunks' recurrence
while the others take each finished chunk's products, the weight gradients
summed block by block in chunk order. It must give the bits of one thread,
which runs the same chunks one after another, and be as accurate as nn.LSTM
against a float64 run; in float64, as close to nn.LSTM as the other float64
tests. Hidden sizes are small enough (W_hh of 64 KB at most in float32, 128
KB in float64) that any CPU with an L2 of 256 KB or more takes the
overlapped path.
The ring of gate-gradient buffers holds four chunks (or fewer, of at most
16 MiB, but at least two), so every case reuses its buffers: each chunk's
products must be done before a later chunk writes over them."""
import copy

import pytest
import torch

from conftest import (ENGINE_DTYPES, FP64_TOL, Case, assert_results_close, assert_results_equal,
                      fast_results_with_threads, make_pair, run_module)

CASES = {
    # 17680 rows of H=64 in 16 chunks of 1105, the products (of an input 8
    # times wider than H) far behind the recurrence.
    "ring_reused": Case(dict(input_size=512, hidden_size=64), steps=1040, batch=17),
    # Chunks of a few 40-row steps, in both directions of two layers.
    "bidir_two_layers": Case(dict(input_size=24, hidden_size=40, num_layers=2,
                                  bidirectional=True), steps=60, batch=40),
    # Chunks ending inside the packed steps, rows of h_{t-1} from h0 as
    # sequences start in the reverse direction.
    "packed_unsorted_bidir": Case(
        dict(input_size=12, hidden_size=48, bidirectional=True), steps=90, batch=12,
        lengths=(90, 3, 57, 90, 1, 44, 80, 12, 66, 29, 90, 7), enforce_sorted=False),
    # Batch 1: chunks of 68 single-row steps.
    "batch_one": Case(dict(input_size=16, hidden_size=64), steps=1100, batch=1),
}


@pytest.mark.parametrize("name", CASES)
def test_error_within_twice_nn_lstm_error(name):
    """Against a float64 nn.LSTM on the same values: fastlstm's float32 error at
    most twice nn.LSTM's own float32 error (sums over thousands of rows, such as
    the weight gradients, carry an error that grows with their length)."""
    torch.set_num_threads(2)
    ref, fast = make_pair(**CASES[name].config)
    exact = run_module(copy.deepcopy(ref).double(), CASES[name], torch.float64,
                       drawn=torch.float32)
    theirs, ours = (run_module(m, CASES[name]) for m in (ref, fast))
    assert_results_close(ours, theirs, atol=1e-4, rtol=1e-3)
    for key, value in exact.items():
        if not value.is_floating_point():
            continue
        ours_err = (ours[key].double() - value).abs().max().item()
        torch_err = (theirs[key].double() - value).abs().max().item()
        assert ours_err <= 2 * torch_err + 1e-7, \
            f"{key}: fastlstm error {ours_err:.3g}, nn.LSTM error {torch_err:.3g}"


@pytest.mark.parametrize("name", CASES)
def test_float64_matches_nn_lstm(name):
    torch.set_num_threads(2)
    ref, fast = make_pair(dtype=torch.float64, **CASES[name].config)
    assert_results_close(run_module(fast, CASES[name], torch.float64),
                         run_module(ref, CASES[name], torch.float64), **FP64_TOL)


@ENGINE_DTYPES
@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("name", CASES)
def test_bitwise_same_as_one_thread(name, threads, dtype):
    assert_results_equal(fast_results_with_threads(CASES[name], threads, dtype),
                         fast_results_with_threads(CASES[name], 1, dtype))


@ENGINE_DTYPES
@pytest.mark.parametrize("name", CASES)
def test_same_inputs_give_bitwise_identical_results(name, dtype):
    first = fast_results_with_threads(CASES[name], 2, dtype)
    assert_results_equal(fast_results_with_threads(CASES[name], 2, dtype), first)
