"""Bad inputs raise the exception type nn.LSTM raises, with a message that
names what was expected and what was given; odd but valid inputs (views,
empty batch) work as in nn.LSTM."""
from dataclasses import dataclass

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence, pack_sequence

import fastlstm
from conftest import FP32_TOL, assert_all_close, layer_args, make_cell_pair, make_pair

OP = torch.ops.fastlstm.lstm_layer.default
LAYERS, BATCH, INPUT, HIDDEN = 2, 3, 10, 20


@dataclass
class Bad:
    make: object  # () -> (input, hx)
    error: type
    match: str
    # False where nn.LSTM fails only deep in its backend (message and type depend on it).
    like_torch: bool = True


def zeros(*shape, **kwargs):
    return torch.zeros(*shape, **kwargs)


def hx_of(h_shape, c_shape=None, **kwargs):
    return zeros(*h_shape, **kwargs), zeros(*(c_shape or h_shape), **kwargs)


def x3(**kwargs):
    return torch.randn(5, BATCH, INPUT, **kwargs)


def both(expected, given):
    """A message that names both, in either order."""
    return f"({expected}.*{given}|{given}.*{expected})"


STATE = (LAYERS, BATCH, HIDDEN)

MODULE_CASES = {
    "4d_input": Bad(lambda: (torch.randn(1, 5, BATCH, INPUT), None), ValueError,
                    "Expected input to be 2D or 3D, got 4D"),
    "1d_input": Bad(lambda: (torch.randn(INPUT), None), ValueError,
                    "Expected input to be 2D or 3D, got 1D"),
    "input_size": Bad(lambda: (torch.randn(5, BATCH, 7), None), RuntimeError,
                      "input.size\\(-1\\) must be equal to input_size. Expected 10, got 7"),
    "unbatched_input_size": Bad(lambda: (torch.randn(5, 7), None), RuntimeError,
                                "Expected 10, got 7"),
    "h0_shape": Bad(lambda: (x3(), hx_of((LAYERS, 4, HIDDEN), (LAYERS, BATCH, HIDDEN))),
                    RuntimeError, "Expected hidden\\[0\\] size \\(2, 3, 20\\), got \\[2, 4, 20\\]"),
    "c0_shape": Bad(lambda: (x3(), hx_of((LAYERS, BATCH, HIDDEN), (LAYERS, BATCH, 21))),
                    RuntimeError, "Expected hidden\\[1\\] size \\(2, 3, 20\\), got \\[2, 3, 21\\]"),
    "h0_layers": Bad(lambda: (x3(), hx_of((1, BATCH, HIDDEN), (LAYERS, BATCH, HIDDEN))),
                     RuntimeError, "Expected hidden\\[0\\] size \\(2, 3, 20\\), got \\[1, 3, 20\\]"),
    "unbatched_h0_shape": Bad(lambda: (torch.randn(5, INPUT), hx_of((LAYERS, 19), (LAYERS, HIDDEN))),
                              RuntimeError, "Expected hidden\\[0\\] size \\(2, 1, 20\\), got \\[2, 1, 19\\]"),
    "2d_hx_for_3d_input": Bad(lambda: (x3(), hx_of((BATCH, HIDDEN))), RuntimeError,
                              "hx and cx should also be 3-D but got \\(2-D, 2-D\\)"),
    "3d_hx_for_2d_input": Bad(lambda: (torch.randn(5, INPUT), hx_of((LAYERS, 1, HIDDEN))),
                              RuntimeError, "hx and cx should also be 2-D but got \\(3-D, 3-D\\)"),
    "float64_input": Bad(lambda: (x3(dtype=torch.float64), None), ValueError,
                         both("torch.float32", "torch.float64")),
    "integer_input": Bad(lambda: (torch.ones(5, BATCH, INPUT, dtype=torch.int64), None), ValueError,
                         both("torch.float32", "torch.int64")),
    "float64_hx": Bad(lambda: (x3(), hx_of(STATE, dtype=torch.float64)), ValueError,
                      both("torch.float32", "torch.float64"), like_torch=False),
    "input_on_meta": Bad(lambda: (x3(device="meta"), None), RuntimeError, both("cpu", "meta")),
    "hx_on_meta": Bad(lambda: (x3(), hx_of(STATE, device="meta")), RuntimeError, both("cpu", "meta")),
    "zero_steps": Bad(lambda: (torch.randn(0, BATCH, INPUT), None), RuntimeError,
                      "Expected sequence length to be larger than 0"),
    "zero_steps_unbatched": Bad(lambda: (torch.randn(0, INPUT), None), RuntimeError,
                                "Expected sequence length to be larger than 0"),
    # nn.LSTM raises RuntimeError for these two (a single tensor, three states).
    "hx_single_tensor": Bad(lambda: (x3(), zeros(*STATE)), RuntimeError, "tuple.*Tensor"),
    "hx_three_tensors": Bad(lambda: (x3(), hx_of(STATE) + (zeros(*STATE),)), RuntimeError, "two"),
    "hx_int": Bad(lambda: (x3(), 5), TypeError, "tuple.*int"),
    "packed_data_on_meta": Bad(
        lambda: (PackedSequence(pack_sequence([torch.randn(3, INPUT), torch.randn(2, INPUT)]).data
                                .to("meta"), torch.tensor([2, 2, 1])), None),
        RuntimeError, both("cpu", "meta")),
    "packed_float64_data": Bad(
        lambda: (pack_sequence([torch.randn(3, INPUT, dtype=torch.float64)]), None),
        ValueError, both("torch.float32", "torch.float64"), like_torch=False),
}


