"""The CUDA step kernels (csrc/kernels/*.cuh), compiled for the CPU SIMT
emulator and driven by the same glue as on a GPU, against fastlstm.reference
and torch.nn.LSTM, in the emulator's three scheduling orders. A missing
barrier or a race between blocks changes results with the order; so the
results must also be bitwise the same in every order.

Sizes are small but span several blocks: H=70 gives five forward unit tiles
(the last one partial) and P=70 two backward column tiles; B=37 several row
tiles of both variants. The whole suite can also run emulated:
`python -m pytest tests --emulate=reverse`."""
import pytest
import torch

import fastlstm
from fastlstm.reference import lstm_layer_ref
from conftest import (FP32_TOL, FP64_TOL, Case, assert_all_close, assert_results_close,
                      layer_args, layer_results, make_pair, run_module, tol_for)
from test_ops import CONFIGS

ORDERS = [("forward", 0), ("reverse", 0), ("random", 1)]
ORDER_IDS = [f"{o}{s or ''}" for o, s in ORDERS]


@pytest.fixture(params=ORDERS, ids=ORDER_IDS)
def emulated(request):
    order, seed = request.param
    with fastlstm.backend("emulated", order=order, seed=seed):
        yield request.param


def call_op(args, reverse, save=True):
    return torch.ops.fastlstm.lstm_layer(*args.values(), reverse, save)


def op_results(args, reverse):
    """Outputs, final states and the gradients of every argument."""
    return layer_results(fastlstm.lstm_layer, args, reverse)


def reference_results(args, reverse):
    return layer_results(lstm_layer_ref, args, reverse)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", CONFIGS)
def test_op_matches_reference(emulated, name, dtype):
    kwargs, reverse = CONFIGS[name]
    args = layer_args(dtype=dtype, **kwargs)
    assert_all_close(op_results(args, reverse), reference_results(args, reverse),
                     **tol_for(dtype))


# Several blocks per launch in both kernels, partial tiles, packed rows.
MULTI_BLOCK = {
    "wide_hidden": (dict(steps=3, batch=37, input_size=5, hidden=70), False),
    "projection_two_column_tiles": (dict(steps=3, batch=19, input_size=4, hidden=72, proj=70),
                                    True),
    "packed_reverse": (dict(batch_sizes=[37, 30, 17, 2], input_size=3, hidden=24), True),
}


@pytest.mark.parametrize("kernel", ["step_narrow", "step_wide"])
@pytest.mark.parametrize("name", MULTI_BLOCK)
def test_several_blocks_match_reference(name, kernel):
    kwargs, reverse = MULTI_BLOCK[name]
    args = layer_args(dtype=torch.float32, **kwargs)
    expected = reference_results(args, reverse)
    first = None
    for order, seed in ORDERS:
        with fastlstm.backend("emulated", kernel=kernel, order=order, seed=seed):
            actual = op_results(args, reverse)
        assert_all_close(actual, expected, **FP32_TOL)
        if first is None:
            first = actual
        else:  # no order-dependent race: bitwise the same in every order
            assert_all_close(actual, first)


NO_PROJECTION = [name for name, (kwargs, _) in CONFIGS.items() if not kwargs.get("proj")]


@pytest.mark.parametrize("name", NO_PROJECTION)
def test_persistent_matches_reference(emulated, name):
    kwargs, reverse = CONFIGS[name]
    args = layer_args(dtype=torch.float64, **kwargs)
    order, seed = emulated
    with fastlstm.backend("emulated", kernel="persistent", order=order, seed=seed):
        actual = op_results(args, reverse)
        assert fastlstm._backend.last_kernel("cpu") == "persistent"
    assert_all_close(actual, reference_results(args, reverse), **FP64_TOL)


