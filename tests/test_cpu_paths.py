"""The CPU engine's recurrences (csrc/cpu/engine/: packed W_hh panel groups,
K-blocked register tiles, the input projection inside the steps from batch 4
on) against nn.LSTM, bitwise at 1 and 2 threads, and inference (in chunks of
steps, or in one run where the steps project their input) bitwise equal to
the training forward. The shapes exercise the edges: hidden sizes that are
not whole blocks of units (16 floats or 8 doubles with AVX2, 32 or 16 with
AVX-512), K past one
256-long block, more rows than one
6-row tile, packed sequences in both directions, every layout of the panels
(groups of four below batch 4, single panels above). The generic (non-AVX2)
engine, forced on in a subprocess, is in tests/test_forced_paths.py. Each
runs in float32 and in float64, which take the same SIMD engine. Buffers
of 256 KB and more come from a pool of blocks freed by earlier calls: reused
blocks must never be ones still held."""
import pytest
import torch

from conftest import (ENGINE_DTYPES, Case, FP32_TOL, assert_results_close, assert_results_equal,
                      fast_results_with_threads, make_pair, run_module, tol_for)

CASES = {
    # 20 units: one full and one partial 16-unit block.
    "odd_hidden_bidir": Case(dict(input_size=8, hidden_size=20, bidirectional=True),
                             steps=6, batch=3),
    # 13 rows: two full 6-row tiles and a single row; 130 units: a partial block.
    "many_rows": Case(dict(input_size=16, hidden_size=130, num_layers=2), steps=5, batch=13),
    # Batch 3: one product projects every step's input first.
    "packed_unsorted_bidir": Case(
        dict(input_size=8, hidden_size=72, bidirectional=True), steps=7, batch=3,
        lengths=(2, 7, 5), enforce_sorted=False),
    # Batch 9: the steps project their input; packed rows end at every step.
    "packed_in_step_projection": Case(
        dict(input_size=24, hidden_size=40, bidirectional=True), steps=6, batch=9,
        lengths=(6, 6, 5, 4, 4, 3, 2, 1, 1), enforce_sorted=False),
    # K = 300 > 256 in the forward, 4H = 1200 in the backward: several K blocks.
    "long_k": Case(dict(input_size=300, hidden_size=300), steps=3, batch=8),
    "projection_wide_batch": Case(dict(input_size=12, hidden_size=40, proj_size=24),
                                  steps=4, batch=10),
    "batch_one": Case(dict(input_size=32, hidden_size=256), steps=9, batch=1),
    "batch_four": Case(dict(input_size=32, hidden_size=48), steps=9, batch=4),
}


@ENGINE_DTYPES
@pytest.mark.parametrize("name", CASES)
def test_matches_nn_lstm(name, dtype):
    ref, fast = make_pair(dtype=dtype, **CASES[name].config)
    assert_results_close(run_module(fast, CASES[name], dtype), run_module(ref, CASES[name], dtype),
                         **tol_for(dtype))


@ENGINE_DTYPES
@pytest.mark.parametrize("name", CASES)
def test_bitwise_same_at_one_and_two_threads(name, dtype):
    assert_results_equal(fast_results_with_threads(CASES[name], 2, dtype),
                         fast_results_with_threads(CASES[name], 1, dtype))


@ENGINE_DTYPES
@pytest.mark.parametrize("steps,batch", [(600, 1), (300, 2), (40, 4), (40, 16)],
                         ids=["two_chunks", "chunks_of_256_steps", "in_step_projection_batch_4",
                              "in_step_projection"])
def test_inference_matches_training_forward_bitwise(steps, batch, dtype):
    torch.manual_seed(0)
    fast = make_pair(input_size=16, hidden_size=48, dtype=dtype)[1]
    x = torch.randn(steps, batch, 16, dtype=dtype)
    with torch.no_grad():
        inference = fast(x)
    training = fast(x)
    torch.testing.assert_close(inference[0], training[0].detach(), rtol=0, atol=0)
    torch.testing.assert_close(inference[1][0], training[1][0].detach(), rtol=0, atol=0)
    torch.testing.assert_close(inference[1][1], training[1][1].detach(), rtol=0, atol=0)


def test_expanded_output_gradient_is_read_in_place():
    """out.sum() hands the backward an expanded gradient (stride 0): the
    result must equal the one from a materialized copy of it."""
    torch.manual_seed(0)
    _, fast = make_pair(input_size=8, hidden_size=24)
    x = torch.randn(5, 3, 8, requires_grad=True)
    grads = []
    for materialize in (False, True):
        x.grad = None
        out, _ = fast(x)
        upstream = torch.ones(()).expand_as(out)
        out.backward(upstream.contiguous() if materialize else upstream)
        grads.append(x.grad.clone())
    assert_results_equal({"grad": grads[0]}, {"grad": grads[1]})


def test_pooled_buffers_leave_held_results_alone():
    """A gate buffer of 8 MB and more comes from blocks freed by earlier
    calls: a second training step must give the same bits, against nn.LSTM,
    and leave the first step's output and gradients, still held, intact."""
    torch.manual_seed(0)
    ref, fast = make_pair(input_size=64, hidden_size=256)
    x = torch.randn(64, 32, 64, requires_grad=True)  # gates: 2048 x 1024 floats, 8 MiB
    held, copies = [], []
    for _ in range(3):
        x.grad = None
        fast.zero_grad(set_to_none=True)
        out, (h, c) = fast(x)
        (out.sum() + h.sum() + c.sum()).backward()
        held.append({"out": out.detach(), "grad_x": x.grad,
                     **{n: p.grad for n, p in fast.named_parameters()}})
        copies.append({k: v.clone() for k, v in held[-1].items()})
    for step, copy in zip(held, copies):
        assert_results_equal(step, copy)
    assert_results_equal(held[2], held[0])
    x.grad = None
    out, (h, c) = ref(x)
    (out.sum() + h.sum() + c.sum()).backward()
    torch.testing.assert_close(held[0]["out"], out.detach(), **FP32_TOL)
    torch.testing.assert_close(held[0]["grad_x"], x.grad, **FP32_TOL)