def torch_and_fast_lstm():
    return make_pair(input_size=INPUT, hidden_size=HIDDEN, num_layers=LAYERS)


def assert_raises_like_torch(case, ref, fast):
    """fastlstm raises case.error matching case.match and, where nn raises too,
    the same exception type as the torch module."""
    x, hx = case.make()
    with pytest.raises(case.error, match=case.match) as ours:
        fast(x, hx)
    if case.like_torch:
        with pytest.raises(Exception) as theirs:
            ref(x, hx)
        assert type(ours.value) is type(theirs.value), \
            f"torch raises {type(theirs.value).__name__}: {theirs.value}"


@pytest.mark.parametrize("name", MODULE_CASES)
def test_bad_module_input_raises(name):
    case = MODULE_CASES[name]
    ref, fast = torch_and_fast_lstm()
    torch.manual_seed(0)
    assert_raises_like_torch(case, ref, fast)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_reduced_precision_module_runs(dtype):
    """Half and bfloat16 models run like nn.LSTM's (accuracy: test_low_precision.py)."""
    _, fast = torch_and_fast_lstm()
    fast = fast.to(dtype)
    x = torch.randn(5, BATCH, INPUT, dtype=dtype)
    output, _ = fast(x)
    expected, _ = fastlstm.LSTM.from_torch(fast.float())(x.float())
    assert output.dtype == dtype
    torch.testing.assert_close(output.float(), expected, atol=2e-2, rtol=2e-2)


def test_empty_batch_works_like_torch():
    for batch_first in (False, True):
        ref, fast = make_pair(input_size=INPUT, hidden_size=HIDDEN, num_layers=LAYERS,
                              bidirectional=True, batch_first=batch_first)
        x = torch.randn(0, 5, INPUT) if batch_first else torch.randn(5, 0, INPUT)
        x.requires_grad_()
        (out, (h, c)), (ref_out, (ref_h, ref_c)) = fast(x), ref(x)
        assert out.shape == ref_out.shape and h.shape == ref_h.shape and c.shape == ref_c.shape
        (out.sum() + h.sum() + c.sum()).backward()
        assert x.grad.shape == x.shape