# Several blocks (up to 16: 4 emulated SMs, up to 4 blocks each), several row
# passes per step, partial unit slices, packed rows in both directions.
PERSISTENT_MULTI_BLOCK = {
    "wide_hidden": (dict(steps=3, batch=37, input_size=5, hidden=70), False),
    "packed": (dict(batch_sizes=[30, 17, 17, 2], input_size=3, hidden=23), False),
    "packed_reverse": (dict(batch_sizes=[30, 17, 17, 2], input_size=3, hidden=23), True),
}


def assert_every_order_matches(args, reverse, kernel, expected, **tol):
    """The op with kernel forced, in each scheduling order: close to expected, and
    bitwise the same in every order (no order-dependent race)."""
    first = None
    for order, seed in ORDERS:
        with fastlstm.backend("emulated", kernel=kernel, order=order, seed=seed):
            actual = op_results(args, reverse)
            assert fastlstm._backend.last_kernel("cpu") == kernel
        assert_all_close(actual, expected, **tol)
        if first is None:
            first = actual
        else:
            assert_all_close(actual, first)


def assert_chunked_inference_matches_training(kernel, args):
    """Inference launches a persistent kernel once per chunk of steps, carrying the
    cell state between launches (and restarting the 2-D kernels' counters)."""
    with fastlstm.backend("emulated", kernel=kernel, order="random", seed=4):
        for reverse in (False, True):
            *saved, _, _ = call_op(args, reverse, True)
            *unsaved, _, _ = call_op(args, reverse, False)
            assert_all_close(unsaved, saved, **FP32_TOL)


@pytest.mark.parametrize("name", PERSISTENT_MULTI_BLOCK)
def test_persistent_several_blocks_match_reference(name):
    kwargs, reverse = PERSISTENT_MULTI_BLOCK[name]
    args = layer_args(dtype=torch.float32, **kwargs)
    assert_every_order_matches(args, reverse, "persistent", reference_results(args, reverse),
                               **FP32_TOL)


def test_persistent_inference_in_chunks_matches_training_forward():
    assert_chunked_inference_matches_training(
        "persistent", layer_args(steps=200, batch=3, hidden=9, dtype=torch.float32))


def test_auto_picks_the_2d_persistent_forward_where_it_fits():
    with fastlstm.backend("emulated"):
        for batch in (4, 40):
            call_op(layer_args(steps=2, batch=batch, dtype=torch.float32), False)
            assert fastlstm._backend.last_kernel("cpu") == "persistent_2d"
            assert fastlstm._backend.kernel_name("cpu") == "emulated-persistent_2d"
        call_op(layer_args(steps=2, batch=4, proj=2, dtype=torch.float32), False)
        assert fastlstm._backend.last_kernel("cpu").startswith("step")
        big = layer_args(steps=1, batch=2, input_size=1, hidden=2000, dtype=torch.float32)
        call_op(big, False)  # W_hh does not fit on the emulated device's four SMs
        assert fastlstm._backend.last_kernel("cpu").startswith("step")


# The 2-D kernels on the emulated device (4 SMs of up to 4 blocks), in
# float64: hidden 16 with batch 2 cuts into eight unit slices times two batch
# slices of one row; hidden 4 with batch 7 into two unit slices times seven
# batch slices; hidden 32 with batch 130 into 15 slices of 9 rows, whose
# threads take four rows each. Packed rows in both directions: rows that
# start from h0 mid-sequence, a slice left empty.
PERSISTENT_2D = {
    "units_and_slices": (dict(steps=4, batch=2, input_size=3, hidden=16), False),
    "units_and_slices_reverse": (dict(steps=4, batch=2, input_size=3, hidden=16), True),
    "many_slices": (dict(steps=5, batch=7, input_size=2, hidden=4), False),
    "packed": (dict(batch_sizes=[2, 2, 1, 1], input_size=3, hidden=16), False),
    "packed_reverse": (dict(batch_sizes=[2, 2, 1, 1], input_size=3, hidden=16), True),
    "four_rows_a_thread": (dict(steps=3, batch=130, input_size=3, hidden=32), False),
}
# Past one block's 128 units (float32: float64's W_hh slices of this many units outgrow the
# emulated SMs): several blocks a slice, the last one partial, handshaking by flags.
PERSISTENT_2D_BLOCKS_A_SLICE = {
    "blocks_a_slice": (dict(steps=3, batch=5, input_size=3, hidden=160), False),
    "blocks_a_slice_packed_reverse": (dict(batch_sizes=[5, 3, 3, 1], input_size=3, hidden=136),
                                      True),
}


