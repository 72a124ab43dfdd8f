"""fastlstm.LSTMCell against torch.nn.LSTMCell with the same weights."""
import copy

import pytest
import torch
from torch.func import functional_call

import fastlstm
from conftest import (ENGINE_DTYPES, assert_results_close, assert_results_equal, make_cell_pair,
                      make_pair, thread_counts_agree_on_this_backend, tol_for)

INPUT, HIDDEN = 3, 5


def run_cell(cell, batch, with_hx, dtype=torch.float32, input_size=INPUT, hidden=HIDDEN):
    """Output h, c and the gradients of input, hx and every parameter under a fixed
    random upstream gradient; batch=None means an unbatched 1-D input."""
    gen = torch.Generator().manual_seed(1)
    lead = () if batch is None else (batch,)
    x = torch.randn(*lead, input_size, generator=gen, dtype=dtype, requires_grad=True)
    hx = None
    if with_hx:
        hx = tuple(torch.randn(*lead, hidden, generator=gen, dtype=dtype, requires_grad=True)
                   for _ in range(2))
    h, c = cell(x, hx)
    loss = sum((t * torch.randn(t.shape, generator=gen, dtype=dtype)).sum() for t in (h, c))
    params = dict(cell.named_parameters())
    leaves = [x, *(hx or ()), *params.values()]
    grads = torch.autograd.grad(loss, leaves)
    names = ["input"] + (["h0", "c0"] if with_hx else []) + list(params)
    return {"h": h, "c": c, **{"grad_" + n: g for n, g in zip(names, grads)}}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("with_hx", [True, False], ids=["hx", "hx_none"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("batch", [None, 1, 4], ids=["unbatched", "B1", "B4"])
def test_cell_matches_torch(batch, bias, with_hx, dtype):
    ref, fast = make_cell_pair(input_size=INPUT, hidden_size=HIDDEN, bias=bias, dtype=dtype)
    expected = run_cell(ref, batch, with_hx, dtype)
    actual = run_cell(fast, batch, with_hx, dtype)
    assert actual["h"].shape == expected["h"].shape
    assert_results_close(actual, expected, **tol_for(dtype))


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_gradcheck_cell(bias):
    torch.manual_seed(0)
    cell = fastlstm.LSTMCell(INPUT, HIDDEN, bias=bias, dtype=torch.float64)
    names = [n for n, _ in cell.named_parameters()]

    def fn(x, h, c, *params):
        return functional_call(cell, dict(zip(names, params)), (x, (h, c)))

    inputs = [torch.randn(2, INPUT, dtype=torch.float64), torch.randn(2, HIDDEN, dtype=torch.float64),
              torch.randn(2, HIDDEN, dtype=torch.float64)]
    inputs += [p.detach().clone() for p in cell.parameters()]
    assert torch.autograd.gradcheck(fn, [t.requires_grad_() for t in inputs])


def test_cell_steps_match_single_layer_lstm():
    # The same weights under LSTM names: stepping the cell must give the layer's outputs.
    _, lstm = make_pair(input_size=INPUT, hidden_size=HIDDEN)
    cell = fastlstm.LSTMCell(INPUT, HIDDEN)
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in lstm.state_dict().items()})
    torch.manual_seed(2)
    x = torch.randn(4, 2, INPUT)
    expected, (h_n, c_n) = lstm(x)
    h = c = torch.zeros(2, HIDDEN)
    for t in range(4):
        h, c = cell(x[t], (h, c))
        torch.testing.assert_close(h, expected[t])
    torch.testing.assert_close(h, h_n[0])
    torch.testing.assert_close(c, c_n[0])


@pytest.mark.parametrize("bias", [True, False])
def test_cell_init_state_dict_and_repr_match_torch(bias):
    torch.manual_seed(4)
    ref = torch.nn.LSTMCell(INPUT, HIDDEN, bias=bias)
    torch.manual_seed(4)
    fast = fastlstm.LSTMCell(INPUT, HIDDEN, bias=bias)
    assert list(fast.state_dict()) == list(ref.state_dict())
    for key, value in ref.state_dict().items():
        torch.testing.assert_close(fast.state_dict()[key], value, rtol=0, atol=0)
    assert str(fast) == str(ref)


# Wide enough that two threads split the units (vectors of 32 floats or 16
# doubles with AVX-512, 16 or 8 with AVX2). From a full panel of rows (32
# floats or 16 doubles with AVX-512, 16 or 8 with AVX2, 8 or 4 generic) the
# products run transposed (W [x | h]ᵀ), below it as dot products on the
# weights as they lie: 1 and 5 rows take those on every engine but the
# generic double one at 5; 40 and 100 rows are one or more panels of rows,
# the last one partial, and an input of 600 takes two K blocks.
WIDE_HIDDEN = 96


@ENGINE_DTYPES
@pytest.mark.parametrize("batch,input_size", [(1, 40), (5, 40), (40, 40), (100, 40), (40, 600)])
def test_wide_cell_matches_torch_and_repeats_bitwise(batch, input_size, dtype, request):
    # Calls alternate the order in which the step reads its weight blocks;
    # no bit may depend on it, nor on the thread count (where the backend's
    # GEMMs promise that: see thread_counts_agree_on_this_backend).
    ref, fast = make_cell_pair(input_size=input_size, hidden_size=WIDE_HIDDEN, dtype=dtype)

    def run(cell):
        return run_cell(cell, batch, True, dtype, input_size=input_size, hidden=WIDE_HIDDEN)

    expected, first = run(ref), run(fast)
    assert_results_close(first, expected, **tol_for(dtype))
    threads = torch.get_num_threads()
    try:
        agree = thread_counts_agree_on_this_backend(request, dtype)
        for n in (2, 1, 2) if agree else (threads,) * 3:
            torch.set_num_threads(n)
            assert_results_equal(run(fast), first)
    finally:
        torch.set_num_threads(threads)


@ENGINE_DTYPES
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_eager_c_call_matches_the_checked_path_bitwise(bias, dtype):
    """forward's common case runs in one C call (csrc/cell_call.cpp); its
    outputs and gradients must be those of the path with Python checks."""
    _, fast = make_cell_pair(input_size=INPUT, hidden_size=HIDDEN, bias=bias, dtype=dtype)
    checked = copy.deepcopy(fast)
    checked.forward = checked._checked_forward
    assert_results_equal(run_cell(fast, 4, True, dtype), run_cell(checked, 4, True, dtype))


class CountingTensor(torch.Tensor):
    calls = 0

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        CountingTensor.calls += 1
        return super().__torch_function__(func, types, args, kwargs or {})


def test_tensor_subclass_and_function_mode_take_the_general_path():
    """The C call takes plain tensors only: a subclass's __torch_function__ and
    an active TorchFunctionMode still see the step, as with nn.LSTMCell."""
    from torch.overrides import TorchFunctionMode

    ref, fast = make_cell_pair(input_size=INPUT, hidden_size=HIDDEN)
    x, h, c = torch.randn(2, INPUT), torch.randn(2, HIDDEN), torch.randn(2, HIDDEN)
    expected = ref(x, (h, c))
    CountingTensor.calls = 0
    got = fast(x.as_subclass(CountingTensor), (h, c))
    assert CountingTensor.calls > 0
    torch.testing.assert_close(got[0].as_subclass(torch.Tensor), expected[0])

    class Recording(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.seen = []

        def __torch_function__(self, func, types, args=(), kwargs=None):
            self.seen.append(func)
            return func(*args, **(kwargs or {}))

    with Recording() as mode:
        got = fast(x, (h, c))
    assert mode.seen
    torch.testing.assert_close(got[1], expected[1])