@pytest.mark.parametrize("view", ["transposed", "strided_slice", "hx_transposed"])
def test_non_contiguous_input_matches_torch(view):
    ref, fast = make_pair(input_size=INPUT, hidden_size=HIDDEN, num_layers=LAYERS,
                          batch_first=view == "transposed")
    results = []
    for module in (ref, fast):
        torch.manual_seed(1)
        base = torch.randn(5, 2 * BATCH, INPUT, requires_grad=True)
        hx_base = torch.randn(2, BATCH, LAYERS, HIDDEN, requires_grad=True)
        x, hx = base[:, ::2], None
        if view == "transposed":
            x = base[:, :BATCH].transpose(0, 1)
        if view == "hx_transposed":
            hx = (hx_base[0].transpose(0, 1), hx_base[1].transpose(0, 1))
            assert not hx[0].is_contiguous()
        assert not x.is_contiguous()
        output, (h_n, c_n) = module(x, hx)
        (output.sum() + 2 * h_n.sum() + 3 * c_n.sum()).backward()
        results.append([output, h_n, c_n, base.grad, hx_base.grad])
    expected, actual = results
    assert_all_close(actual, expected, **FP32_TOL)


CELL_CASES = {
    "3d_input": Bad(lambda: (torch.randn(1, BATCH, INPUT), None), ValueError,
                    "Expected input to be 1D or 2D, got 3D"),
    "input_size": Bad(lambda: (torch.randn(BATCH, 7), None), RuntimeError, "got 7 expected 10"),
    "hx_batch": Bad(lambda: (torch.randn(BATCH, INPUT), hx_of((4, HIDDEN))), RuntimeError,
                    "Input batch size 3 doesn't match hidden0 batch size 4"),
    "hx_hidden": Bad(lambda: (torch.randn(BATCH, INPUT), hx_of((BATCH, 21), (BATCH, HIDDEN))),
                     RuntimeError, "hidden0 has inconsistent hidden_size: got 21, expected 20"),
    "cx_hidden": Bad(lambda: (torch.randn(BATCH, INPUT), hx_of((BATCH, HIDDEN), (BATCH, 21))),
                     RuntimeError, "hidden1 has inconsistent hidden_size: got 21, expected 20"),
    "3d_hx": Bad(lambda: (torch.randn(BATCH, INPUT), hx_of((1, BATCH, HIDDEN))), ValueError,
                 "Expected hx\\[0\\] to be .*, got 3D"),
    "float64_input": Bad(lambda: (torch.randn(BATCH, INPUT, dtype=torch.float64), None),
                         ValueError, both("torch.float32", "torch.float64"), like_torch=False),
    "input_on_meta": Bad(lambda: (torch.randn(BATCH, INPUT, device="meta"), None), RuntimeError,
                         both("cpu", "meta")),
}


@pytest.mark.parametrize("name", CELL_CASES)
def test_bad_cell_input_raises(name):
    case = CELL_CASES[name]
    ref, fast = make_cell_pair(input_size=INPUT, hidden_size=HIDDEN)
    assert_raises_like_torch(case, ref, fast)


def op_args_with(**changes):
    args = layer_args(steps=3, batch=3, input_size=4, hidden=5, dtype=torch.float32)
    args.update(changes)
    return args


