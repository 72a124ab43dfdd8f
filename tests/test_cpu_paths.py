"""The CPU backend's persistent recurrence (csrc/cpu/recurrent.*: one parallel
region per run of steps, AVX-512 micro-kernel, float32 without projection)
against nn.LSTM and against the batched per-step path, at 1 and 2 threads,
with shapes that exercise its edges: hidden sizes that are not whole panels,
more rows than one register block, packed sequences in both directions,
inference chunks. Each path forced on its own, in a subprocess, is in
tests/test_forced_paths.py."""
import pytest
import torch

from conftest import (Case, FP32_TOL, assert_results_close, assert_results_equal, make_pair,
                      run_module)

CASES = {
    # 20 units: one full and one partial 16-unit panel, one partial 64-column panel.
    "odd_hidden_bidir": Case(dict(input_size=8, hidden_size=20, bidirectional=True),
                             steps=6, batch=3),
    # 13 rows: two full 6-row blocks and a single row; 130 units: three column panels.
    "many_rows": Case(dict(input_size=16, hidden_size=130, num_layers=2), steps=5, batch=13),
    "packed_unsorted_bidir": Case(
        dict(input_size=8, hidden_size=72, bidirectional=True), steps=7, batch=5,
        lengths=(7, 2, 5, 1, 7), enforce_sorted=False),
    "batch_one": Case(dict(input_size=32, hidden_size=256), steps=9, batch=1),
}


@pytest.mark.parametrize("name", CASES)
def test_matches_nn_lstm(name):
    ref, fast = make_pair(**CASES[name].config)
    assert_results_close(run_module(fast, CASES[name]), run_module(ref, CASES[name]), **FP32_TOL)


@pytest.mark.parametrize("name", CASES)
def test_bitwise_same_at_one_and_two_threads(name):
    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        _, fast = make_pair(**CASES[name].config)
        results.append(run_module(fast, CASES[name]))
    assert_results_equal(results[1], results[0])


def test_inference_over_several_chunks_matches_training_forward():
    # 600 steps of batch 1 is two input-projection chunks in inference, one in training.
    torch.manual_seed(0)
    fast = make_pair(input_size=16, hidden_size=48)[1]
    x = torch.randn(600, 1, 16)
    with torch.no_grad():
        inference = fast(x)
    training = fast(x)
    torch.testing.assert_close(inference[0], training[0].detach(), rtol=0, atol=0)
    torch.testing.assert_close(inference[1][0], training[1][0].detach(), rtol=0, atol=0)
