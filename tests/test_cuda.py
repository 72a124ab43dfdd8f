"""The CUDA backend on a real GPU: fastlstm.LSTM against torch.nn.LSTM (cuDNN)
with the same weights, every kernel variant of the op against
fastlstm.reference from one block to realistic layer sizes, in float32,
float64, half and bfloat16, gradcheck, determinism, inference in chunks, and
the device's gate nonlinearities. Skipped, with the reason, where no CUDA
device or no CUDA build of the extension is present; the same kernels run on
the CPU in tests/test_emulated.py on every machine, at small sizes."""
import copy

import pytest
import torch

import fastlstm
from fastlstm.reference import lstm_layer_ref
from conftest import (FP32_TOL, FP64_TOL, Case, assert_all_close, assert_results_close,
                      assert_results_equal, layer_args, layer_results, make_pair, on_device,
                      run_module, run_reference, tol_for)
from test_emulated import LOW_PRECISION_ATOL, LOW_PRECISION_CASES, call_op
from test_ops import CONFIGS

DEVICE = "cuda"
HAS_CUDA_BACKEND = torch.cuda.is_available() and torch._C._dispatch_has_kernel_for_dispatch_key(
    "fastlstm::lstm_layer", "CUDA")
pytestmark = pytest.mark.skipif(
    not HAS_CUDA_BACKEND,
    reason="no CUDA device (or a CPU build of torch)")