OP_CASES = {
    "increasing_batch_sizes": (dict(batch_sizes=torch.tensor([3, 2, 3, 1])),
                               "expected batch_sizes positive and non-increasing.*got 3 at step 2"),
    "batch_sizes_sum": (dict(batch_sizes=torch.tensor([3, 3, 2])),
                        "expected batch_sizes to sum to the 9 input rows, got 8"),
    "batch_sizes_first": (dict(batch_sizes=torch.tensor([2, 2, 2, 2, 1])),
                          "expected batch_sizes\\[0\\] == 3.*got 2"),
    "zero_batch_size": (dict(batch_sizes=torch.tensor([3, 3, 3, 0])),
                        "non-increasing.*got 0 at step 3"),
    "batch_sizes_int32": (dict(batch_sizes=torch.tensor([3, 3, 3], dtype=torch.int32)),
                          "expected batch_sizes as a 1-D int64 CPU tensor, got 1-D Int"),
    "w_hh_shape": (dict(w_hh=torch.zeros(20, 4)), "expected w_hh of shape \\[20, 5\\], got \\[20, 4\\]"),
    "w_ih_shape": (dict(w_ih=torch.zeros(18, 4)), "expected w_ih of shape .*got \\[18, 4\\]"),
    "w_ih_input_size": (dict(w_ih=torch.zeros(20, 3)), "expected w_ih of shape \\[20, 4\\], got \\[20, 3\\]"),
    "bias_shape": (dict(bias=torch.zeros(21)), "expected bias of shape \\[20\\], got \\[21\\]"),
    "w_hr_shape": (dict(w_hr=torch.zeros(2, 4), w_hh=torch.zeros(20, 2), h0=torch.zeros(3, 2)),
                   "expected w_hr of shape \\[2, 5\\], got \\[2, 4\\]"),
    "w_hh_without_projection": (dict(w_hr=torch.zeros(2, 5)),
                                "expected w_hh of shape \\[20, 2\\], got \\[20, 5\\]"),
    "h0_shape": (dict(h0=torch.zeros(3, 6)), "expected h0 of shape \\[3, 5\\], got \\[3, 6\\]"),
    "c0_shape": (dict(c0=torch.zeros(2, 5)), "expected c0 of shape \\[3, 5\\], got \\[2, 5\\]"),
    "3d_input": (dict(input=torch.zeros(3, 3, 4)), "expected input of shape \\[rows, input_size\\], got 3-D"),
    "rows_not_whole_steps": (dict(input=torch.zeros(8, 4)), "expected the 8 input rows to be a whole "
                             "number of steps of batch 3"),
    "integer_input": (dict(input=torch.zeros(9, 4, dtype=torch.int64)),
                      "expected a floating-point input, got Long"),
    "h0_dtype": (dict(h0=torch.zeros(3, 5, dtype=torch.float64)),
                 "expected h0 of dtype Float .*got Double"),
    "w_hr_without_rows": (dict(w_hr=torch.zeros(0, 5), w_hh=torch.zeros(20, 0), h0=torch.zeros(3, 0)),
                          "expected w_hr of shape \\[proj_size, hidden_size\\] with proj_size > 0.*"
                          "got \\[0, 5\\]"),
    "batch_sizes_on_meta": (dict(batch_sizes=torch.tensor([3, 3, 3], device="meta")),
                            "expected batch_sizes as a 1-D int64 CPU tensor, got one on meta"),
}


@pytest.mark.parametrize("name", OP_CASES)
def test_bad_op_arguments_raise(name):
    changes, match = OP_CASES[name]
    args = op_args_with(**changes)
    with pytest.raises(RuntimeError, match=match):
        OP(*args.values(), False, True)


def test_bad_backward_op_arguments_raise():
    args = op_args_with()
    output, h_n, c_n, gates, cells = OP(*args.values(), False, True)
    backward_args = [torch.zeros(9, 4), h_n, c_n, args["input"], args["h0"], args["c0"],
                     args["w_ih"], args["w_hh"], None, None, False, output, gates, cells]
    with pytest.raises(RuntimeError, match="expected grad_output of shape \\[9, 5\\], got \\[9, 4\\]"):
        torch.ops.fastlstm.lstm_layer_backward(*backward_args)
    backward_args[0], backward_args[12] = torch.zeros(9, 5), gates[:, :5]
    with pytest.raises(RuntimeError, match="expected gates of shape \\[9, 20\\], got \\[9, 5\\]"):
        torch.ops.fastlstm.lstm_layer_backward(*backward_args)


@pytest.mark.parametrize("dtype", [torch.int32, torch.complex64])
def test_op_rejects_non_floating_input(dtype):
    args = {k: v.to(dtype) if v is not None else None for k, v in op_args_with().items()}
    with pytest.raises(RuntimeError, match="expected a floating-point input"):
        OP(*args.values(), False, True)


def test_op_rejects_w_hr_of_wrong_rank():
    args = layer_args(proj=2, dtype=torch.float32)
    args["w_hr"] = torch.randn(())
    with pytest.raises(RuntimeError, match=r"expected w_hr of shape \[proj_size, hidden_size\]"):
        OP(*args.values(), False, True)


# Views of batch_sizes [2, 2, 1, 1] (a slice of a longer tensor, an expand):
# read through their strides, never as raw memory.
STRIDED_BATCH_SIZES = {
    "slice": (torch.tensor([2, 9, 2, 9, 1, 9, 1, 9])[::2], [2, 2, 1, 1]),
    "expand": (torch.tensor([2]).expand(3), [2, 2, 2]),
}


