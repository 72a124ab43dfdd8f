"""The CUDA backend on a real GPU: fastlstm.LSTM against torch.nn.LSTM (cuDNN)
with the same weights, both kernel variants, determinism, and the device's
gate nonlinearities. Skipped, with the reason, where no CUDA device or no
CUDA build of the extension is present; the same kernels run on the CPU in
tests/test_emulated.py on every machine."""
import pytest
import torch

import fastlstm
from conftest import (FP32_TOL, FP64_TOL, Case, assert_results_close, assert_results_equal,
                      make_pair, run_module, run_reference)

HAS_CUDA_BACKEND = torch.cuda.is_available() and torch._C._dispatch_has_kernel_for_dispatch_key(
    "fastlstm::lstm_layer", "CUDA")
pytestmark = pytest.mark.skipif(
    not HAS_CUDA_BACKEND,
    reason="no CUDA device, or fastlstm was built without nvcc / a CUDA build of torch")

CASES = [
    Case(dict(input_size=3, hidden_size=5)),
    Case(dict(input_size=32, hidden_size=70, num_layers=2, bidirectional=True), steps=7, batch=37),
    Case(dict(input_size=16, hidden_size=72, proj_size=66, bidirectional=True), steps=5, batch=19),
    Case(dict(input_size=8, hidden_size=24, num_layers=2), lengths=(6, 5, 5, 2),
         enforce_sorted=False),
    Case(dict(input_size=64, hidden_size=128, batch_first=True), steps=9, batch=64),
]


def cuda_pair(config, dtype=torch.float32):
    ref, fast = make_pair(**config, dtype=dtype)
    return ref.cuda(), fast.cuda()


@pytest.mark.parametrize("kernel", ["auto", "step_narrow", "step_wide"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_matches_cudnn(case, kernel):
    ref, fast = cuda_pair(case.config)
    with fastlstm.backend("native", kernel=kernel):
        ours = run_module(fast, case, device="cuda")
    assert_results_close(ours, run_module(ref, case, device="cuda"), **FP32_TOL)


def test_float64_matches_reference():
    case = Case(dict(input_size=5, hidden_size=20, num_layers=2, bidirectional=True), batch=9)
    _, fast = cuda_pair(case.config, torch.float64)
    assert_results_close(run_module(fast, case, torch.float64, "cuda"),
                         run_reference(fast, case, torch.float64, "cuda"), **FP64_TOL)


def test_bitwise_deterministic():
    case = CASES[1]
    _, fast = cuda_pair(case.config)
    assert_results_equal(run_module(fast, case, device="cuda"),
                         run_module(fast, case, device="cuda"))


def test_gate_activations_within_bound():
    x = torch.linspace(-30, 30, 200001, device="cuda")
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
        ours = run_module(fast, case, device="cuda")
        theirs = run_module(ref, case, device="cuda")
    assert ours["output"].dtype == theirs["output"].dtype == dtype
    exact = run_module(fast.double(), case, torch.float64, "cuda")
    for key in ("output", "h_n", "c_n"):
        ours_err = (ours[key].double() - exact[key]).abs().max().item()
        cudnn_err = (theirs[key].double() - exact[key]).abs().max().item()
        assert ours_err <= 2 * cudnn_err + 1e-3, (key, ours_err, cudnn_err)


def test_bidirectional_on_two_streams_equals_one_stream(monkeypatch):
    """Both directions overlap on two streams; the numbers must not change."""
    import fastlstm.lstm as lstm_module
    case = Case(dict(input_size=16, hidden_size=32, num_layers=2, bidirectional=True),
                steps=9, batch=4)
    _, fast = cuda_pair(case.config)
    overlapped = run_module(fast, case, device="cuda")
    monkeypatch.setattr(lstm_module, "_overlap_directions", lambda rows: False)
    assert_results_equal(overlapped, run_module(fast, case, device="cuda"))