@pytest.fixture(autouse=True)
def _full_float32_products():
    """cuDNN rounds float32 products to TF32 by default (and cuBLAS may, when asked): errors
    near 1e-3, far outside FP32_TOL. Every float32 product here, ours and the references',
    in full float32."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def cuda_pair(config, dtype=torch.float32):
    ref, fast = make_pair(**config, dtype=dtype)
    return ref.to(DEVICE), fast.to(DEVICE)


def cuda_args(dtype, **kwargs):
    """layer_args(dtype, **kwargs) on the GPU."""
    return on_device(layer_args(dtype=dtype, **kwargs), DEVICE)


def cast(args, dtype):
    """The floating layer arguments in dtype; batch_sizes untouched."""
    return {k: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
            for k, v in args.items()}


def result_names(args):
    """Names of the items of layer_results(fn, args, reverse)."""
    return ["output", "h_n", "c_n"] + [f"grad_{k}" for k, v in args.items()
                                       if isinstance(v, torch.Tensor) and v.is_floating_point()]


def op_results(args, reverse, kernel):
    """layer_results of the op with kernel forced, checking that it ran."""
    with fastlstm.backend("native", kernel=kernel):
        results = layer_results(fastlstm.lstm_layer, args, reverse)
        assert fastlstm._backend.last_kernel(DEVICE) == kernel
    return results


def persistent_refuses(kwargs, dtype):
    """Whether kernel='persistent' refuses the layer, as
    test_forced_persistent_refuses_what_it_cannot_run checks: with a projection, and in
    float64 at H=1024, whose W_hh slices no grid of co-resident blocks holds on chip (with 4
    units a block takes 148 KB of shared memory: one block per SM, and 256 blocks needed)."""
    return bool(kwargs.get("proj")) or (dtype == torch.float64 and kwargs["hidden"] >= 1024)


def tensor_cores_fit(kwargs, kernel="tensor_core"):
    """H and P multiples of 16: whole tiles of the Tensor Core step kernels; for the
    persistent one, H a multiple of 32 (its blocks take 32 units) and no projection."""
    hidden = kwargs["hidden"]
    if kernel == "persistent_tensor_core":
        return hidden % 32 == 0 and not kwargs.get("proj")
    return hidden % 16 == 0 and (kwargs.get("proj") or hidden) % 16 == 0


# --- The module against cuDNN ----------------------------------------------------------------

CASES = [
    Case(dict(input_size=3, hidden_size=5)),
    Case(dict(input_size=32, hidden_size=70, num_layers=2, bidirectional=True), steps=7, batch=37),
    Case(dict(input_size=16, hidden_size=72, proj_size=66, bidirectional=True), steps=5, batch=19),
    Case(dict(input_size=8, hidden_size=24, num_layers=2), steps=6, batch=4, lengths=(6, 5, 5, 2),
         enforce_sorted=False),
    Case(dict(input_size=64, hidden_size=128, batch_first=True), steps=9, batch=64),
]
CUDNN_RUNS = [pytest.param(case, kernel, id=f"{kernel}-{case}")
              for case in CASES
              for kernel in ("auto", "step_narrow", "step_wide", "persistent", "persistent_2d")
              if "persistent" not in kernel or not case.config.get("proj_size")]


def assert_as_close_as_cudnn(ours, theirs, fast, case):
    """Within float32 rounding of cuDNN, and no further from the float64 reference
    than twice cuDNN is. A weight gradient sums B*T products, so both differ from the
    reference by up to ~1e-4 at the sizes here: a fixed atol of 1e-5 would test cuDNN's
    summation order, not ours."""
    exact = run_module(copy.deepcopy(fast).double(), case, torch.float64, DEVICE)
    assert ours.keys() == theirs.keys() == exact.keys()
    for key, e in exact.items():
        if not e.is_floating_point():
            assert torch.equal(ours[key], theirs[key]), key
            continue
        scale = max(1.0, e.abs().max().item())
        torch.testing.assert_close(ours[key], theirs[key], rtol=1e-3, atol=1e-4 * scale,
                                   msg=lambda m, key=key: f"{key}: {m}")
        ours_err = (ours[key].double() - e).abs().max().item()
        cudnn_err = (theirs[key].double() - e).abs().max().item()
        assert ours_err <= 2 * cudnn_err + FP32_TOL["atol"] * scale, (key, ours_err, cudnn_err)


@pytest.mark.parametrize("case,kernel", CUDNN_RUNS)
def test_matches_cudnn(case, kernel):
    ref, fast = cuda_pair(case.config)
    with fastlstm.backend("native", kernel=kernel):
        ours = run_module(fast, case, device=DEVICE)
        assert kernel == "auto" or fastlstm._backend.last_kernel(DEVICE) == kernel
    assert_as_close_as_cudnn(ours, run_module(ref, case, device=DEVICE), fast, case)


# Packed, unsorted, two bidirectional layers, with the kernel auto picks: the 2-D
# persistent kernels at any batch where their grid fits (H=24: no Tensor Core variant),
# the step kernels with a projection.
PACKED_BIDIRECTIONAL = dict(input_size=8, hidden_size=24, num_layers=2, bidirectional=True)
AUTO_KERNEL_CASES = [
    pytest.param(Case(PACKED_BIDIRECTIONAL, steps=9, batch=40, enforce_sorted=False,
                      lengths=tuple(1 + 5 * i % 9 for i in range(40))), "cuda-persistent_2d",
                 id="B=40"),
    pytest.param(Case(PACKED_BIDIRECTIONAL, steps=9, batch=5, enforce_sorted=False,
                      lengths=(3, 9, 1, 6, 9)), "cuda-persistent_2d", id="B=5"),
    pytest.param(Case(dict(PACKED_BIDIRECTIONAL, proj_size=16), steps=9, batch=5,
                      enforce_sorted=False, lengths=(3, 9, 1, 6, 9)), "cuda-step",
                 id="B=5-projection"),
]


@pytest.mark.parametrize("case,kernel_prefix", AUTO_KERNEL_CASES)
def test_packed_bidirectional_auto_kernel_matches_cudnn(case, kernel_prefix):
    ref, fast = cuda_pair(case.config)
    ours = run_module(fast, case, device=DEVICE)
    assert fastlstm._backend.kernel_name(DEVICE).startswith(kernel_prefix)
    assert_as_close_as_cudnn(ours, run_module(ref, case, device=DEVICE), fast, case)


def test_float64_matches_reference():
    case = Case(dict(input_size=5, hidden_size=20, num_layers=2, bidirectional=True), batch=9)
    _, fast = cuda_pair(case.config, torch.float64)
    assert_results_close(run_module(fast, case, torch.float64, DEVICE),
                         run_reference(fast, case, torch.float64, DEVICE), **FP64_TOL)


def test_bitwise_deterministic():
    case = CASES[1]
    _, fast = cuda_pair(case.config)
    assert_results_equal(run_module(fast, case, device=DEVICE),
                         run_module(fast, case, device=DEVICE))


# --- Every kernel variant of the op against fastlstm.reference --------------------------------

# (layer_args kwargs, reverse): one block; several blocks with partial tiles; packed rows;
# a projection over two backward column tiles; then realistic layers.
OP_SIZES = {
    "tiny": (dict(steps=4, batch=3, input_size=3, hidden=5), False),
    "multi_block": (dict(steps=3, batch=37, input_size=5, hidden=70), False),
    "packed_reverse": (dict(batch_sizes=[37, 30, 17, 2], input_size=3, hidden=24), True),
    "projection": (dict(steps=3, batch=19, input_size=4, hidden=72, proj=70), True),
    "realistic": (dict(steps=6, batch=64, input_size=256, hidden=512), False),
    "small_batch_large_hidden": (dict(steps=5, batch=4, input_size=128, hidden=1024), False),
}
OP_VARIANT_RUNS = [pytest.param(name, dtype, kernel, id=f"{name}-{str(dtype)[6:]}-{kernel}")
                   for name, (kwargs, _) in OP_SIZES.items()
                   for dtype in (torch.float32, torch.float64)
                   for kernel in ("step_narrow", "step_wide", "persistent", "persistent_2d")
                   if kernel != "persistent" or not persistent_refuses(kwargs, dtype)
                   if kernel != "persistent_2d" or not kwargs.get("proj")]


def assert_close_to_float64(actual, expected, dtype, names):
    """Each result in dtype and within tol_for(dtype) of the float64 reference, atol taken
    relative to the reference result's largest magnitude.

    Rounding errors scale with what is summed, not with each element: a weight gradient sums
    over all rows, reaching |g| ~ 35 at the realistic size while some of its elements cancel
    to ~0, and a float32 sum of n terms of size s is off by ~sqrt(n) eps s. Within [-1, 1]
    this is FP32_TOL; the step kernels, emulated on the CPU, use under 5% of it at the
    realistic sizes, and a wrong or missing term shows far above it."""
    assert len(actual) == len(expected) == len(names)
    tol = tol_for(dtype)
    for name, a, e in zip(names, actual, expected):
        assert a.dtype == dtype, name
        atol = tol["atol"] * max(1.0, e.abs().max().item())
        torch.testing.assert_close(a.double(), e, rtol=tol["rtol"], atol=atol,
                                   msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("name,dtype,kernel", OP_VARIANT_RUNS)
def test_op_variants_match_reference(name, dtype, kernel):
    kwargs, reverse = OP_SIZES[name]
    args = cuda_args(dtype, **kwargs)
    actual = op_results(args, reverse, kernel)
    expected = layer_results(lstm_layer_ref, cast(args, torch.float64), reverse)
    assert_close_to_float64(actual, expected, dtype, result_names(args))


def test_forced_persistent_refuses_what_it_cannot_run():
    """The layers the parametrizations leave out for kernel='persistent'."""
    with fastlstm.backend("native", kernel="persistent"):
        with pytest.raises(RuntimeError, match="kernel='persistent' cannot run this layer"):
            call_op(cuda_args(torch.float32, **OP_SIZES["projection"][0]), False)
        with pytest.raises(RuntimeError, match="do not fit on chip"):
            call_op(cuda_args(torch.float64, **OP_SIZES["small_batch_large_hidden"][0]), False)


# Half and bfloat16: the rule of the project (tests/test_emulated.py),
# |ours - ref64| <= 2 |ref_lowprec - ref64| + atol max(1, |ref64|), with ref_lowprec
# fastlstm.reference in the same low precision on the GPU and ref64 the float64 reference,
# both on the same rounded inputs.
LOW_PRECISION_SIZES = {**LOW_PRECISION_CASES,
                       "realistic": (dict(steps=8, batch=16, input_size=256, hidden=256), False)}
LOW_PRECISION_RUNS = [(name, kernel) for name, (kwargs, _) in LOW_PRECISION_SIZES.items()
                      for kernel in ("step_narrow", "tensor_core", "persistent", "persistent_2d",
                                     "persistent_tensor_core")
                      if "tensor_core" not in kernel or tensor_cores_fit(kwargs, kernel)]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("name,kernel", LOW_PRECISION_RUNS)
def test_low_precision_variants(name, kernel, dtype):
    kwargs, reverse = LOW_PRECISION_SIZES[name]
    low = cast(cuda_args(torch.float64, **kwargs), dtype)
    exact = cast(low, torch.float64)
    ours = op_results(low, reverse, kernel)
    ref64 = layer_results(lstm_layer_ref, exact, reverse)
    ref_low = layer_results(lstm_layer_ref, low, reverse)
    for what, a, r64, rlow in zip(result_names(low), ours, ref64, ref_low):
        assert a.dtype == dtype, what
        ours_err = (a.double() - r64).abs().max().item()
        ref_err = (rlow.double() - r64).abs().max().item()
        bound = 2 * ref_err + LOW_PRECISION_ATOL[dtype] * max(1.0, r64.abs().max().item())
        assert ours_err <= bound, \
            f"{what}: error {ours_err:.3g} > {bound:.3g} (reference {ref_err:.3g})"


# (layer_args kwargs, reverse, kernel): auto takes the 2-D persistent kernel for this batch of 2.
GRADCHECK_SMALL = dict(steps=3, batch=2, input_size=3, hidden=4)
GRADCHECK_RUNS = {
    "small-auto": (GRADCHECK_SMALL, False, "auto"),
    "small-step_narrow": (GRADCHECK_SMALL, False, "step_narrow"),
    "small-persistent": (GRADCHECK_SMALL, False, "persistent"),
    "packed_reverse_projection-step_narrow": (*CONFIGS["packed_reverse_projection"], "step_narrow"),
}


@pytest.mark.parametrize("name", GRADCHECK_RUNS)
def test_gradcheck_float64(name):
    kwargs, reverse, kernel = GRADCHECK_RUNS[name]
    args = cuda_args(torch.float64, requires_grad=True, **kwargs)
    with fastlstm.backend("native", kernel=kernel):
        assert torch.autograd.gradcheck(
            lambda *a: fastlstm.lstm_layer(*a, reverse=reverse), tuple(args.values()))
        assert fastlstm._backend.last_kernel(DEVICE) == (
            "persistent_2d" if kernel == "auto" else kernel)


# No atomics anywhere: two runs of a variant give the same bits, at realistic sizes.
DETERMINISM_RUNS = [
    pytest.param(dict(steps=6, batch=64, input_size=256, hidden=512), torch.float32, kernel,
                 id=f"fp32-{kernel}")
    for kernel in ("step_narrow", "step_wide", "persistent", "persistent_2d")
] + [
    pytest.param(dict(steps=6, batch=16, input_size=256, hidden=256), torch.float16, kernel,
                 id=f"fp16-{kernel}")
    for kernel in ("tensor_core", "persistent", "persistent_2d", "persistent_tensor_core")
]


@pytest.mark.parametrize("kwargs,dtype,kernel", DETERMINISM_RUNS)
def test_variants_bitwise_deterministic(kwargs, dtype, kernel):
    args = cuda_args(dtype, **kwargs)
    assert_all_close(op_results(args, False, kernel), op_results(args, False, kernel))


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("kernel", ["step_narrow", "persistent", "persistent_2d"])
def test_inference_matches_training_forward(kernel, reverse):
    """Inference projects the input kInferenceChunkRows (512) rows at a time and keeps no
    workspace; the persistent kernel is launched once per chunk, carrying the cell state.
    600 steps of 3 rows are four chunks."""
    args = cuda_args(torch.float32, steps=600, batch=3)
    with fastlstm.backend("native", kernel=kernel):
        *saved, _, _ = call_op(args, reverse, True)
        *unsaved, gates, cells = call_op(args, reverse, False)
        assert fastlstm._backend.last_kernel(DEVICE) == kernel
    assert gates.shape[0] == 0 and cells.shape[0] == 0
    assert_all_close(unsaved, saved, **FP32_TOL)


# TF32: with TF32 allowed for cuDNN's RNNs (torch's default), auto runs a float32 layer of
# H % 32 == 0 and B >= 4 on the Tensor Core persistent forward, as TF32; its error against the
# float64 reference is at most twice cuDNN's own TF32 error, plus float32 rounding.
@pytest.mark.parametrize("kernel", ["auto", "persistent_tensor_core"])
def test_tf32_within_twice_cudnn_tf32_error(kernel, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    case = Case(dict(input_size=64, hidden_size=256), steps=8, batch=16)
    ref, fast = cuda_pair(case.config)
    with fastlstm.backend("native", kernel=kernel):
        ours = run_module(fast, case, device=DEVICE)
        assert fastlstm._backend.last_kernel(DEVICE) == "persistent_tensor_core"
    theirs = run_module(ref, case, device=DEVICE)
    exact = run_module(copy.deepcopy(fast).double(), case, torch.float64, DEVICE)
    for key in ("output", "h_n", "c_n"):
        scale = max(1.0, exact[key].abs().max().item())
        ours_err = (ours[key].double() - exact[key]).abs().max().item()
        cudnn_err = (theirs[key].double() - exact[key]).abs().max().item()
        assert ours_err <= 2 * cudnn_err + FP32_TOL["atol"] * scale, (key, ours_err, cudnn_err)


# --- The rest ---------------------------------------------------------------------------------

def test_gate_activations_within_bound():
    x = torch.linspace(-30, 30, 200001, device=DEVICE)
    sig, tanh = torch.ops.fastlstm._gate_activations(x)
    exact = x.double()
    assert (sig.double() - torch.sigmoid(exact)).abs().max().item() < 2 ** -21
    assert (tanh.double() - torch.tanh(exact)).abs().max().item() < 2 ** -21


def test_rejects_mixed_devices():
    _, fast = cuda_pair(dict(input_size=3, hidden_size=5))
    with pytest.raises(RuntimeError, match="cuda"):
        fast(torch.randn(4, 2, 3))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_autocast_runs_in_low_precision_like_cudnn(dtype):
    case = Case(dict(input_size=32, hidden_size=64, num_layers=2), steps=6, batch=8)
    ref, fast = cuda_pair(case.config)
    with torch.autocast("cuda", dtype=dtype):
        ours = run_module(fast, case, device=DEVICE)
        theirs = run_module(ref, case, device=DEVICE)
    assert ours["output"].dtype == dtype
    if theirs["output"].dtype != dtype:
        # torch's autocast runs cuDNN's LSTM in float16 even when asked for bfloat16: the
        # baseline is then torch itself (fastlstm.reference) computing in bfloat16.
        theirs = run_reference(copy.deepcopy(fast).to(dtype), case, dtype, DEVICE)
    exact = run_module(copy.deepcopy(fast).double(), case, torch.float64, DEVICE)
    for key in ("output", "h_n", "c_n"):
        ours_err = (ours[key].double() - exact[key]).abs().max().item()
        torch_err = (theirs[key].double() - exact[key]).abs().max().item()
        assert ours_err <= 2 * torch_err + 1e-3, (key, ours_err, torch_err)


def test_bidirectional_on_two_streams_equals_one_stream(monkeypatch):
    """Both directions overlap on two streams; the numbers must not change."""
    import fastlstm.lstm as lstm_module
    case = Case(dict(input_size=16, hidden_size=32, num_layers=2, bidirectional=True),
                steps=9, batch=4)
    _, fast = cuda_pair(case.config)
    overlapped = run_module(fast, case, device=DEVICE)
    monkeypatch.setattr(lstm_module, "_overlap_directions", lambda rows: False)
    assert_results_equal(overlapped, run_module(fast, case, device=DEVICE))