@pytest.mark.parametrize("view", STRIDED_BATCH_SIZES)
def test_op_reads_batch_sizes_views_through_their_strides(view):
    strided, values = STRIDED_BATCH_SIZES[view]
    assert not strided.is_contiguous()
    args = layer_args(batch_sizes=values, input_size=3, hidden=4, requires_grad=True)
    results = []
    for batch_sizes in (torch.tensor(values), strided):
        out = OP(*{**args, "batch_sizes": batch_sizes}.values(), False, True)
        grads = torch.ops.fastlstm.lstm_layer_backward(
            torch.ones_like(out[0]), torch.ones_like(out[1]), torch.ones_like(out[2]),
            args["input"], args["h0"], args["c0"], args["w_ih"], args["w_hh"], None,
            batch_sizes, False, out[0], out[3], out[4])
        results.append(list(out[:3]) + list(grads))
    assert_all_close(results[1], results[0])


@pytest.mark.parametrize("view", STRIDED_BATCH_SIZES)
def test_packed_sequence_with_a_batch_sizes_view_matches_torch(view):
    strided, values = STRIDED_BATCH_SIZES[view]
    ref, fast = make_pair(input_size=INPUT, hidden_size=HIDDEN, num_layers=LAYERS,
                          bidirectional=True)
    data = torch.randn(sum(values), INPUT)
    expected = ref(PackedSequence(data, torch.tensor(values)))
    actual = fast(PackedSequence(data, strided))
    assert_all_close([actual[0].data, *actual[1]], [expected[0].data, *expected[1]], **FP32_TOL)


# nn.LSTM's constructor checks (torch.nn.RNNBase): the same exception types.
BAD_CONFIGS = {
    "input_size_zero": dict(input_size=0),
    "input_size_negative": dict(input_size=-1),
    "input_size_float": dict(input_size=3.0),
    "hidden_size_zero": dict(hidden_size=0),
    "hidden_size_str": dict(hidden_size="5"),
    "num_layers_zero": dict(num_layers=0),
    "num_layers_negative_float": dict(num_layers=-1.5),
    "num_layers_float": dict(num_layers=2.0),
    "bias_int": dict(bias=1),
    "bias_str": dict(bias="no"),
    "batch_first_str": dict(batch_first="yes"),
    "dropout_above_one": dict(dropout=1.5),
    "dropout_bool": dict(dropout=True),
    "proj_size_negative": dict(proj_size=-1),
    "proj_size_too_large": dict(proj_size=5),
    "proj_size_float": dict(proj_size=1.5),
}


@pytest.mark.parametrize("name", BAD_CONFIGS)
def test_bad_constructor_arguments_raise_like_torch(name):
    config = {"input_size": 3, "hidden_size": 5, **BAD_CONFIGS[name]}
    with pytest.raises(Exception) as theirs:
        torch.nn.LSTM(**config)
    with pytest.raises(type(theirs.value)) as ours:
        fastlstm.LSTM(**config)
    assert type(ours.value) is type(theirs.value), ours.value
    value = next(iter(BAD_CONFIGS[name].values()))
    if isinstance(ours.value, ValueError):  # names what was given
        assert str(value) in str(ours.value), ours.value


@pytest.mark.parametrize("module", ["LSTM", "LSTMCell"])
def test_complex_models_compute_as_torch_does(module):
    """nn.LSTM and nn.LSTMCell run complex weights on ATen; so does fastlstm."""
    torch.manual_seed(0)
    ref = getattr(torch.nn, module)(3, 4).to(torch.complex128)
    fast = getattr(fastlstm, module)(3, 4).to(torch.complex128)
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(5, 2, 3, dtype=torch.complex128)
    x = x[0] if module == "LSTMCell" else x
    expected, actual = ref(x), fast(x)
    flat = lambda r: [r[0], *r[1]] if module == "LSTM" else list(r)  # noqa: E731
    assert_all_close(flat(actual), flat(expected), atol=1e-12, rtol=1e-12)


def test_complex_input_to_a_real_model_names_both_dtypes():
    _, fast = torch_and_fast_lstm()
    with pytest.raises(ValueError, match=both("torch.float32", "torch.complex64")):
        fast(torch.randn(5, BATCH, INPUT, dtype=torch.complex64))