@pytest.mark.parametrize("name", PERSISTENT_2D)
def test_persistent_2d_matches_reference_in_every_order(name):
    kwargs, reverse = PERSISTENT_2D[name]
    args = layer_args(dtype=torch.float64, **kwargs)
    assert_every_order_matches(args, reverse, "persistent_2d", reference_results(args, reverse),
                               **FP64_TOL)


@pytest.mark.parametrize("name", PERSISTENT_2D_BLOCKS_A_SLICE)
def test_persistent_2d_blocks_of_a_slice_match_reference_in_every_order(name):
    kwargs, reverse = PERSISTENT_2D_BLOCKS_A_SLICE[name]
    args = layer_args(dtype=torch.float32, **kwargs)
    assert_every_order_matches(args, reverse, "persistent_2d", reference_results(args, reverse),
                               **FP32_TOL)


def test_persistent_2d_inference_in_chunks_matches_training_forward():
    assert_chunked_inference_matches_training(
        "persistent_2d", layer_args(steps=200, batch=5, hidden=16, dtype=torch.float32))


def test_persistent_2d_agrees_with_the_1d_kernel():
    args = layer_args(steps=3, batch=5, input_size=3, hidden=16, dtype=torch.float32)
    results = []
    for kernel in ("persistent", "persistent_2d"):
        with fastlstm.backend("emulated", kernel=kernel):
            results.append(call_op(args, False)[:3])
    torch.testing.assert_close(results[0], results[1], **FP32_TOL)


def test_forced_persistent_refuses_what_it_cannot_run():
    args = layer_args(proj=2, dtype=torch.float32)
    with fastlstm.backend("emulated", kernel="persistent"):
        with pytest.raises(RuntimeError, match="kernel='persistent' cannot run this layer"):
            call_op(args, False)
    big = layer_args(steps=1, batch=2, input_size=1, hidden=2000, dtype=torch.float32)
    with fastlstm.backend("emulated", kernel="persistent"):
        with pytest.raises(RuntimeError, match="do not fit on chip"):
            call_op(big, False)


def test_variants_agree_bitwise_in_forward():
    """Both tile variants sum each product in the same order."""
    args = layer_args(steps=3, batch=37, input_size=5, hidden=40, dtype=torch.float32)
    results = []
    for kernel in ("step_narrow", "step_wide"):
        with fastlstm.backend("emulated", kernel=kernel):
            results.append(call_op(args, False)[:3])
    assert_all_close(*results)


@pytest.mark.parametrize("name", ["plain", "packed_reverse_projection"])
def test_gradcheck(emulated, name):
    kwargs, reverse = CONFIGS[name]
    args = layer_args(requires_grad=True, **kwargs)
    assert torch.autograd.gradcheck(
        lambda *a: fastlstm.lstm_layer(*a, reverse=reverse), tuple(args.values()))


def test_inference_matches_training_forward(emulated):
    """Inference projects the input a chunk at a time and keeps no workspace."""
    args = layer_args(steps=200, batch=3, dtype=torch.float32)
    for reverse in (False, True):
        *saved, _, _ = call_op(args, reverse, True)
        *unsaved, gates, cells = call_op(args, reverse, False)
        assert_all_close(unsaved, saved, **FP32_TOL)
        assert gates.shape[0] == 0 and cells.shape[0] == 0


MODULE_CASES = [
    Case(dict(input_size=3, hidden_size=5, num_layers=2, bidirectional=True), batch=40),
    Case(dict(input_size=3, hidden_size=5, num_layers=2, bidirectional=True)),
    Case(dict(input_size=4, hidden_size=6, num_layers=2, bidirectional=True, proj_size=3),
         lengths=(4, 3, 1), enforce_sorted=False),
    Case(dict(input_size=3, hidden_size=5, batch_first=True, bias=False), batch=None),
]


@pytest.mark.parametrize("case", MODULE_CASES, ids=str)
def test_module_matches_nn_lstm(emulated, case):
    ref, fast = make_pair(**case.config)
    assert_results_close(run_module(fast, case), run_module(ref, case), **FP32_TOL)


def test_lstm_cell_matches_nn_lstm_cell(emulated):
    torch.manual_seed(0)
    ref = torch.nn.LSTMCell(4, 6)
    cell = fastlstm.LSTMCell(4, 6)
    cell.load_state_dict(ref.state_dict())
    x, h, c = torch.randn(3, 4), torch.randn(3, 6), torch.randn(3, 6)
    assert_all_close(cell(x, (h, c)), ref(x, (h, c)), **FP32_TOL)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_keeps_a_float32_workspace(emulated, dtype):
    args = layer_args(dtype=dtype, hidden=16)
    output, h_n, c_n, gates, cells = call_op(args, False)
    assert output.dtype == h_n.dtype == c_n.dtype == dtype
    assert gates.dtype == cells.dtype == torch.float32


def test_bad_input_gives_the_native_error(emulated):
    args = layer_args()
    args["h0"] = args["h0"][:, :2]
    with pytest.raises(RuntimeError) as emulated_error:
        call_op(args, False)
    with fastlstm.backend("native"), pytest.raises(RuntimeError) as native_error:
        call_op(args, False)
    assert str(emulated_error.value) == str(native_error.value)


def test_backend_switch_validates_and_restores():
    before = fastlstm.backend_state()
    with fastlstm.backend("emulated", kernel="step_wide", order="random", seed=3):
        assert fastlstm.backend_state() == ("emulated", "step_wide", "random", 3)
        with fastlstm.backend("native"):
            assert fastlstm.backend_state()[0] == "native"
        assert fastlstm.backend_state() == ("emulated", "step_wide", "random", 3)
    assert fastlstm.backend_state() == before
    for bad in (dict(name="gpu"), dict(kernel="fast"), dict(order="sideways")):
        with pytest.raises(ValueError, match="expected"):
            with fastlstm.backend(**{"name": "emulated", **bad}):
                pass
    assert fastlstm.backend_state() == before
    with pytest.raises(ValueError, match="expected kernel to be one of"):
        torch.ops.fastlstm._set_kernel("fast")
    assert torch.ops.fastlstm._get_kernel() == before[1]


# Half and bfloat16 storage through every kernel variant. The rule of the
# project for low precision: |ours - ref64| <= 2 |ref_lowprec - ref64| + atol,
# where ref_lowprec is fastlstm.reference run in the same low precision and
# ref64 the float64 reference on the same rounded inputs.
LOW_PRECISION_ATOL = {torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
LOW_PRECISION_CASES = {
    # H and P multiples of 16 (32 for the persistent one): the Tensor Core kernels apply.
    "tiles": (dict(steps=3, batch=5, input_size=8, hidden=32), False),
    "packed_reverse_tiles": (dict(batch_sizes=[5, 4, 2], input_size=8, hidden=32), True),
    "odd_sizes": (dict(steps=3, batch=4, input_size=3, hidden=5), False),
    # Two blocks of 32 units a batch slice: the Tensor Core kernels' flags.
    "two_unit_blocks": (dict(steps=3, batch=5, input_size=8, hidden=64), True),
    # Several row passes of the persistent Tensor Core kernel.
    "many_rows": (dict(steps=2, batch=130, input_size=4, hidden=32), False),
    # The persistent Tensor Core kernels' passes of 8 rows (every cut has slices of at
    # most 8), W_hh past the registers in shared memory (H / 2 > 192 columns a warp).
    "eight_row_passes": (dict(steps=2, batch=6, input_size=4, hidden=416), True),
    # Passes of 16 (no cut of 17 rows into slices of at most 8 fits the emulator's 32
    # blocks at 13 blocks a slice), W_hh past the registers (H > 384).
    "sixteen_row_passes": (dict(steps=2, batch=17, input_size=4, hidden=416), False),
    # Past the scalar kernel's 128 units a block: several blocks a slice, one partial.
    "scalar_blocks_a_slice": (dict(steps=2, batch=5, input_size=4, hidden=160), True),
}
VARIANTS_FOR = {
    "tiles": ["step_narrow", "step_wide", "tensor_core", "persistent", "persistent_tensor_core",
              "persistent_2d"],
    "packed_reverse_tiles": ["step_narrow", "tensor_core", "persistent", "persistent_tensor_core",
                             "persistent_2d"],
    "odd_sizes": ["step_narrow", "step_wide", "persistent", "persistent_2d"],
    "many_rows": ["tensor_core", "persistent", "persistent_tensor_core", "persistent_2d"],
    "two_unit_blocks": ["persistent_tensor_core", "persistent_2d"],
    "eight_row_passes": ["persistent_tensor_core"],
    "sixteen_row_passes": ["persistent_tensor_core"],
    "scalar_blocks_a_slice": ["persistent_2d", "persistent_tensor_core"],
}


def rounded_args(name, dtype):
    kwargs, reverse = LOW_PRECISION_CASES[name]
    args = layer_args(dtype=torch.float64, **kwargs)
    low = {k: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
           for k, v in args.items()}
    exact = {k: v.double() if isinstance(v, torch.Tensor) and v.is_floating_point() else v
             for k, v in low.items()}
    return low, exact, reverse


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("name,kernel", [(n, k) for n, ks in VARIANTS_FOR.items() for k in ks])
def test_low_precision_within_twice_reference_error(emulated, name, kernel, dtype):
    low, exact, reverse = rounded_args(name, dtype)
    order, seed = emulated
    with fastlstm.backend("emulated", kernel=kernel, order=order, seed=seed):
        ours = op_results(low, reverse)
        assert fastlstm._backend.last_kernel("cpu") == kernel
    ref64 = reference_results(exact, reverse)
    ref_low = reference_results(low, reverse)
    names = ["output", "h_n", "c_n"] + [f"grad_{k}" for k, v in low.items()
                                        if v is not None and v.is_floating_point()]
    for what, a, r64, rlow in zip(names, ours, ref64, ref_low):
        assert a.dtype == dtype, what
        ours_err = (a.double() - r64).abs().max().item()
        ref_err = (rlow.double() - r64).abs().max().item()
        bound = 2 * ref_err + LOW_PRECISION_ATOL[dtype] * max(1.0, r64.abs().max().item())
        assert ours_err <= bound, f"{what}: error {ours_err:.3g} > {bound:.3g} (reference {ref_err:.3g})"


def tf32(t):
    """t rounded to TF32 (10-bit mantissa, to nearest, ties away from zero) as the
    Tensor Cores take float32, kept in float64."""
    bits = t.float().view(torch.int32)
    finite = (bits & 0x7F800000) != 0x7F800000
    return torch.where(finite, (bits + 0x1000) & ~0x1FFF, bits).view(torch.float32).double()


def tf32_reference(args):
    """The forward of full batches, its recurrent products on TF32-rounded h and W_hh and
    everything else in float64: what the TF32 persistent kernel computes, less its float32
    rounding of the sums."""
    a = {k: v.detach().double() if isinstance(v, torch.Tensor) else v for k, v in args.items()}
    batch, hidden = a["h0"].shape
    h, c, w_hh, outputs = a["h0"], a["c0"], tf32(a["w_hh"]), []
    for x in a["input"].split(batch):
        pre = x @ a["w_ih"].T + a["bias"] + tf32(h) @ w_hh.T
        i, f, g, o = pre.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outputs.append(h)
    return [torch.cat(outputs), h, c]


# Float32 on the persistent Tensor Core kernel as TF32 (torch.backends.cudnn.allow_tf32):
# within twice a TF32 computation's own error of the float64 reference, and close to it.
TF32_CASES = {
    "one_pass": dict(steps=4, batch=6, input_size=5, hidden=32),
    "passes_and_register_tiles": dict(steps=3, batch=37, input_size=5, hidden=224),
}


@pytest.mark.parametrize("name", TF32_CASES)
def test_tf32_within_twice_a_tf32_reference_error(emulated, name, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    args = layer_args(dtype=torch.float32, **TF32_CASES[name])
    order, seed = emulated
    with fastlstm.backend("emulated", kernel="persistent_tensor_core", order=order, seed=seed):
        ours = call_op(args, False, False)[:3]
    exact = reference_results({k: v.double() if isinstance(v, torch.Tensor) else v
                               for k, v in args.items()}, False)[:3]
    for what, a, e, t in zip(("output", "h_n", "c_n"), ours, exact, tf32_reference(args)):
        ours_err = (a.double() - e).abs().max().item()
        tf32_err = (t - e).abs().max().item()
        assert tf32_err > 1e-6, what  # TF32 rounding is there to see
        assert ours_err <= 2 * tf32_err + 1e-6, (what, ours_err, tf32_err)
        torch.testing.assert_close(a.double(), t, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("hidden", [32, 64])
def test_tf32_gradients_close_to_float64(emulated, hidden, monkeypatch):
    """The backward on Tensor Cores too (dgates times W_hh's columns as TF32): each
    gradient within TF32's rounding of the float64 reference's (the scalar float32 path
    is within FP32_TOL, tested elsewhere)."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    args = layer_args(steps=3, batch=5, input_size=5, hidden=hidden, dtype=torch.float32)
    order, seed = emulated
    with fastlstm.backend("emulated", kernel="persistent_tensor_core", order=order, seed=seed):
        ours = op_results(args, False)
    exact = reference_results({k: v.double() if isinstance(v, torch.Tensor) else v
                               for k, v in args.items()}, False)
    for a, e in zip(ours, exact):
        torch.testing.assert_close(a.double(), e, atol=2e-3 * max(1.0, e.abs().max().item()),
                                   rtol=2e-3)


def test_tf32_follows_torch_cudnn_flag(monkeypatch):
    args = layer_args(steps=2, batch=8, input_size=3, hidden=32, dtype=torch.float32)
    with fastlstm.backend("emulated"):
        for allowed, kernel in ((True, "persistent_tensor_core"), (False, "persistent_2d")):
            monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", allowed)
            call_op(args, False)
            assert fastlstm._backend.last_kernel("cpu") == kernel
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    with fastlstm.backend("emulated", kernel="persistent_tensor_core"):
        with pytest.raises(RuntimeError, match="float with TF32 allowed"):
            call_op(args, False)


def test_tensor_core_refuses_what_it_cannot_run():
    args = layer_args(dtype=torch.float16, hidden=5)
    with fastlstm.backend("emulated", kernel="tensor_core"):
        with pytest.raises(RuntimeError, match="multiples of 16"):
            call_op(args, False)
        with pytest.raises(RuntimeError, match="half or bfloat16"):
            call_op(layer_args(dtype=torch.float32, hidden=16), False)
    with fastlstm.backend("emulated", kernel="persistent_tensor_core"):
        for refused in (layer_args(dtype=torch.float32, hidden=16),
                        layer_args(dtype=torch.float16, hidden=5)):
            with pytest.raises(RuntimeError, match="kernel='persistent_tensor_core' cannot run"):
                call_op(refused, False)
